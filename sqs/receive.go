package sqs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/palleto/palleto/flow"
)

type waiter struct {
	n      int
	c      chan struct{} // closed when served
	served bool
	msgs   []flow.Message[Message]
	err    error
}

// Receive returns between 1 and n messages, waiting until at least one has arrived. It asks
// SQS for them only now, for no more than n, and hands out first those that arrived for
// earlier calls. It returns ctx.Err() when ctx ends first, io.EOF once a Config.Drain source
// is drained, a *Error when SQS refuses the source for good, and ErrClosed after Close.
func (s *Source) Receive(ctx context.Context, n int) ([]flow.Message[Message], error) {
	if n < 1 {
		return nil, fmt.Errorf("sqs: Receive(%d): demand must be at least 1", n)
	}
	s.mu.Lock()
	switch {
	case s.closing:
		s.unlock()
		return nil, ErrClosed
	case s.err != nil:
		s.unlock()
		return nil, s.err
	case len(s.ready) > 0:
		msgs := s.takeLocked(n)
		s.unlock()
		return msgs, nil
	case s.eof:
		s.unlock()
		return nil, io.EOF
	case ctx.Err() != nil:
		s.unlock()
		return nil, ctx.Err()
	}
	w := &waiter{n: n, c: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.demand += n
	demand := s.demand
	s.unlock()
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "handling demand of "+strconv.Itoa(n), slog.Int("demand", demand))
	}
	s.wake()

	select {
	case <-w.c:
	case <-ctx.Done():
		s.mu.Lock()
		if !w.served {
			// The receives in flight go on: what they bring is held for the next caller, or
			// made visible again by Close (an aborted receive could lose its answer).
			s.dropWaiterLocked(w)
			s.unlock()
			s.wake()
			return nil, ctx.Err()
		}
		s.unlock()
	}
	return w.msgs, w.err
}

func (s *Source) dropWaiterLocked(w *waiter) {
	for i, x := range s.waiters {
		if x == w {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			s.demand -= w.n
			return
		}
	}
}

// takeLocked hands out up to n ready messages.
func (s *Source) takeLocked(n int) []flow.Message[Message] {
	k := min(n, len(s.ready))
	msgs := make([]flow.Message[Message], k)
	for i, e := range s.ready[:k] {
		e.to(out)
		msgs[i] = flow.Message[Message]{Data: e.msg, Acker: s, Token: e}
	}
	clear(s.ready[:k])
	s.ready = s.ready[k:]
	if len(s.ready) == 0 {
		s.ready = nil
	}
	s.outN += k
	return msgs
}

// serveLocked gives ready messages to waiting Receive calls, oldest first, and ends the waits
// that can never be served.
func (s *Source) serveLocked() {
	for len(s.waiters) > 0 && len(s.ready) > 0 {
		w := s.waiters[0]
		s.waiters = s.waiters[1:]
		s.demand -= w.n
		w.msgs = s.takeLocked(w.n)
		w.served = true
		close(w.c)
	}
	var err error
	switch {
	case s.err != nil:
		err = s.err
	case s.closing:
		err = ErrClosed
	case s.eof:
		err = io.EOF
	default:
		return
	}
	for _, w := range s.waiters {
		w.err = err
		w.served = true
		close(w.c)
	}
	s.waiters = nil
	s.demand = 0
}

// startPollsLocked starts as many receives as the demand that no receive in flight covers
// needs, each for at most 10 messages, within receivesLocked.
func (s *Source) startPollsLocked(now time.Time) {
	s.cooling = slices.DeleteFunc(s.cooling, func(t time.Time) bool { return !now.Before(t) })
	if s.closing || s.paused || s.err != nil || s.eof || s.drained || now.Before(s.after) {
		return
	}
	// Back-pressure from deletes: handled messages no longer count against demand, so
	// without this a fast pipeline over slow deletes would pile up messages whose visibility
	// runs out before they are deleted. The end of a delete request wakes the loop.
	if len(s.dels) >= s.deleteBacklog() {
		return
	}
	limit := min(s.receivesLocked(), (s.demand+maxBatch-1)/maxBatch)
	// A receive that failed alone pauses in its place (s.cooling); the others go on.
	for s.demand > s.reserved && len(s.polls)+len(s.cooling) < limit {
		k := min(maxBatch, s.demand-s.reserved)
		s.reserved += k
		s.pollID++
		ctx, cancel := context.WithCancel(s.pollCtx)
		s.polls[s.pollID] = cancel
		s.wg.Add(1)
		id := s.pollID
		s.req.do(func() { s.poll(ctx, id, k) })
	}
}

// receivesLocked is how many receives may be in flight at once: Config.MaxReceives; after
// an empty or failed one, only one at a time, once the backoff has passed; after a short one,
// only one at a time; under Drain, no more than the backlog that Check counted still needs,
// and at least one. (Each receive beyond those waits on an empty queue and comes back empty,
// a request for nothing.)
func (s *Source) receivesLocked() int {
	if s.fails > 0 || s.short {
		return 1
	}
	if s.drainLeft >= 0 {
		return max(1, min(s.cfg.MaxReceives, (s.drainLeft+maxBatch-1)/maxBatch))
	}
	return s.cfg.MaxReceives
}

