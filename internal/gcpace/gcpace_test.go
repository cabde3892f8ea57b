package gcpace

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{3 * mib, 16 * mib, 533}, // a small live heap: the headroom sets the pace
		{16 * mib, 16 * mib, 100},
		{64 * mib, 16 * mib, 100}, // a large one: Go's default
		{0, 16 * mib, 100},        // nothing measured yet
		{1, 1 << 62, 1 << 20},     // capped
	} {
		if got := percent(c.live, c.headroom); got != c.want {
			t.Errorf("percent(%d, %d) = %d, want %d", c.live, c.headroom, got, c.want)
		}
	}
}

// TestStartPacesAfterEachCycle: after a cycle, the GC percent is what the live heap and the
// headroom give; stop sets it back, and nothing is set after it.
func TestStartPacesAfterEachCycle(t *testing.T) {
	set := make(chan int, 1000)
	pct := 100
	setPercent := func(p int) int { // called under start's lock
		old := pct
		pct = p
		set <- p
		return old
	}
	stop := start(1<<40, setPercent) // far more than any test's live heap
	<-set                            // start reads the percent
	<-set                            // and puts it back
	runtime.GC()
	select {
	case p := <-set:
		if p <= 100 {
			t.Errorf("after a cycle the GC percent was set to %d, want more than 100 for a headroom above the live heap", p)
		}
	case <-time.After(30 * time.Second): // a failsafe: the finalizer runs right after the cycle
		t.Fatal("no GC percent set after a cycle")
	}
	stop()
	last := 0
	for len(set) > 0 {
		last = <-set
	}
	if last != 100 {
		t.Errorf("the last GC percent set, by stop, was %d, want 100 back", last)
	}
	runtime.GC()
	runtime.GC()
	stop()
	if len(set) > 0 {
		t.Errorf("the GC percent was set to %d after stop", <-set)
	}
}

func TestStartLeavesGOGCAlone(t *testing.T) {
	t.Setenv("GOGC", "100")
	before := debug.SetGCPercent(100)
	debug.SetGCPercent(before)
	stop := Start(1 << 40)
	runtime.GC()
	runtime.GC()
	after := debug.SetGCPercent(before)
	if after != before {
		t.Errorf("with GOGC set, the GC percent went from %d to %d", before, after)
	}
	stop()
}
