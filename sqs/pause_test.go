package sqs

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/flow"
)

// While paused, a source makes no receive, however long its demand waits; Resume serves the
// demand that waited.
func TestPauseStopsReceives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 5)...)
		s := start(t, f, Config{WaitTime: time.Second})
		s.Pause()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		msgs, err := s.Receive(ctx, 10)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || len(msgs) != 0 {
			t.Fatalf("Receive while paused: %d messages, %v; want none and the deadline", len(msgs), err)
		}
		if n := s.Stats().Requests.ReceiveMessage; n != 0 {
			t.Fatalf("%d receives made while paused", n)
		}
		got := make(chan int, 1)
		go func() {
			msgs, _ := s.Receive(t.Context(), 10)
			ack(msgs, flow.Succeeded, nil)
			got <- len(msgs)
		}()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := s.Stats().Requests.ReceiveMessage; n != 0 {
			t.Fatalf("%d receives made while paused", n)
		}
		s.Resume()
		if n := <-got; n == 0 {
			t.Fatal("no messages after Resume")
		}
	})
}