// deleteBacklog is how many messages may wait for their delete before receiving pauses:
// two rounds of full batches at the request limit.
func (s *Source) deleteBacklog() int {
	return 2 * s.cfg.MaxBatchRequests * maxBatch
}

func (s *Source) poll(ctx context.Context, id, k int) {
	defer s.wg.Done()
	wait := s.cfg.WaitTime
	if s.cfg.Drain {
		wait = min(wait, drainWait)
	}
	in := &awssqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(s.cfg.QueueURL),
		MaxNumberOfMessages:         int32(k),
		WaitTimeSeconds:             int32(wait / time.Second),
		VisibilityTimeout:           seconds(s.cfg.VisibilityTimeout),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	}
	s.fifoReceive(in)
	out, err := s.client.ReceiveMessage(ctx, in, s.opts...)
	now := time.Now()

	s.mu.Lock()
	defer s.wake()
	defer s.unlock()
	aborted := ctx.Err() != nil
	s.polls[id]()
	delete(s.polls, id)
	s.reserved -= k
	s.count.ReceiveMessage.Add(1)
	if err != nil {
		if aborted {
			s.settleDrainLocked()
			return // aborted by us: not a failure of SQS
		}
		s.count.FailedRequests.Add(1)
		if kind := classify(err); kind != ErrUnavailable {
			s.failLocked(&Error{Action: "ReceiveMessage", Queue: s.cfg.QueueURL, Kind: kind, Err: err})
			return
		}
		s.errs++
		if s.errs == 1 {
			// A failure among receives that succeed (a blip, one throttled request): only
			// this receive pauses, so that it does not hold back the others.
			s.cooling = append(s.cooling, now.Add(s.pause.DelayAt(1, s.rand())))
		} else {
			// Failing in a row: an outage, or worse. The source backs off as a whole, to
			// one receive at a time.
			s.backoffLocked(now)
		}
		s.logLocked(slog.LevelWarn, "receive failed, retrying", slog.Int("in_a_row", s.errs), slog.Any("err", err))
		s.settleDrainLocked()
		return
	}
	s.errs = 0
	s.lastRecv = now
	if len(out.Messages) == 0 {
		s.count.EmptyReceives.Add(1)
		s.backoffLocked(now)
		s.checkDrainLocked()
		s.settleDrainLocked()
		return
	}
	s.logLocked(slog.LevelDebug, "received "+strconv.Itoa(len(out.Messages)), slog.Int("asked", k), slog.Int("demand", s.demand))
	fresh := 0
	for _, m := range out.Messages {
		if s.addLocked(m, now) {
			fresh++
		}
	}
	if fresh == 0 {
		// Only messages the source already holds, come back: as good as empty.
		s.backoffLocked(now)
		return
	}
	s.fails, s.after, s.drained = 0, time.Time{}, false
	if s.drainLeft >= 0 {
		s.drainLeft -= fresh
		if s.drainLeft < 0 {
			s.drainLeft = -1 // more than the count: it was short (messages sent since)
		}
	}
	// A long poll that brought fewer messages than it asked for found the backlog short:
	// more receives at once would mostly come back empty, each a request. (A FIFO queue
	// holds back the groups in flight, so that short answers say nothing of its backlog.)
	s.short = !s.fifo && s.cfg.WaitTime > 0 && len(out.Messages) < k
	s.seen++
	s.serveLocked()
}

func (s *Source) backoffLocked(now time.Time) {
	s.fails++
	s.after = now.Add(s.pause.DelayAt(s.fails, s.rand()))
}

// addLocked takes in a received message; false means the source held it already.
func (s *Source) addLocked(m types.Message, now time.Time) bool {
	msg := newMessage(m)
	msg.ReceivedAt = now
	handle := aws.ToString(m.ReceiptHandle)
	if old := s.byID[msg.ID]; old != nil && (old.mine() || !old.busy()) {
		// Its visibility ran out while we held it. SQS wants the newest receipt handle,
		// and the message must not be handed out twice. (Once a delete or change with
		// the old handle is on its way, it is too late: the copy is a new delivery.)
		old.handle = handle
		old.expires = now.Add(s.cfg.VisibilityTimeout)
		s.count.Redelivered.Add(1)
		return false
	}
	s.count.Received.Add(1)
	e := &entry{src: s, msg: msg, handle: handle, receivedAt: now, expires: now.Add(s.cfg.VisibilityTimeout)}
	s.byID[msg.ID] = e
	if s.closing || s.err != nil {
		s.releaseLocked(e, now)
		return true
	}
	if !s.joinGroupLocked(e) {
		s.ready = append(s.ready, e)
	}
	return true
}
