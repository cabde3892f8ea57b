package sqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/palleto/palleto/backoff"
)

// API is the part of the SQS client that the package uses; *sqs.Client of aws-sdk-go-v2
// implements it.
type API interface {
	ReceiveMessage(context.Context, *awssqs.ReceiveMessageInput, ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(context.Context, *awssqs.DeleteMessageBatchInput, ...func(*awssqs.Options)) (*awssqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(context.Context, *awssqs.ChangeMessageVisibilityBatchInput, ...func(*awssqs.Options)) (*awssqs.ChangeMessageVisibilityBatchOutput, error)
	SendMessage(context.Context, *awssqs.SendMessageInput, ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error)
	GetQueueAttributes(context.Context, *awssqs.GetQueueAttributesInput, ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error)
	// For QueueCounts, RedrivePolicy and Send:
	GetQueueUrl(context.Context, *awssqs.GetQueueUrlInput, ...func(*awssqs.Options)) (*awssqs.GetQueueUrlOutput, error)
	SendMessageBatch(context.Context, *awssqs.SendMessageBatchInput, ...func(*awssqs.Options)) (*awssqs.SendMessageBatchOutput, error)
}

// Stats is a snapshot of a source's counters.
type Stats struct {
	// Requests counts requests by action.
	Requests Requests

	Received      int64 // messages received (duplicates of held messages not included)
	EmptyReceives int64 // receives that succeeded and brought no message
	// LastReceive is when a ReceiveMessage last succeeded; zero before the first.
	LastReceive  time.Time
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
	// pause is the backoff after an empty or failed receive and between the tries of a
	// batch request: Config.PollBackoff doubling up to MaxPollBackoff, full jitter.
	pause backoff.Policy
	rand  func() float64 // the jitter's draws, in [0, 1)
	// opts are the options of the requests that the source's loops make and retry themselves.
	opts []func(*awssqs.Options)

	// ctx bounds every request but receives; it is cancelled when Close gives up.
	ctx    context.Context
	cancel context.CancelFunc
	// pollCtx bounds receives; it is cancelled by Close and by a fatal error.
	pollCtx    context.Context
	pollCancel context.CancelFunc

	kick chan struct{}  // wakes the owner loop
	done chan struct{}  // closed when the owner loop and every request have ended
	wg   sync.WaitGroup // the requests in flight
	req  *requesters    // where the requests run

	count counters // not guarded by mu

	// mu guards what follows, and the entries' fields. Log lines made while it is held wait
	// in logs until unlock lets go of it.
	mu       sync.Mutex
	logs     []slog.Record
	waiters  []*waiter
	demand   int // sum of the waiters' n
	reserved int // sum of MaxNumberOfMessages of the receives in flight
	polls    map[int]context.CancelFunc
	pollID   int
	fails    int         // empty receives, and failed ones after the first, in a row
	short    bool        // the last receive that brought messages brought fewer than asked
	after    time.Time   // no receive starts before
	errs     int         // failed receives in a row
	cooling  []time.Time // receives paused after a failure, each until its time: see poll
	ready    []*entry    // held, to be handed out in this order
	groups   map[string]*group
	byID     map[string]*entry // every message the source holds, whatever its state
	outN     int               // messages in state out
	dels     []*entry          // toDelete, oldest first
	vis      []*entry          // toRelease, toRetry, and those whose extension is queued
	sends    []*entry          // toSend
	batches  int               // delete, visibility and send requests in flight
	err      error
	closing  bool
	lastRecv time.Time // the last receive that succeeded
	paused   bool      // Pause: no receive starts
	checking bool      // a drain check is in flight
	drained  bool      // the last drain check found the queue empty
	eof      bool      // drained, and nothing left: Receive returns io.EOF
	seen     int64     // receives that returned messages, to tell a drain check that something came
	lost     int       // deletes and visibility changes not made because Close gave up
	// back is when the last message this source made visible again (released, or failed and
	// retried) is due back in the queue: a drain check ends no drain before drainSettle after
	// it (see checkDrain).
	back time.Time

	// checkedRedrive is the queue's RedrivePolicy attribute as Check read it ("" for none),
	// nil before a successful Check.
	checkedRedrive *string
	// redriveMax is the maxReceiveCount of that policy, 0 for none: a message that fails on
	// its redriveMax-th delivery is not hidden for the retry delay (see retryLocked).
	redriveMax int
	// drainLeft is, under Drain, how many of the messages that the queue held when Check
	// read its counts have not come yet; -1 when not known. See receivesLocked.
	drainLeft int
}

// counters are the source's statistics, counted without the lock: see [Stats].
type counters struct {
	ReceiveMessage, DeleteMessageBatch, ChangeMessageVisibilityBatch atomic.Int64
	SendMessage, GetQueueAttributes, FailedRequests                  atomic.Int64

	Received, EmptyReceives, Deleted, Released, Failed, Extended atomic.Int64
	DeadLettered, Redelivered, Invalid, Dropped                  atomic.Int64
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
		pause:  backoff.Policy{Base: cfg.PollBackoff, Max: cfg.MaxPollBackoff, Jitter: 1},
		rand:   rand.Float64,
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		req:    newRequesters(),
		polls:  map[int]context.CancelFunc{},
		// The source's own receives take the place of a backlog not counted.
		drainLeft: -1,
		groups:    map[string]*group{},
		byID:      map[string]*entry{},
	}
	// The source's loops retry their requests themselves and go on with other work meanwhile:
	// the SDK's own retries of them pause as the source does, briefly (the standard retryer
	// waits up to seconds between attempts, which suits calls made one at a time). The
	// retryer's own retry quota still turns an outage into single attempts.
	retryer := retry.NewStandard(func(o *retry.StandardOptions) {
		o.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
			return s.pause.DelayAt(attempt, rand.Float64()), nil
		})
	})
	s.opts = []func(*awssqs.Options){func(o *awssqs.Options) { o.Retryer = retryer }}
	// These contexts belong to the source's own loops, which outlive any caller's context.
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.pollCtx, s.pollCancel = context.WithCancel(s.ctx)
	go s.run()
	return s, nil
}

