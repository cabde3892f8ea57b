package sqs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/flow"
)

// TestStateTransitions checks entry.to against the table in entry.go's documentation, written
// out again here: every pair it lists is allowed, every other pair panics.
func TestStateTransitions(t *testing.T) {
	allowed := map[[2]state]bool{}
	for _, p := range []struct {
		from state
		to   []state
	}{
		{held, []state{out, toRelease}},
		{out, []state{toDelete, toRelease, toRetry, toSend}},
		{toSend, []state{sending, gone}},
		{sending, []state{toDelete, toRetry, gone}},
		{toDelete, []state{deleting, gone}},
		{toRelease, []state{changing, gone}},
		{toRetry, []state{changing, gone}},
		{deleting, []state{gone}},
		{changing, []state{gone}},
	} {
		for _, to := range p.to {
			allowed[[2]state{p.from, to}] = true
		}
	}
	for from := range nStates {
		for to := range nStates {
			e := &entry{msg: Message{ID: "m1"}, state: from}
			panicked := func() (p bool) {
				defer func() { p = recover() != nil }()
				e.to(to)
				return false
			}()
			if want := !allowed[[2]state{from, to}]; panicked != want {
				t.Errorf("%v → %v: panicked %v, want %v", from, to, panicked, want)
			}
			if !panicked && e.state != to {
				t.Errorf("%v → %v: state %v after", from, to, e.state)
			}
		}
	}
}

// A dead-letter send that keeps failing leaves the message to be retried like any failure
// (sending → toRetry), after the request's attempts.
func TestDeadLetterSendFailureRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL, dlqURL)
		f.put(qURL, "poison")
		f.sendErr = func(int) error { return responseError(500) }
		s := start(t, f, Config{DeadLetterQueueURL: dlqURL, Retry: backoff.Fixed(10 * time.Second)})
		msgs := receive(t, s, 1)
		ack(msgs, flow.Failed, Permanent(errors.New("not json")))
		time.Sleep(time.Minute)
		if n := len(f.callsOf("SendMessage")); n != batchAttempts {
			t.Fatalf("%d sends, want %d", n, batchAttempts)
		}
		changes := f.callsOf("ChangeMessageVisibilityBatch")
		if len(changes) != 1 || len(changes[0].Entries) != 1 || changes[0].Entries[0].Timeout != 10 {
			t.Fatalf("visibility changes %+v, want one of 10 s", changes)
		}
		if st := s.Stats(); st.DeadLettered != 0 || st.Failed != 1 || st.Deleted != 0 {
			t.Fatalf("stats %+v", st)
		}
		again := receive(t, s, 1)
		if again[0].Data.ReceiveCount != 2 {
			t.Fatalf("receive count %d, want 2", again[0].Data.ReceiveCount)
		}
		f.mu.Lock()
		f.sendErr = nil
		f.mu.Unlock()
		ack(again, flow.Failed, Permanent(errors.New("not json")))
		time.Sleep(time.Second)
		if st := s.Stats(); st.DeadLettered != 1 || st.Deleted != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// blocked returns how many batch requests wait for f.blockBatch.
func (f *fakeSQS) blockedNow() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blocked
}

// A release asked for while an extension is in flight waits for it: made after it, the message
// ends up visible.
func TestReleaseWaitsForExtensionInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, "a")
		unblock := make(chan struct{})
		f.blockBatch = unblock
		s := start(t, f, Config{VisibilityTimeout: 30 * time.Second})
		msgs := receive(t, s, 1)
		time.Sleep(13 * time.Second) // the extension is asked for at the tick after 10 s
		synctest.Wait()
		if n := f.blockedNow(); n != 1 {
			t.Fatalf("%d requests in flight, want the extension", n)
		}
		ack(msgs, flow.Released, nil)
		time.Sleep(time.Second)
		if n := f.blockedNow(); n != 1 {
			t.Fatalf("%d requests in flight, want only the extension", n)
		}
		close(unblock)
		time.Sleep(time.Second)
		changes := f.callsOf("ChangeMessageVisibilityBatch")
		if len(changes) != 2 || changes[0].Entries[0].Timeout != 30 || changes[1].Entries[0].Timeout != 0 {
			t.Fatalf("visibility changes %+v, want the extension then the release", changes)
		}
		if v, _ := f.counts(qURL); v != 1 {
			t.Fatal("released message not visible")
		}
		if st := s.Stats(); st.Extended != 1 || st.Released != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// An extension that SQS refuses (the receipt handle is no longer valid) stops the heartbeat of
// that message.
func TestExtensionRefusedStopsHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, "a")
		s := start(t, f, Config{VisibilityTimeout: 30 * time.Second})
		msgs := receive(t, s, 1)
		f.mu.Lock()
		f.queues[qURL].msgs[0].handle = "another consumer's"
		f.mu.Unlock()
		time.Sleep(5 * time.Minute)
		if n := len(f.callsOf("ChangeMessageVisibilityBatch")); n != 1 {
			t.Fatalf("%d visibility changes, want the one refused", n)
		}
		if st := s.Stats(); st.Invalid != 1 || st.Extended != 0 {
			t.Fatalf("stats %+v", st)
		}
		ack(msgs, flow.Released, nil)
	})
}

// When Close gives up, a release that waited behind an extension in flight is forgotten
// (toRelease → gone) and counted as not made.
func TestCloseCountsReleaseBehindExtension(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, "a")
		f.blockBatch = make(chan struct{})
		s, err := New(f, Config{QueueURL: qURL, VisibilityTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		msgs := receive(t, s, 1)
		time.Sleep(13 * time.Second)
		ack(msgs, flow.Released, nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		err = s.Close(ctx)
		if err == nil || !strings.Contains(err.Error(), ": 1 deletes or visibility changes not made") {
			t.Fatalf("Close: %v, want 1 visibility change not made", err)
		}
	})
}
