package sqs

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestRequestersReuseTheirGoroutines: requests run at once each get a goroutine; later ones
// run on those, now idle, rather than on new ones; stop ends them all.
func TestRequestersReuseTheirGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRequesters()
		var ran atomic.Int32
		release := make(chan struct{})
		for range 3 {
			r.do(func() { <-release; ran.Add(1) })
		}
		synctest.Wait()
		if n := r.started.Load(); n != 3 {
			t.Fatalf("three requests at once started %d goroutines, want 3", n)
		}
		close(release)
		synctest.Wait()
		for range 5 {
			r.do(func() { ran.Add(1) })
			synctest.Wait()
		}
		if n := r.started.Load(); n != 3 {
			t.Errorf("five requests one after the other, with three goroutines idle, made %d in all, want 3", n)
		}
		r.stop() // the bubble fails if a goroutine of it is left
		if n := ran.Load(); n != 8 {
			t.Errorf("%d requests ran, want 8", n)
		}
	})
}
