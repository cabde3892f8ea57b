package sqs

import (
	"sync"
	"sync/atomic"
)

// requesters runs the source's requests on goroutines that outlive one request. An SDK call
// goes deep (its middleware, the endpoint rules), so that a new goroutine grows its stack
// several times, copying it each time, during its first call; one that has made a call before
// has grown it already (a garbage collection that finds it idle may halve it again, once). A
// goroutine is added when none is idle, so there are about as many as requests were ever in
// flight at once (bounded by Config.MaxReceives and MaxBatchRequests, plus a drain check), and
// all of them end with stop.
type requesters struct {
	work chan func() // unbuffered: a send succeeds only when a goroutine is idle
	done chan struct{}
	wg   sync.WaitGroup
	// started counts the goroutines started, which tests read.
	started atomic.Int64
}

func newRequesters() *requesters {
	return &requesters{work: make(chan func()), done: make(chan struct{})}
}

// do runs f on an idle goroutine, or on a new one when none is.
func (r *requesters) do(f func()) {
	select {
	case r.work <- f:
		return
	default:
	}
	r.wg.Add(1)
	r.started.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			f()
			select {
			case f = <-r.work:
			case <-r.done:
				return
			}
		}
	}()
}

// stop ends the goroutines once the functions given to do have returned. do must not be
// called from then on.
func (r *requesters) stop() {
	close(r.done)
	r.wg.Wait()
}
