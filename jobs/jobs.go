// Package jobs is an embedded job queue that feeds a flow pipeline: the worker pool's queue.
//
// A [Queue] is a [flow.Source] of [Job]s and their [flow.Acknowledger]. Jobs are named by an
// id (a Dropbox account, say) and are put in with [Queue.Enqueue]. The queue is durable unless
// asked otherwise: it keeps its jobs in a bbolt file in a data directory, and Enqueue returns
// only once the jobs are on disk (fsync'd), so that a job accepted survives a crash. The data
// directory and a new file's name are synced too, when Open makes them.
//
// # One job per id
//
// A job is the need to do the work for an id once more, not a message: posting an id that is
// already waiting adds nothing. An id that is running now is queued again, because a change
// that arrives during a run may have come too late for it; it runs once more after the
// current run, however many times it was posted meanwhile.
//
// # Retries and dead jobs
//
// A failed run is retried after the delay that Config.Retry gives for the number of failed
// runs so far: by default 1 s doubling to at most 5 min, each delay drawn between half and
// all of its step (backoff.Default). After Config.MaxAttempts failed runs (5) the job is dead: kept, listed by
// [Queue.Dead] and put back by [Queue.Requeue]. Posting an id whose job waits for a retry
// makes it run now, as one job; posting a dead id queues it afresh.
//
// # Managing jobs
//
// [Queue.List] lists the jobs by [State] (queued, running, retrying, dead), [Queue.Info]
// tells one job with the history of its latest failed runs (kept on disk with it),
// [Queue.RunNow] runs a retrying or dead job at once and [Queue.Delete] forgets a job that
// is not running. The admin listener and `palleto jobs` are built on them.
//
// # Crashes
//
// What is on disk is what waits: jobs waiting, jobs waiting for a retry (with their due time
// and failed attempts) and dead jobs. A run is not recorded, so a job that was running when
// the process died runs again after a restart, and that cut-off run is not counted as an
// attempt; an id that was running and queued again at the time runs once. A run released by
// a pipeline shutting down ([flow.Released]) goes back to the queue the same way.
//
// # Demand
//
// Receive blocks while nothing is ready and hands a job to a waiting Receive the moment it is
// enqueued or its retry falls due, without polling. With a flow pipeline whose workers have
// MaxDemand 1, each worker takes one job at a time and an idle worker starts a new job at
// once.
package jobs

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/flow"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxAttempts = 5
)

// MaxIDLen is the longest id accepted, in bytes.
const MaxIDLen = 4096

// maxErrLen bounds the error text kept with a job.
const maxErrLen = 1024

// Errors returned by the queue.
var (
	// ErrClosed is returned by calls on a queue after Close.
	ErrClosed = errors.New("jobs: queue closed")
	// ErrNoDir is returned by Open for a durable queue without a data directory.
	ErrNoDir = errors.New("jobs: no data directory (set Config.Dir, or Config.Memory for a queue in memory)")
	// ErrLocked is returned by Open when another process holds the data directory.
	ErrLocked = errors.New("jobs: data directory in use by another process")
	// ErrBadConfig is wrapped by the errors of Config.Validate.
	ErrBadConfig = errors.New("jobs: bad configuration")
	// ErrNotFound is returned for an id that names no job: never posted, done, or deleted.
	ErrNotFound = errors.New("jobs: no such job")
	// ErrRunning is returned by Delete for a job that is running now.
	ErrRunning = errors.New("jobs: the job is running")
)

// An IDError reports an id that cannot name a job.
type IDError struct {
	ID     string
	Reason string
}

func (e *IDError) Error() string {
	id := e.ID
	if len(id) > 64 {
		id = id[:64] + "…"
	}
	return fmt.Sprintf("jobs: id %q: %s", id, e.Reason)
}

// A StoreError reports that the data directory failed to store a change. The queue does not
// trust a store that failed: every later Enqueue and Receive returns the error.
type StoreError struct {
	Err error
}

