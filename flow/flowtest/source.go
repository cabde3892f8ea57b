// Package flowtest helps test pipelines and sources built on package flow: an in-memory
// [Source] that can be fed while a pipeline runs and records how it was asked, a way to send
// one message through a pipeline and get its outcome back ([Source.Test]), and a conformance
// suite that every flow.Source implementation should pass ([TestSource]).
package flowtest

import (
	"context"
	"io"
	"slices"
	"sync"

	"github.com/palleto/palleto/flow"
)

// Outcome is what happened to one message of a [Source].
type Outcome[T any] struct {
	Data   T
	Status flow.Status
	Err    error
}

// Source is an in-memory flow.Source and its own acknowledger. Released messages go back to
// the front of the queue, as a real queue would make them visible again; failed ones do not.
// The zero value is not usable: call [NewSource].
type Source[T any] struct {
	mu       sync.Mutex
	queue    []*entry[T]
	closed   bool
	ready    chan struct{} // signalled when the queue gains items or closes
	calls    []int
	inFlight int
	maxIn    int
	outcomes []Outcome[T]
	acked    chan struct{} // signalled on every Acknowledge
}

type entry[T any] struct {
	data T
	done chan flow.Result // for Test; nil otherwise
}

// NewSource returns an empty source.
func NewSource[T any]() *Source[T] {
	return &Source[T]{ready: make(chan struct{}, 1), acked: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Push adds messages to the end of the queue. Receives waiting for demand get them at once.
func (s *Source[T]) Push(vs ...T) {
	s.mu.Lock()
	for _, v := range vs {
		s.queue = append(s.queue, &entry[T]{data: v})
	}
	s.mu.Unlock()
	signal(s.ready)
}

// Close makes Receive return io.EOF once the queue is empty. Messages released after that
// are recorded as released and stay in the queue.
func (s *Source[T]) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	signal(s.ready)
}

// Receive implements flow.Source.
func (s *Source[T]) Receive(ctx context.Context, n int) ([]flow.Message[T], error) {
	s.mu.Lock()
	s.calls = append(s.calls, n)
	s.mu.Unlock()
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			k := min(n, len(s.queue))
			msgs := make([]flow.Message[T], k)
			for i, e := range s.queue[:k] {
				msgs[i] = flow.Message[T]{Data: e.data, Acker: s, Token: e}
			}
			s.queue = slices.Delete(s.queue, 0, k)
			s.inFlight += k
			s.maxIn = max(s.maxIn, s.inFlight)
			more := len(s.queue) > 0
			s.mu.Unlock()
			if more {
				signal(s.ready)
			}
			return msgs, nil
		}
		if s.closed {
			s.mu.Unlock()
			signal(s.ready)
			return nil, io.EOF
		}
		s.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Acknowledge implements flow.Acknowledger.
func (s *Source[T]) Acknowledge(results []flow.Result) {
	s.mu.Lock()
	var back []*entry[T]
	for _, r := range results {
		e := r.Token.(*entry[T])
		s.inFlight--
		s.outcomes = append(s.outcomes, Outcome[T]{Data: e.data, Status: r.Status, Err: r.Err})
		switch {
		case e.done != nil && r.Status != flow.Released:
			e.done <- r
		case r.Status == flow.Released:
			back = append(back, e)
		}
	}
	if len(back) > 0 {
		s.queue = append(back, s.queue...)
	}
	s.mu.Unlock()
	if len(back) > 0 {
		signal(s.ready)
	}
	signal(s.acked)
}

// Test sends v through the running pipeline that reads from s and returns its outcome, like
// Broadway's test_message. A release (the pipeline shutting down) is not an outcome: Test
// waits on, until ctx is done.
func (s *Source[T]) Test(ctx context.Context, v T) (flow.Result, error) {
	e := &entry[T]{data: v, done: make(chan flow.Result, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, e)
	s.mu.Unlock()
	signal(s.ready)
	select {
	case r := <-e.done:
		r.Token = nil
		return r, nil
	case <-ctx.Done():
		return flow.Result{}, ctx.Err()
	}
}

// WaitOutcomes blocks until at least n outcomes have been recorded, or ctx is done.
func (s *Source[T]) WaitOutcomes(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		got := len(s.outcomes)
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-s.acked:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Calls returns the n of every Receive call so far, in order.
func (s *Source[T]) Calls() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Outcomes returns the outcomes recorded so far, in the order they were acknowledged.
func (s *Source[T]) Outcomes() []Outcome[T] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.outcomes)
}

// InFlight returns the number of messages received and not yet acknowledged, and the
// highest that number has been.
func (s *Source[T]) InFlight() (now, highest int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight, s.maxIn
}

// Len returns the number of messages waiting to be received.
func (s *Source[T]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}