// Check asks SQS for the attributes of the queue (and of the dead-letter queue), so that a
// command finds a missing queue, refused credentials or an unreachable endpoint at start-up.
// The error is a one-line *Error whose Kind says which.
func (s *Source) Check(ctx context.Context) error {
	for _, q := range []string{s.cfg.QueueURL, s.cfg.DeadLetterQueueURL} {
		if q == "" {
			continue
		}
		names := []types.QueueAttributeName{types.QueueAttributeNameQueueArn}
		if q == s.cfg.QueueURL {
			// Kept for RedrivePolicy, which then needs no request of its own.
			names = append(names, types.QueueAttributeNameRedrivePolicy)
			if s.cfg.Drain {
				// The backlog to drain, for receivesLocked.
				names = append(names, countAttributes...)
			}
		}
		out, err := s.client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
			QueueUrl:       aws.String(q),
			AttributeNames: names,
		})
		if err == nil && q == s.cfg.QueueURL {
			policy := out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]
			s.mu.Lock()
			s.checkedRedrive = &policy
			s.redriveMax = 0
			if policy != "" {
				if _, n, err := parseRedrive(q, policy); err == nil {
					s.redriveMax = n
				}
			}
			if s.cfg.Drain && !s.fifo {
				if c, err := countsOf(out.Attributes); err == nil {
					s.drainLeft = c.Total()
				}
			}
			s.unlock()
		}
		s.count.GetQueueAttributes.Add(1)
		if err != nil {
			s.count.FailedRequests.Add(1)
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("sqs: check %s: %w", q, ctx.Err())
			}
			return &Error{Action: "GetQueueAttributes", Queue: q, Kind: classify(err), Err: err}
		}
	}
	return nil
}

// RedrivePolicy returns the redrive policy of the source's queue, as the function
// RedrivePolicy does; after a successful Check, from the attributes that Check read.
func (s *Source) RedrivePolicy(ctx context.Context) (Redrive, error) {
	s.mu.Lock()
	policy := s.checkedRedrive
	s.unlock()
	if policy == nil {
		return RedrivePolicy(ctx, s.client, s.cfg.QueueURL)
	}
	return redriveOf(ctx, s.client, s.cfg.QueueURL, *policy)
}

