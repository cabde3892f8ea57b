// Package gcpace gives the garbage collector a floor of headroom: a new cycle begins once the
// heap has grown by as much as is live, as Go's default (GOGC=100) has it, or by the headroom,
// whichever is more.
//
// A palleto run keeps little alive (a few MiB) and allocates much that dies young (the SDK's
// requests and answers, each object's buffers). By default a cycle then begins every 4 MiB or
// so of allocation, a few dozen objects, and each costs more than the memory it saves: the
// marking, the assists that make allocating goroutines help it, and the goroutine stacks that
// a cycle halves when it finds them idle and that the next SDK call grows again. With a larger
// live heap (objects held in memory between download and analysis) the headroom is less than
// the live heap, and the default applies: the memory a process may use beyond its live heap is
// at most the headroom more than Go's default.
//
// The GC percent is set after each cycle, from the live heap that cycle found. A GOGC in the
// environment wins: then nothing is changed.
package gcpace

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Start paces the garbage collector with the given headroom in bytes until the returned stop
// is called, which sets the GC percent back to what it was. It changes nothing when GOGC is
// set, or when headroom is not positive.
func Start(headroom uint64) (stop func()) {
	if _, set := os.LookupEnv("GOGC"); set || headroom == 0 {
		return func() {}
	}
	return start(headroom, debug.SetGCPercent)
}

// start is Start with the function that sets the GC percent, which tests replace.
func start(headroom uint64, setPercent func(int) int) (stop func()) {
	var (
		mu      sync.Mutex // orders the finalizers' settings with stop's
		stopped bool
	)
	prev := setPercent(100)
	setPercent(prev)
	current := prev
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var arm func()
	arm = func() {
		// Runs on the runtime's finalizer goroutine after the cycle that found the sentinel
		// unreachable.
		runtime.SetFinalizer(new(sentinel), func(*sentinel) {
			mu.Lock()
			defer mu.Unlock()
			if stopped {
				return
			}
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				if p := percent(sample[0].Value.Uint64(), headroom); p != current {
					current = p
					setPercent(p)
				}
			}
			arm()
		})
	}
	arm()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		stopped = true
		setPercent(prev)
	}
}

// sentinel is an object that a finalizer watches: large enough not to share the tiny
// allocator's blocks, which would tie its finalizer to other objects' lifetimes.
type sentinel struct{ _ [16]byte }

// percent is the GC percent that lets the heap grow by max(live, headroom) before the next
// cycle.
func percent(live, headroom uint64) int {
	if live == 0 || headroom <= live {
		return 100
	}
	return int(min(float64(headroom)*100/float64(live), 1<<20))
}
