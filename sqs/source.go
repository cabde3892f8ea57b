package sqs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/palleto/palleto/flow"
)

// API is the part of the SQS client that the source uses; *sqs.Client of aws-sdk-go-v2
// implements it.
type API interface {
	ReceiveMessage(context.Context, *awssqs.ReceiveMessageInput, ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(context.Context, *awssqs.DeleteMessageBatchInput, ...func(*awssqs.Options)) (*awssqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *awssqs.ChangeMessageVisibilityBatchInput, ...func(*awssqs.Options)) (*awssqs.ChangeMessageVisibilityBatchOutput, error)
	SendMessage(context.Context, *awssqs.SendMessageInput, ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error)
	GetQueueAttributes(context.Context, *awssqs.GetQueueAttributesInput, ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error)
}

// Stats is a snapshot of a source's counters.
type Stats struct {
	// Requests counts requests by action.
	Requests Requests

	Received     int64 // messages received (duplicates of held messages not included)
	Deleted      int64 // messages deleted
	Released     int64 // messages made visible again unfinished (shutdown, Released outcomes, FIFO groups held back)
	Failed       int64 // Failed outcomes
	Extended     int64 // visibility extensions made
	DeadLettered int64 // messages sent to the dead-letter queue
	Redelivered  int64 // messages received again while the source still held them
	Invalid      int64 // batch entries refused by SQS (a stale receipt handle, a message no longer in flight)
	Dropped      int64 // deletes and visibility changes given up after repeated failures

	InFlight int // messages handed out and not yet acknowledged
	Held     int // messages received and not yet handed out
	Demand   int // messages asked for by Receive calls that are waiting
}

// Requests counts the requests a source made, by action, and those that failed.
type Requests struct {
	ReceiveMessage               int64
	DeleteMessageBatch           int64
	ChangeMessageVisibilityBatch int64
	SendMessage                  int64
	GetQueueAttributes           int64
	Failed                       int64
}

// A Source receives messages from one SQS queue on demand, and deletes, retries, extends or
// releases them as their outcomes arrive. It implements flow.Source[Message] and is the
// flow.Acknowledger of every message it hands out. Create it with [New]; end it with
// [Source.Close].
type Source struct {
	client API
	cfg    Config
	log    *slog.Logger
	fifo   bool
	jitter func(time.Duration) time.Duration // a random duration in [0, d]

	// ctx bounds every request but receives; it is cancelled when Close gives up.
	ctx    context.Context
	cancel context.CancelFunc
	// pollCtx bounds receives; it is cancelled by Close and by a fatal error.
	pollCtx    context.Context
	pollCancel context.CancelFunc

	kick chan struct{} // wakes the owner loop
	done chan struct{} // closed when the owner loop and every request have ended
	wg   sync.WaitGroup

	mu       sync.Mutex
	waiters  []*waiter
	demand   int // sum of the waiters' n
	reserved int // sum of MaxNumberOfMessages of the receives in flight
	polls    map[int]context.CancelFunc
	pollID   int
	fails    int       // empty or failed receives in a row
	after    time.Time // no receive starts before
	ready    []*entry  // received, to be handed out in this order
	groups   map[string]*group
	byID     map[string]*entry // every message the source holds, whatever its state
	outN     int
	dels     []*entry
	vis      []*entry
	sends    []*entry
	batches  int // delete, visibility and send requests in flight
	err      error
	closing  bool
	checking bool  // a drain check is in flight
	drained  bool  // the last drain check found the queue empty
	eof      bool  // drained, and nothing left: Receive returns io.EOF
	seen     int64 // receives that returned messages, to tell a drain check that something came
	lost     int   // deletes and visibility changes not made because Close gave up
	stats    Stats
}

type waiter struct {
	n      int
	c      chan struct{} // closed when served
	served bool
	msgs   []flow.Message[Message]
	err    error
}

type state uint8

const (
	stHeld     state = iota // received, not handed out
	stOut                   // handed out, no outcome yet
	stDeleting              // succeeded or dead-lettered: delete pending or in flight
	stChanging              // failed or released: visibility change pending or in flight
	stSending               // failed for good: SendMessage to the dead-letter queue pending or in flight
	stGone
)

type visKind uint8

const (
	visExtend  visKind = iota + 1 // heartbeat
	visRelease                    // unfinished: visible at once
	visRetry                      // failed: visible after the retry delay
)

// An entry is one received message, the token handed out with it.
type entry struct {
	src        *Source
	msg        Message
	handle     string
	state      state
	receivedAt time.Time
	expires    time.Time // when its visibility runs out, as far as the source knows
	noExtend   bool
	group      *group
	queuedAt   time.Time // when it joined dels, vis or sends

	delBusy   bool // in a delete request
	visQueued bool // in vis, waiting for a request
	visBusy   bool // in a request
	visKind   visKind
	visTo     time.Duration
	visUrgent bool
}

// A group is a FIFO message group with a message handed out (or about to be): the others
// wait here, in order, until it succeeds.
type group struct {
	id   string
	held []*entry
}

// New returns a source that receives from cfg.QueueURL with client, and starts its owner loop.
// It makes no request until Receive is called. The caller must call Close.
func New(client API, cfg Config) (*Source, error) {
	if client == nil {
		return nil, &ConfigError{Field: "client", Reason: "nil"}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Source{
		client: client,
		cfg:    cfg,
		log:    cfg.Logger.With("queue", cfg.QueueURL),
		fifo:   isFIFO(cfg.QueueURL),
		jitter: func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d + 1)
		},
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		polls:  map[int]context.CancelFunc{},
		groups: map[string]*group{},
		byID:   map[string]*entry{},
	}
	// These contexts belong to the source's own loops, which outlive any caller's context.
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.pollCtx, s.pollCancel = context.WithCancel(s.ctx)
	go s.run()
	return s, nil
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
		s.mu.Unlock()
		return nil, ErrClosed
	case s.err != nil:
		s.mu.Unlock()
		return nil, s.err
	case len(s.ready) > 0:
		msgs := s.takeLocked(n)
		s.mu.Unlock()
		return msgs, nil
	case s.eof:
		s.mu.Unlock()
		return nil, io.EOF
	case ctx.Err() != nil:
		s.mu.Unlock()
		return nil, ctx.Err()
	}
	w := &waiter{n: n, c: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.demand += n
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "handling demand of "+strconv.Itoa(n), slog.Int("demand", s.demand))
	}
	s.mu.Unlock()
	s.wake()

	select {
	case <-w.c:
	case <-ctx.Done():
		s.mu.Lock()
		if !w.served {
			s.dropWaiterLocked(w)
			// Nobody wants what the receives in flight would bring: abort them, so that a
			// shutdown does not wait for a long poll.
			if s.demand == 0 {
				for _, cancel := range s.polls {
					cancel()
				}
			}
			s.mu.Unlock()
			s.wake()
			return nil, ctx.Err()
		}
		s.mu.Unlock()
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
		e.state = stOut
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

// Acknowledge implements flow.Acknowledger: a success is deleted, a failure made visible again
// after the retry delay (or sent to the dead-letter queue when permanent), a release made
// visible at once. The requests are made by the owner loop, in batches.
func (s *Source) Acknowledge(results []flow.Result) {
	s.mu.Lock()
	now := time.Now()
	for _, r := range results {
		e, ok := r.Token.(*entry)
		if !ok || e.src != s || e.state != stOut {
			continue // not ours, or released by Close meanwhile
		}
		s.outN--
		switch r.Status {
		case flow.Succeeded:
			s.deleteLocked(e, now)
			s.nextInGroupLocked(e)
		case flow.Released:
			s.releaseGroupLocked(e, now)
			s.releaseLocked(e, now)
		default:
			s.stats.Failed++
			s.releaseGroupLocked(e, now)
			if s.cfg.DeadLetterQueueURL != "" && errors.Is(r.Err, ErrPermanent) {
				e.state = stSending
				e.queuedAt = now
				s.sends = append(s.sends, e)
			} else {
				s.retryLocked(e, now)
			}
		}
	}
	s.serveLocked()
	s.mu.Unlock()
	s.wake()
}

func (s *Source) deleteLocked(e *entry, now time.Time) {
	e.state = stDeleting
	e.queuedAt = now
	s.dels = append(s.dels, e)
}

func (s *Source) releaseLocked(e *entry, now time.Time) {
	e.state = stChanging
	s.queueVisLocked(e, visRelease, 0, true, now)
}

func (s *Source) retryLocked(e *entry, now time.Time) {
	e.state = stChanging
	s.queueVisLocked(e, visRetry, s.cfg.Retry.Delay(max(e.msg.ReceiveCount, 1)), false, now)
}

// queueVisLocked asks for a visibility change of e, replacing one that has not been sent yet.
// One that is in flight is let finish first, so that the last one asked for is the last made.
func (s *Source) queueVisLocked(e *entry, kind visKind, to time.Duration, urgent bool, now time.Time) {
	e.visKind, e.visTo, e.visUrgent = kind, to, urgent
	if !e.visQueued {
		e.visQueued = true
		e.queuedAt = now
		s.vis = append(s.vis, e)
	}
}

// nextInGroupLocked lets the next message of e's FIFO group be handed out, now that e succeeded.
func (s *Source) nextInGroupLocked(e *entry) {
	g := e.group
	if g == nil {
		return
	}
	e.group = nil
	if len(g.held) == 0 {
		delete(s.groups, g.id)
		return
	}
	next := g.held[0]
	g.held = g.held[1:]
	s.ready = append(s.ready, next)
}

// releaseGroupLocked makes the messages held behind e visible again: e did not succeed, so SQS
// must deliver its group again from e on, in order.
func (s *Source) releaseGroupLocked(e *entry, now time.Time) {
	g := e.group
	if g == nil {
		return
	}
	e.group = nil
	delete(s.groups, g.id)
	for _, h := range g.held {
		h.group = nil
		s.releaseLocked(h, now)
	}
}

// finishLocked forgets e: nothing more will be asked of SQS for it.
func (s *Source) finishLocked(e *entry) {
	e.state = stGone
	if s.byID[e.msg.ID] == e {
		delete(s.byID, e.msg.ID)
	}
}

// Check asks SQS for the attributes of the queue (and of the dead-letter queue), so that a
// command finds a missing queue, refused credentials or an unreachable endpoint at start-up.
// The error is a one-line *Error whose Kind says which.
func (s *Source) Check(ctx context.Context) error {
	for _, q := range []string{s.cfg.QueueURL, s.cfg.DeadLetterQueueURL} {
		if q == "" {
			continue
		}
		_, err := s.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(q),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
		})
		s.mu.Lock()
		s.stats.Requests.GetQueueAttributes++
		if err != nil {
			s.stats.Requests.Failed++
		}
		s.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("sqs: check %s: %w", q, ctx.Err())
			}
			return &Error{Action: "GetQueueAttributes", Queue: q, Kind: classify(err), Err: err}
		}
	}
	return nil
}