// Stats returns a snapshot of the source's counters.
func (s *Source) Stats() Stats {
	c := &s.count
	st := Stats{
		Requests: Requests{
			ReceiveMessage:               c.ReceiveMessage.Load(),
			DeleteMessageBatch:           c.DeleteMessageBatch.Load(),
			ChangeMessageVisibilityBatch: c.ChangeMessageVisibilityBatch.Load(),
			SendMessage:                  c.SendMessage.Load(),
			GetQueueAttributes:           c.GetQueueAttributes.Load(),
			Failed:                       c.FailedRequests.Load(),
		},
		Received:      c.Received.Load(),
		EmptyReceives: c.EmptyReceives.Load(),
		Deleted:       c.Deleted.Load(),
		Released:      c.Released.Load(),
		Failed:        c.Failed.Load(),
		Extended:      c.Extended.Load(),
		DeadLettered:  c.DeadLettered.Load(),
		Redelivered:   c.Redelivered.Load(),
		Invalid:       c.Invalid.Load(),
		Dropped:       c.Dropped.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.InFlight = s.outN
	st.LastReceive = s.lastRecv
	for _, e := range s.byID {
		if e.state == held {
			st.Held++
		}
	}
	st.Demand = s.demand
	return st
}

// closeReceiveWait is how long Close lets the receives in flight answer.
const closeReceiveWait = time.Second

// Close stops the source: waiting and later Receive calls return ErrClosed, messages received
// and not handed out (and any still handed out) are made visible again, and pending deletes
// and visibility changes are made. Receives in flight get closeReceiveWait to answer, and what
// they bring is made visible again too; then they are aborted. (SQS has handed its messages to
// a receive before its answer arrives: a receive aborted then would leave them invisible until
// their visibility timeout. One that is still waiting after that while is a long poll on an
// empty queue.) Call it after the
// pipeline's Run has returned, so that every outcome is in. It returns when every goroutine of
// the source has ended, or when ctx ends (then with an error that counts what was not done).
func (s *Source) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		now := time.Now()
		s.closing = true
		abort := time.AfterFunc(closeReceiveWait, s.pollCancel)
		defer abort.Stop()
		for _, e := range s.ready {
			s.releaseLocked(e, now)
		}
		s.ready = nil
		s.releaseGroupsLocked(now)
		for _, e := range s.byID {
			if e.state == out {
				s.outN--
				s.releaseLocked(e, now)
			}
		}
		s.serveLocked()
	}
	s.unlock()
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

// run is the owner loop: the one place that starts requests. It wakes when demand, outcomes or
// answers arrive, when a flush or backoff is due, and on heartbeat ticks.
func (s *Source) run() {
	defer close(s.done)
	defer s.cancel()
	defer s.req.stop()

	var tick <-chan time.Time
	if s.cfg.MaxExtension > 0 {
		// A message is extended once a third of its visibility has passed; ticking at a
		// tenth keeps every extension well before half of it.
		t := time.NewTicker(s.cfg.VisibilityTimeout / 10)
		defer t.Stop()
		tick = t.C
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	ticked := false
	for {
		s.mu.Lock()
		now := time.Now()
		if ticked && !s.closing {
			s.heartbeatLocked(now)
		}
		ticked = false
		s.startPollsLocked(now)
		s.flushLocked(now)
		finished := s.closing && len(s.polls) == 0 && s.batches == 0 && !s.checking &&
			len(s.dels) == 0 && len(s.vis) == 0 && len(s.sends) == 0
		next := s.nextWakeLocked(now)
		s.unlock()
		if finished {
			s.wg.Wait()
			return
		}
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(next.Sub(now))
		}
		select {
		case <-s.kick:
		case <-timer.C:
		case <-tick:
			ticked = true
		}
	}
}

// nextWakeLocked returns when the loop must look again without being woken, or zero.
func (s *Source) nextWakeLocked(now time.Time) time.Time {
	var next time.Time
	earliest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if s.demand > s.reserved && s.after.After(now) {
		earliest(s.after)
	}
	if s.demand > s.reserved {
		for _, t := range s.cooling {
			if t.After(now) { // a pause over while receives wait for another reason: no wake
				earliest(t)
			}
		}
	}
	if s.batches >= s.cfg.MaxBatchRequests {
		return next // the end of a batch request wakes the loop
	}
	if len(s.dels) > 0 {
		earliest(s.dels[0].queuedAt.Add(s.cfg.FlushInterval))
	}
	for _, e := range s.vis {
		if e.beat != beatBusy {
			earliest(e.queuedAt.Add(s.cfg.FlushInterval))
			break
		}
	}
	return next
}

// failLocked stops the source for good: waiting and later Receive calls return err.
func (s *Source) failLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	s.logLocked(slog.LevelError, "source stopped", slog.Any("err", err))
	s.pollCancel()
	s.serveLocked()
}

// logLocked makes a log line, to be written once the lock is let go: a slow log handler must
// not hold up the source.
func (s *Source) logLocked(level slog.Level, msg string, attrs ...slog.Attr) {
	if !s.log.Enabled(context.Background(), level) {
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	s.logs = append(s.logs, r)
}

// unlock lets go of the lock, then writes the log lines made while it was held.
func (s *Source) unlock() {
	logs := s.logs
	s.logs = nil
	s.mu.Unlock()
	for _, r := range logs {
		_ = s.log.Handler().Handle(context.Background(), r)
	}
}