func (e *StoreError) Error() string { return "jobs: store: " + e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

// Config configures a Queue.
type Config struct {
	// Dir is the data directory of a durable queue, created if missing. Required unless
	// Memory is set.
	Dir string
	// Memory keeps the queue in memory only: nothing survives the process.
	Memory bool
	// MaxAttempts is how many failed runs make a job dead. Zero means DefaultMaxAttempts.
	MaxAttempts int
	// Retry gives the delay before a failed job runs again, from the number of its failed
	// runs in a row. Nil means backoff.Default().
	Retry *backoff.Policy
	// Logger receives what the queue restores at Open and store failures. Nil discards.
	Logger *slog.Logger
	// OnOutcome, when set, is told of every run that ended, succeeded or failed (not of
	// runs released by a shutdown), after the queue recorded it. It is called from the
	// pipeline's acknowledgements: keep it fast.
	OnOutcome func(Outcome)
}

// An Outcome is the end of one run of a job, and what the queue does next with the job.
type Outcome struct {
	ID      string
	Attempt int           // this run's attempt, as in Job
	Waited  time.Duration // from when the job was ready to run to when it was handed out
	Ran     time.Duration // from when it was handed out to its outcome
	Err     error         // nil: succeeded
	// What happens next after a failure: RetryAt is when it runs again; Dead is set when
	// it was given up instead. After a success both are zero.
	RetryAt time.Time
	Dead    bool
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	switch {
	case !c.Memory && c.Dir == "":
		return ErrNoDir
	case c.MaxAttempts < 0:
		return fmt.Errorf("%w: MaxAttempts %d is negative", ErrBadConfig, c.MaxAttempts)
	}
	if c.Retry != nil {
		if err := c.Retry.Validate(); err != nil {
			return fmt.Errorf("%w: Retry: %v", ErrBadConfig, err)
		}
	}
	return nil
}

// A Job is one run of the work for an id, as the queue hands it out.
type Job struct {
	ID string
	// Attempt counts the runs of this job that were tried, this one included: 1 the first
	// time, 2 after one failure, and so on. Runs cut off by a crash or a shutdown are not
	// counted.
	Attempt int
}

// Counts are the numbers of jobs in each state.
type Counts struct {
	// Queued jobs wait to run, now or after a retry's backoff. An id that is running and
	// posted again counts here too.
	Queued int `json:"queued"`
	// Running jobs have been handed out and have no outcome yet.
	Running int `json:"running"`
	// Done is the number of runs that succeeded since the queue was opened.
	Done int `json:"done"`
	// Failed is the number of runs that failed since the queue was opened.
	Failed int `json:"failed"`
	// Dead jobs failed MaxAttempts times and wait for Requeue.
	Dead int `json:"dead"`
}

// A State is where a job is in its life, as [Queue.List] and [Queue.Info] tell it.
type State string

// States of a job.
const (
	StateQueued   State = "queued"   // waiting to run now
	StateRunning  State = "running"  // handed out, no outcome yet
	StateRetrying State = "retrying" // waiting for a retry's backoff to end
	StateDead     State = "dead"     // given up after MaxAttempts failed runs
)

// ParseState returns the State that s names, or an error listing the states.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case StateQueued, StateRunning, StateRetrying, StateDead:
		return st, nil
	}
	return "", fmt.Errorf("jobs: unknown state %q (want queued, running, retrying or dead)", s)
}

// maxHistory bounds the failed attempts kept with a job: the latest ones.
const maxHistory = 20