// Stats returns a snapshot of the source's counters.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.InFlight = s.outN
	for _, e := range s.byID {
		if e.state == stHeld {
			st.Held++
		}
	}
	st.Demand = s.demand
	return st
}

// Close stops the source: waiting and later Receive calls return ErrClosed, receives in flight
// are aborted, messages received and not handed out (and any still handed out) are made
// visible again, and pending deletes and visibility changes are made. Call it after the
// pipeline's Run has returned, so that every outcome is in. It returns when every goroutine of
// the source has ended, or when ctx ends (then with an error that counts what was not done).
func (s *Source) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		now := time.Now()
		s.closing = true
		s.pollCancel()
		for _, e := range s.ready {
			e.group = nil
			s.releaseLocked(e, now)
		}
		s.ready = nil
		for _, g := range s.groups {
			for _, h := range g.held {
				h.group = nil
				s.releaseLocked(h, now)
			}
		}
		clear(s.groups)
		for _, e := range s.byID {
			if e.state == stOut {
				s.outN--
				e.group = nil
				s.releaseLocked(e, now)
			}
		}
		s.serveLocked()
	}
	s.mu.Unlock()
	s.wake()

	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel()
		<-s.done
	}
	s.mu.Lock()
	lost := s.lost
	s.mu.Unlock()
	if lost > 0 {
		if err == nil {
			err = errors.New("requests failed")
		}
		return fmt.Errorf("sqs: close: %w: %d deletes or visibility changes not made", err, lost)
	}
	return nil
}

func (s *Source) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}
