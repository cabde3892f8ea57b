// Package gcpace paces the garbage collector of a palleto process whose user did not set
// GOGC. With Go's default (GOGC=100) a collection runs each time the heap has grown by as
// much as was live after the last one, and at least every 4 MiB. A run's live heap is a few
// MiB, and every download allocates tens of KiB in the AWS SDK, so the collector runs every few
// dozen objects: in the pipeline benchmark at 0 ms, 19 collections per 1,000 objects, each of
// which also shrinks the stacks of the idle workers, which then grow them again (2,300 stack
// copies against 600 with no collection at all).
//
// The pace set here lets the heap grow by at least Headroom between collections, and never
// by more than the default's pace would plus Headroom: the heap goal is the larger of twice
// the live heap and the live heap plus Headroom. A small heap costs up to Headroom more
// memory; a heap of Headroom or more live is paced as by default.
package gcpace

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// Headroom is the least growth of the heap between two collections that the pace allows.
// 8 MiB keeps most of what 16 MiB saves in collections (7 against 2 per 1,000 objects in the
// pipeline benchmark, 19 by default) at the peak memory of the default pace: each page the
// heap grows into costs a fault when first touched and a release at exit, and at 16 MiB that
// cost more system time than the collections saved (docs/benchmarks.md, eighth round).
const Headroom = 8 << 20

// minHeap is the runtime's least heap goal at GOGC=100; the runtime scales it with GOGC.
const minHeap = 4 << 20

// interval is how often Start looks at the live heap again.
const interval = 100 * time.Millisecond

// Percent is the GOGC that gives a heap goal of max(2×live, live+headroom): 100 for a live
// heap of headroom or more, more for a smaller one, up to the value at which the runtime's
// least heap goal (4 MiB × GOGC/100) reaches headroom. A live heap of 0 (no collection has
// run yet) gets that upper bound.
func Percent(live, headroom uint64) int {
	most := int(100 * headroom / minHeap)
	if live == 0 {
		return max(most, 100)
	}
	return max(100, min(most, int(100*headroom/live)))
}

// Start paces the collector as the package documentation says, looking at the live heap
// every 100 ms, unless GOGC is set in the environment (getenv): then the user's value
// stands, and Start does nothing. The stop function ends the pacing, and its goroutine, and
// puts back the GOGC that was in force before.
func Start(getenv func(string) string) (stop func()) {
	if getenv("GOGC") != "" {
		return func() {}
	}
	return start(liveHeap, debug.SetGCPercent, interval, Headroom)
}

// start is Start with its parts given: live reads the live heap, set sets GOGC and returns
// the value before.
func start(live func() uint64, set func(int) int, every time.Duration, headroom uint64) func() {
	cur := Percent(live(), headroom)
	prev := set(cur)
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				// A change of less than a tenth is not worth a new goal.
				if p := Percent(live(), headroom); 10*abs(p-cur) >= cur {
					set(p)
					cur = p
				}
			}
		}
	}()
	return sync.OnceFunc(func() {
		close(done)
		<-ended
		set(prev)
	})
}

func abs(x int) int { return max(x, -x) }

// liveHeap is the heap that the last collection found live (0 before the first).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