// An Attempt is a failed run of a job.
type Attempt struct {
	Attempt int       `json:"attempt"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
	Error   string    `json:"error"`
}

// Info is what the queue knows of one job.
type Info struct {
	ID    string `json:"id"`
	State State  `json:"state"`
	// Attempts is the number of failed runs so far (a run in progress is not counted).
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// Queued is when the job was last posted or put back; Ready when it could run (the end
	// of its latest backoff, or Queued); Started when its current run began (running only).
	Queued  time.Time `json:"queued"`
	Ready   time.Time `json:"ready"`
	Started time.Time `json:"started,omitzero"`
	RetryAt time.Time `json:"retry_at,omitzero"` // retrying only
	DiedAt  time.Time `json:"died_at,omitzero"`  // dead only
	// Again is set on a running job that was posted again during its run: it runs once
	// more afterwards.
	Again bool `json:"again,omitempty"`
	// History lists the latest failed runs, oldest first (at most 20).
	History []Attempt `json:"history,omitempty"`
}

// A DeadJob is a job that was given up.
type DeadJob struct {
	ID       string
	Attempts int
	LastErr  string
	DiedAt   time.Time
}

type state uint8

const (
	waiting  state = iota + 1 // ready to run now
	retrying                  // waiting until due
	running                   // handed out; on disk it is still waiting
	dead
)

// entry is the queue's record of one id.
type entry struct {
	id       string
	state    state
	attempts int       // failed runs so far
	seq      uint64    // queue order: lower runs first
	due      time.Time // retrying: when it is ready again
	again    bool      // running: posted again since it was handed out
	lastErr  string
	diedAt   time.Time
	idx      int // position in the ready or the retry heap

	queued  time.Time // last posted or put back
	ready   time.Time // when it could run: queued, or the end of its latest backoff
	started time.Time // running: when it was handed out
	history []Attempt // the latest failed runs, oldest first
}

// Queue is a job queue. It is a flow.Source[Job] and the Acknowledger of what it hands out.
// Its methods are safe for concurrent use.
type Queue struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	entries map[string]*entry
	ready   entryHeap // by place in the queue
	retry   entryHeap // by due time
	seq     uint64
	running int
	again   int
	dead    int
	done    int
	failed  int
	closed  bool
	broken  error // a store failure; sticky

	// wake is signalled when jobs become ready; closedc is closed by Close. Receive waits
	// on both, so that a waiting Receive gets a job the moment it arrives.
	wake    chan struct{}
	closedc chan struct{}

	st *store // nil for a queue in memory
}

// Open opens the queue described by cfg. A durable queue restores what its data directory
// holds: waiting jobs, jobs that were running when the process ended (waiting again), jobs
// waiting for a retry and dead jobs.
func Open(cfg Config) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Retry == nil {
		cfg.Retry = backoff.Default()
	} else {
		p := *cfg.Retry // the caller's may change
		cfg.Retry = &p
	}
	q := &Queue{
		cfg:     cfg,
		log:     cfg.Logger,
		entries: map[string]*entry{},
		ready:   entryHeap{less: byPlace},
		retry:   entryHeap{less: byDue},
		wake:    make(chan struct{}, 1),
		closedc: make(chan struct{}),
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Memory {
		return q, nil
	}
	st, restored, err := openStore(cfg.Dir, q.log)
	if err != nil {
		return nil, err
	}
	for _, e := range restored {
		q.restore(e)
	}
	q.st = st
	st.start(q.fail)
	c := q.countsLocked()
	q.log.Info("jobs: opened", "dir", cfg.Dir, "queued", c.Queued, "dead", c.Dead)
	return q, nil
}

func (q *Queue) restore(e *entry) {
	q.entries[e.id] = e
	q.seq = max(q.seq, e.seq)
	switch e.state {
	case waiting:
		heap.Push(&q.ready, e)
	case retrying:
		heap.Push(&q.retry, e)
	case dead:
		q.dead++
	}
}

// Close flushes what is not yet on disk and closes the data directory. Call it after the
// pipeline that reads the queue has stopped: outcomes delivered later are lost (the jobs run
// again after the next Open). Receive and Enqueue return ErrClosed afterwards.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	close(q.closedc)
	q.mu.Unlock()
	if q.st == nil {
		return nil
	}
	return q.st.close()
}

// fail makes the queue refuse work after the store failed: what is in memory is no longer
// what is on disk.
func (q *Queue) fail(err error) {
	q.mu.Lock()
	if q.broken == nil {
		q.broken = err
	}
	q.mu.Unlock()
	signal(q.wake)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func checkID(id string) error {
	switch {
	case id == "":
		return &IDError{id, "empty"}
	case len(id) > MaxIDLen:
		return &IDError{id, fmt.Sprintf("%d bytes, longer than %d", len(id), MaxIDLen)}
	}
	return nil
}

// Enqueue queues a job for each id, following the rules in the package documentation. A
// durable queue returns once the jobs are on disk. Ids are checked first: if one is invalid,
// nothing is queued. When ctx ends while Enqueue waits for the disk, it returns ctx's error,
// and the jobs may or may not have been stored.
func (q *Queue) Enqueue(ctx context.Context, ids ...string) error {
	for _, id := range ids {
		if err := checkID(id); err != nil {
			return err
		}
	}
	q.mu.Lock()
	if err := q.usable(); err != nil {
		q.mu.Unlock()
		return err
	}
	readied := false
	for _, id := range ids {
		readied = q.enqueueLocked(id, time.Now()) || readied
	}
	return q.commit(ctx, readied)
}

// commit releases q.mu, wakes a waiting Receive if jobs became ready, and waits until every
// change made so far is on disk.
func (q *Queue) commit(ctx context.Context, readied bool) error {
	var wait <-chan error
	if q.st != nil {
		wait = q.st.waiter()
	}
	q.mu.Unlock()
	if readied {
		signal(q.wake)
	}
	if wait == nil {
		return nil
	}
	select {
	case err := <-wait:
		if err != nil {
			return err
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (q *Queue) usable() error {
	switch {
	case q.broken != nil:
		return q.broken
	case q.closed:
		return ErrClosed
	}
	return nil
}

// enqueueLocked applies the rules of Enqueue to one id and reports whether a job became
// ready to run.
func (q *Queue) enqueueLocked(id string, now time.Time) bool {
	e := q.entries[id]
	switch {
	case e == nil:
		q.seq++
		e = &entry{id: id, state: waiting, seq: q.seq, queued: now, ready: now}
		q.entries[id] = e
		heap.Push(&q.ready, e)
		q.save(e)
		return true
	case e.state == waiting:
		return false
	case e.state == running:
		if !e.again {
			// Nothing to store: on disk a running job is still waiting.
			e.again = true
			q.again++
		}
		return false
	case e.state == retrying:
		// Run now, as the job it already is: keep its failed attempts and its place.
		heap.Remove(&q.retry, e.idx)
		e.state, e.due, e.ready = waiting, time.Time{}, now
		heap.Push(&q.ready, e)
		q.save(e)
		return true
	default: // dead: a new notification is new work; its past failures stay in its history
		q.dead--
		q.seq++
		*e = entry{id: id, state: waiting, seq: q.seq, queued: now, ready: now, history: e.history}
		heap.Push(&q.ready, e)
		q.save(e)
		return true
	}
}

// save records e's state for the store, in the order of the changes.
func (q *Queue) save(e *entry) {
	if q.st != nil {
		q.st.put(e)
	}
}

func (q *Queue) forget(e *entry) {
	if q.st != nil {
		q.st.delete(e.id)
	}
}

// Receive hands out between 1 and n jobs that are ready to run, oldest first, blocking until
// there is one. It implements flow.Source.
func (q *Queue) Receive(ctx context.Context, n int) ([]flow.Message[Job], error) {
	if n < 1 {
		return nil, fmt.Errorf("jobs: Receive(%d)", n)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		q.mu.Lock()
		if err := q.usable(); err != nil {
			q.mu.Unlock()
			signal(q.wake) // so that every waiting Receive sees it
			return nil, err
		}
		now := time.Now()
		q.promoteLocked(now)
		if k := min(n, q.ready.Len()); k > 0 {
			msgs := make([]flow.Message[Job], k)
			for i := range msgs {
				e := heap.Pop(&q.ready).(*entry)
				e.state, e.started = running, now
				q.running++
				msgs[i] = flow.Message[Job]{Data: Job{ID: e.id, Attempt: e.attempts + 1}, Acker: q, Token: e}
			}
			more := q.ready.Len() > 0
			q.mu.Unlock()
			if more {
				signal(q.wake) // another Receive may be waiting
			}
			return msgs, nil
		}
		var due <-chan time.Time
		if q.retry.Len() > 0 {
			d := q.retry.items[0].due.Sub(now)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			due = timer.C
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-due:
		case <-q.closedc:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// promoteLocked makes the jobs whose retry is due ready. Nothing is stored: after a restart
// a retry whose time has passed is ready anyway.
func (q *Queue) promoteLocked(now time.Time) {
	for q.retry.Len() > 0 && !q.retry.items[0].due.After(now) {
		e := heap.Pop(&q.retry).(*entry)
		e.state, e.ready, e.due = waiting, e.due, time.Time{}
		heap.Push(&q.ready, e)
	}
}

// Acknowledge records the outcomes of jobs handed out by Receive. It does no I/O itself:
// changes go to the store's own loop. It implements flow.Acknowledger.
func (q *Queue) Acknowledge(results []flow.Result) {
	q.mu.Lock()
	readied := false
	now := time.Now()
	var outcomes []Outcome
	for _, r := range results {
		e, ok := r.Token.(*entry)
		if !ok || e.state != running || q.entries[e.id] != e {
			q.log.Error("jobs: outcome for a job that is not running", "token", r.Token)
			continue
		}
		var out *Outcome
		if q.cfg.OnOutcome != nil && r.Status != flow.Released {
			o := Outcome{ID: e.id, Attempt: e.attempts + 1, Ran: now.Sub(e.started)}
			if !e.ready.IsZero() { // unknown for a job restored from an older record
				o.Waited = e.started.Sub(e.ready)
			}
			outcomes = append(outcomes, o)
			out = &outcomes[len(outcomes)-1]
		}
		q.running--
		again := e.again
		if again {
			e.again = false
			q.again--
		}
		switch r.Status {
		case flow.Succeeded:
			q.done++
			if again {
				q.seq++
				e.state, e.attempts, e.seq, e.lastErr, e.history = waiting, 0, q.seq, "", nil
				e.queued, e.ready = now, now
				heap.Push(&q.ready, e)
				q.save(e)
				readied = true
				continue
			}
			delete(q.entries, e.id)
			q.forget(e)
		case flow.Released:
			// Not an attempt; and on disk it never stopped waiting.
			e.state = waiting
			heap.Push(&q.ready, e)
			readied = true
		default: // flow.Failed
			q.failed++
			e.attempts++
			e.lastErr = errText(r.Err)
			e.history = append(e.history, Attempt{Attempt: e.attempts, Started: e.started, Ended: now, Error: e.lastErr})
			if n := len(e.history); n > maxHistory {
				e.history = slices.Delete(e.history, 0, n-maxHistory)
			}
			if e.attempts >= q.cfg.MaxAttempts {
				e.state, e.diedAt = dead, now
				q.dead++
			} else {
				e.state, e.due = retrying, now.Add(q.cfg.Retry.Delay(e.attempts))
				heap.Push(&q.retry, e)
			}
			q.save(e)
			if again {
				// Posted during the run: as if posted now, after the failure.
				readied = q.enqueueLocked(e.id, now) || readied
			} else if e.state == retrying {
				signal(q.wake) // a waiting Receive must rearm its timer for this retry
			}
			if out != nil {
				out.Err = r.Err
				if out.Err == nil {
					out.Err = errors.New("failed")
				}
				switch e.state {
				case dead:
					out.Dead = true
				case retrying:
					out.RetryAt = e.due
				default: // posted again during the run: it runs again now
					out.RetryAt = now
				}
			}
		}
	}
	if q.st != nil {
		q.st.kick()
	}
	q.mu.Unlock()
	if readied {
		signal(q.wake)
	}
	for _, o := range outcomes {
		q.cfg.OnOutcome(o)
	}
}

func errText(err error) string {
	if err == nil {
		return "failed"
	}
	s := err.Error()
	if len(s) > maxErrLen {
		s = s[:maxErrLen]
	}
	return s
}

// Counts returns the numbers of jobs in each state.
func (q *Queue) Counts() Counts {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.countsLocked()
}

func (q *Queue) countsLocked() Counts {
	return Counts{
		Queued:  q.ready.Len() + q.retry.Len() + q.again,
		Running: q.running,
		Done:    q.done,
		Failed:  q.failed,
		Dead:    q.dead,
	}
}

// Dead lists the dead jobs, oldest death first.
func (q *Queue) Dead() []DeadJob {
	q.mu.Lock()
	var out []DeadJob
	for _, e := range q.entries {
		if e.state == dead {
			out = append(out, DeadJob{ID: e.id, Attempts: e.attempts, LastErr: e.lastErr, DiedAt: e.diedAt})
		}
	}
	q.mu.Unlock()
	slices.SortFunc(out, func(a, b DeadJob) int {
		return cmp.Or(a.DiedAt.Compare(b.DiedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Requeue puts dead jobs back in the queue with no failed attempts, and returns how many it
// put back. With no ids it puts back every dead job; ids that are not dead are skipped. A
// durable queue returns once the change is on disk.
func (q *Queue) Requeue(ctx context.Context, ids ...string) (int, error) {
	q.mu.Lock()
	if err := q.usable(); err != nil {
		q.mu.Unlock()
		return 0, err
	}
	var list []*entry
	if len(ids) == 0 {
		for _, e := range q.entries {
			if e.state == dead {
				list = append(list, e)
			}
		}
		slices.SortFunc(list, func(a, b *entry) int {
			return cmp.Or(a.diedAt.Compare(b.diedAt), cmp.Compare(a.id, b.id))
		})
	} else {
		for _, id := range ids {
			if e := q.entries[id]; e != nil && e.state == dead {
				list = append(list, e)
			}
		}
	}
	for _, e := range list {
		q.enqueueLocked(e.id, time.Now())
	}
	return len(list), q.commit(ctx, len(list) > 0)
}

// List returns the jobs in state st, or all jobs when st is "": queued jobs in the order
// they will run, then running jobs by start, jobs waiting for a retry by due time and dead
// jobs by time of death. History is left out; [Queue.Info] has it.
func (q *Queue) List(st State) []Info {
	q.mu.Lock()
	var out []Info
	for _, e := range q.entries {
		if st == "" || e.publicState() == st {
			out = append(out, e.info(false))
		}
	}
	seqs := make(map[string]uint64, len(out))
	for _, in := range out {
		seqs[in.ID] = q.entries[in.ID].seq
	}
	q.mu.Unlock()
	rank := map[State]int{StateQueued: 0, StateRunning: 1, StateRetrying: 2, StateDead: 3}
	slices.SortFunc(out, func(a, b Info) int {
		if c := cmp.Compare(rank[a.State], rank[b.State]); c != 0 {
			return c
		}
		switch a.State {
		case StateRunning:
			return cmp.Or(a.Started.Compare(b.Started), cmp.Compare(a.ID, b.ID))
		case StateRetrying:
			return cmp.Or(a.RetryAt.Compare(b.RetryAt), cmp.Compare(seqs[a.ID], seqs[b.ID]))
		case StateDead:
			return cmp.Or(a.DiedAt.Compare(b.DiedAt), cmp.Compare(a.ID, b.ID))
		}
		return cmp.Compare(seqs[a.ID], seqs[b.ID])
	})
	return out
}

// Info returns what the queue knows of the job id, with the history of its failed runs, or
// ErrNotFound.
func (q *Queue) Info(id string) (Info, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.entries[id]
	if e == nil {
		return Info{}, ErrNotFound
	}
	return e.info(true), nil
}

func (e *entry) publicState() State {
	switch e.state {
	case running:
		return StateRunning
	case retrying:
		return StateRetrying
	case dead:
		return StateDead
	}
	return StateQueued
}

func (e *entry) info(history bool) Info {
	in := Info{ID: e.id, State: e.publicState(), Attempts: e.attempts, LastError: e.lastErr,
		Queued: e.queued, Ready: e.ready, Again: e.again}
	switch e.state {
	case running:
		in.Started = e.started
	case retrying:
		in.RetryAt = e.due
	case dead:
		in.DiedAt = e.diedAt
	}
	if history {
		in.History = slices.Clone(e.history)
	}
	return in
}

// RunNow makes the job id run as soon as a worker is free: a job waiting for a retry runs
// now with its failed attempts counted, a dead job is put back with none (as [Queue.Requeue]
// does), a queued or running job is left as it is. It returns the job's state afterwards,
// or ErrNotFound. A durable queue returns once the change is on disk.
func (q *Queue) RunNow(ctx context.Context, id string) (State, error) {
	q.mu.Lock()
	if err := q.usable(); err != nil {
		q.mu.Unlock()
		return "", err
	}
	e := q.entries[id]
	if e == nil {
		q.mu.Unlock()
		return "", ErrNotFound
	}
	readied := false
	if e.state == retrying || e.state == dead {
		readied = q.enqueueLocked(id, time.Now())
	}
	st := e.publicState()
	return st, q.commit(ctx, readied)
}

// Delete forgets the job id, whatever it waits for: it will not run unless posted again.
// A running job cannot be deleted (ErrRunning); an unknown id is ErrNotFound. A durable
// queue returns once the change is on disk.
func (q *Queue) Delete(ctx context.Context, id string) error {
	q.mu.Lock()
	if err := q.usable(); err != nil {
		q.mu.Unlock()
		return err
	}
	e := q.entries[id]
	switch {
	case e == nil:
		q.mu.Unlock()
		return ErrNotFound
	case e.state == running:
		q.mu.Unlock()
		return ErrRunning
	case e.state == waiting:
		heap.Remove(&q.ready, e.idx)
	case e.state == retrying:
		heap.Remove(&q.retry, e.idx)
	case e.state == dead:
		q.dead--
	}
	delete(q.entries, id)
	q.forget(e)
	return q.commit(ctx, false)
}

// entryHeap is a container/heap of entries in the order of less: ready jobs by their place
// in the queue, jobs waiting for a retry by due time. An entry is in one heap at a time and
// knows its index there.
type entryHeap struct {
	less  func(a, b *entry) bool
	items []*entry
}

func byPlace(a, b *entry) bool { return a.seq < b.seq }

func byDue(a, b *entry) bool {
	return a.due.Before(b.due) || a.due.Equal(b.due) && a.seq < b.seq
}

func (h *entryHeap) Len() int           { return len(h.items) }
func (h *entryHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *entryHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].idx, h.items[j].idx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.idx = len(h.items)
	h.items = append(h.items, e)
}
func (h *entryHeap) Pop() any {
	old := h.items
	e := old[len(old)-1]
	old[len(old)-1] = nil
	h.items = old[:len(old)-1]
	return e
}
