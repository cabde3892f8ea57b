package gcpace

import (
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const mib = 1 << 20

// The goal is max(2×live, live+headroom), within what the runtime's least goal allows; the
// table is for a headroom of 16 MiB.
func TestPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 400},         // no collection yet: the most
		{1, 400},         // one byte
		{1 * mib, 400},   // the goal is the runtime's least, 4 MiB × 4 = 16 MiB
		{4 * mib, 400},   // 4 + 16 = 20 = 4 × 5
		{8 * mib, 200},   // 8 + 16 = 24 = 8 × 3
		{10 * mib, 160},  // 10 + 16 = 26 = 10 × 2.6
		{12 * mib, 133},  // rounded down: a goal a little under live+headroom
		{16 * mib, 100},  // 16 + 16 = 32 = 16 × 2: as by default
		{17 * mib, 100},  // never below the default
		{256 * mib, 100}, //
		{1 << 40, 100},   // no overflow
	} {
		if got := Percent(c.live, 16*mib); got != c.want {
			t.Errorf("Percent(%d MiB) = %d, want %d", c.live/mib, got, c.want)
		}
	}
	if got := Percent(0, 2*mib); got != 100 {
		t.Errorf("Percent with a headroom below the runtime's least goal = %d, want 100", got)
	}
}

// Start sets the pace at once, follows the live heap as it changes by a tenth or more, and
// stop ends its goroutine and puts back the GOGC in force before.
func TestStartFollowsTheLiveHeap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		live := uint64(0)
		gogc := 100
		var sets []int
		set := func(p int) int {
			mu.Lock()
			defer mu.Unlock()
			sets = append(sets, p)
			prev := gogc
			gogc = p
			return prev
		}
		setLive := func(v uint64) {
			mu.Lock()
			live = v
			mu.Unlock()
		}
		// The values below are for a headroom of 16 MiB.
		stop := start(func() uint64 { mu.Lock(); defer mu.Unlock(); return live }, set, time.Second, 16*mib)
		want := []int{400}
		check := func(what string) {
			t.Helper()
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			if !slices.Equal(sets, want) {
				t.Fatalf("%s: GOGC set to %v, want %v", what, sets, want)
			}
		}
		check("at start")

		setLive(8 * mib)
		time.Sleep(time.Second)
		want = append(want, 200)
		check("live heap of 8 MiB")

		setLive(8*mib + mib/2) // 188: less than a tenth off 200
		time.Sleep(time.Second)
		check("a small change")

		setLive(64 * mib)
		time.Sleep(time.Second)
		want = append(want, 100)
		check("a large heap")

		stop()
		want = append(want, 100) // what was in force before Start
		check("after stop")
		time.Sleep(10 * time.Second)
		check("after stop, later")
		stop() // a second call does nothing
		check("after a second stop")
	})
}

// A GOGC that the user set stands: Start changes nothing.
func TestStartLeavesGOGCAsSet(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	stop := Start(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	})
	defer stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC = %d with GOGC=100 in the environment, want 100", got)
	}
}

// The live heap that Start reads is the runtime's: after a collection, at least what is
// held.
func TestLiveHeap(t *testing.T) {
	hold := make([]byte, 8*mib)
	runtime.GC()
	if got := liveHeap(); got < 8*mib {
		t.Fatalf("live heap %d after a collection, with 8 MiB held", got)
	}
	runtime.KeepAlive(hold)
}
