package sqs

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/flow"
)

// receiveTimes returns when each ReceiveMessage so far started, from t0.
func receiveTimes(f *fakeSQS, t0 time.Time) []time.Duration {
	var ds []time.Duration
	for _, c := range f.callsOf("ReceiveMessage") {
		ds = append(ds, c.At.Sub(t0))
	}
	return ds
}

// One failed receive among others pauses alone: the receive beside it goes on, and the failed
// one is made again after the pause (Config.PollBackoff), not after the other's long poll.
func TestTransientReceiveErrorPausesOnlyItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.receiveErr = func(n int) error {
			if n == 1 {
				return responseError(500)
			}
			return nil
		}
		s := start(t, f, Config{})
		s.rand = func() float64 { return 0 } // the top of every range
		t0 := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		p := receiveAsync(ctx, s, 20)
		time.Sleep(150 * time.Millisecond)
		if got, want := receiveTimes(f, t0), []time.Duration{0, 0, 100 * time.Millisecond}; !slices.Equal(got, want) {
			t.Fatalf("receives at %v, want %v", got, want)
		}
		if n := f.inFlight(); n != 2 {
			t.Fatalf("%d receives in flight after the pause, want 2", n)
		}
		f.put(qURL, "a")
		<-p.done
		cancel()
		if p.err != nil || len(p.msgs) != 1 {
			t.Fatalf("Receive: %d messages, %v", len(p.msgs), p.err)
		}
		if st := s.Stats(); st.Requests.Failed != 1 {
			t.Fatalf("stats %+v", st.Requests)
		}
	})
}

// Receives that keep failing back off as a whole: one at a time, the pause doubling from
// PollBackoff to MaxPollBackoff. A receive that succeeds ends it.
func TestReceiveOutageBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, "a")
		f.receiveErr = func(n int) error {
			if n <= 9 {
				return responseError(503)
			}
			return nil
		}
		s := start(t, f, Config{})
		s.rand = func() float64 { return 0 }
		t0 := time.Now()
		msgs := receive(t, s, 1) // a demand of 1: one receive at a time from the start
		ms := time.Millisecond
		// The first failure pauses its receive alone; the second is one in a row.
		want := []time.Duration{0, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5200 * ms, 7200 * ms, 9200 * ms}
		if got := receiveTimes(f, t0); !slices.Equal(got, want) {
			t.Fatalf("receives at %v, want %v", got, want)
		}
		if f.maxRecv != 1 {
			t.Fatalf("%d receives in flight at once", f.maxRecv)
		}
		ack(msgs, flow.Succeeded, nil)
	})
}

// Two receives that fail together are failures in a row: the source backs off as a whole,
// and the next receive waits for the pause, one at a time.
func TestReceiveErrorsInARowBackOffTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.receiveErr = func(n int) error {
			if n <= 2 {
				return responseError(500)
			}
			return nil
		}
		s := start(t, f, Config{})
		s.rand = func() float64 { return 0 }
		t0 := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		p := receiveAsync(ctx, s, 20)
		time.Sleep(time.Second)
		if got, want := receiveTimes(f, t0), []time.Duration{0, 0, 100 * time.Millisecond}; !slices.Equal(got, want) {
			t.Fatalf("receives at %v, want %v", got, want)
		}
		if n := f.inFlight(); n != 1 {
			t.Fatalf("%d receives in flight, want 1", n)
		}
		cancel()
		<-p.done
	})
}

// A receive's pause that is over while receives wait for another reason (the source's
// backoff) must not make the loop wake at once again and again.
func TestCoolingOverDoesNotSpin(t *testing.T) {
	s := start(t, newFake(qURL), Config{})
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.demand, s.cooling, s.after = 10, []time.Time{now.Add(-time.Millisecond)}, now.Add(time.Second)
	s.startPollsLocked(now)
	if next := s.nextWakeLocked(now); !next.Equal(s.after) {
		t.Fatalf("next wake %v from now, want the backoff's end, %v", next.Sub(now), s.after.Sub(now))
	}
	if len(s.cooling) != 0 {
		t.Fatalf("%d pauses over still kept", len(s.cooling))
	}
	s.demand = 0
}
