package flowtest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/palleto/palleto/flow"
)

// A Harness is one fresh, empty instance of a source under test, and the means to feed it.
type Harness[T any] struct {
	// Source is the source under test.
	Source flow.Source[T]
	// Put adds n new messages, distinct from all others, to what Source reads from.
	Put func(ctx context.Context, n int) error
	// ID identifies a message, so that redeliveries can be recognised.
	ID func(T) string
	// Quiet is how long a Receive must find nothing before the source counts as empty.
	// Zero means 300ms. A source with eventual consistency (SQS) needs more.
	Quiet time.Duration
	// Patience bounds every wait for something that must happen. Zero means 30s.
	Patience time.Duration
}

// TestSource runs the conformance suite against a source. newHarness is called once per
// subtest and must return an empty source; clean up with t.Cleanup.
//
// The suite checks that Receive returns between 1 and n messages, blocks while the source is
// empty, serves a waiting Receive as soon as a message arrives, returns promptly with the
// context's error when cancelled, never hands out a message twice while it is in flight, does
// not hand out a message again once it succeeded, and hands out a released message again.
func TestSource[T any](t *testing.T, newHarness func(t *testing.T) Harness[T]) {
	setup := func(t *testing.T) Harness[T] {
		h := newHarness(t)
		if h.Quiet == 0 {
			h.Quiet = 300 * time.Millisecond
		}
		if h.Patience == 0 {
			h.Patience = 30 * time.Second
		}
		return h
	}

	t.Run("EmptyBlocksUntilDone", func(t *testing.T) {
		h := setup(t)
		ctx, cancel := context.WithTimeout(t.Context(), h.Quiet)
		defer cancel()
		msgs, err := h.Source.Receive(ctx, 5)
		if len(msgs) != 0 {
			t.Fatalf("Receive on an empty source returned %d messages", len(msgs))
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Receive on an empty source: err = %v, want the context's error", err)
		}
	})

	t.Run("CancelEndsReceive", func(t *testing.T) {
		h := setup(t)
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := h.Source.Receive(ctx, 3)
			errc <- err
		}()
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Receive: err = %v, want context.Canceled", err)
			}
		case <-time.After(h.Patience):
			t.Fatalf("Receive did not return within %v of its context being cancelled", h.Patience)
		}
	})

	t.Run("NeverMoreThanAsked", func(t *testing.T) {
		h := setup(t)
		const total = 25
		if err := h.Put(t.Context(), total); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		var all []flow.Message[T]
		asks := []int{1, 3, 7, 10, 2}
		ctx, cancel := context.WithTimeout(t.Context(), h.Patience)
		defer cancel()
		for i := 0; len(seen) < total; i++ {
			n := asks[i%len(asks)]
			msgs, err := h.Source.Receive(ctx, n)
			if err != nil {
				t.Fatalf("after %d of %d messages: %v", len(seen), total, err)
			}
			if len(msgs) < 1 || len(msgs) > n {
				t.Fatalf("Receive(%d) returned %d messages", n, len(msgs))
			}
			for _, m := range msgs {
				id := h.ID(m.Data)
				if seen[id] {
					t.Fatalf("message %s handed out twice while in flight", id)
				}
				seen[id] = true
			}
			all = append(all, msgs...)
		}
		ackAll(all, flow.Succeeded)
		short, cancelShort := context.WithTimeout(t.Context(), h.Quiet)
		defer cancelShort()
		if msgs, _ := h.Source.Receive(short, 10); len(msgs) > 0 {
			t.Fatalf("%d messages came back after they succeeded", len(msgs))
		}
	})

	t.Run("PendingDemandServedOnArrival", func(t *testing.T) {
		h := setup(t)
		ctx, cancel := context.WithTimeout(t.Context(), h.Patience)
		defer cancel()
		type got struct {
			msgs []flow.Message[T]
			err  error
		}
		gotc := make(chan got, 1)
		go func() {
			msgs, err := h.Source.Receive(ctx, 5)
			gotc <- got{msgs, err}
		}()
		if err := h.Put(ctx, 1); err != nil {
			t.Fatal(err)
		}
		r := <-gotc
		if r.err != nil || len(r.msgs) != 1 {
			t.Fatalf("waiting Receive got %d messages, err %v; want the 1 that arrived", len(r.msgs), r.err)
		}
		ackAll(r.msgs, flow.Succeeded)
	})

	t.Run("ReleasedComesBack", func(t *testing.T) {
		h := setup(t)
		ctx, cancel := context.WithTimeout(t.Context(), h.Patience)
		defer cancel()
		if err := h.Put(ctx, 3); err != nil {
			t.Fatal(err)
		}
		first := receiveN(ctx, t, h, 3)
		ackAll(first, flow.Released)
		again := receiveN(ctx, t, h, 3)
		if a, b := ids(h, first), ids(h, again); fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("released %v, received again %v", a, b)
		}
		ackAll(again, flow.Succeeded)
	})
}

func receiveN[T any](ctx context.Context, t *testing.T, h Harness[T], n int) []flow.Message[T] {
	t.Helper()
	var all []flow.Message[T]
	for len(all) < n {
		msgs, err := h.Source.Receive(ctx, n-len(all))
		if err != nil {
			t.Fatalf("received %d of %d: %v", len(all), n, err)
		}
		all = append(all, msgs...)
	}
	return all
}

func ids[T any](h Harness[T], msgs []flow.Message[T]) map[string]bool {
	m := map[string]bool{}
	for _, msg := range msgs {
		m[h.ID(msg.Data)] = true
	}
	return m
}

// ackAll acknowledges messages as the runtime would: grouped by acknowledger.
func ackAll[T any](msgs []flow.Message[T], st flow.Status) {
	groups := map[flow.Acknowledger][]flow.Result{}
	var order []flow.Acknowledger
	for _, m := range msgs {
		if m.Acker == nil {
			continue
		}
		if _, ok := groups[m.Acker]; !ok {
			order = append(order, m.Acker)
		}
		groups[m.Acker] = append(groups[m.Acker], flow.Result{Token: m.Token, Status: st})
	}
	for _, a := range order {
		a.Acknowledge(groups[a])
	}
}
