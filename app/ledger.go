package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/object"
	"github.com/palleto/palleto/output"
	"github.com/palleto/palleto/sqs"
)

// messageSource is what the ledger needs of the SQS source: its messages, their outcomes, and
// which deliveries are the last that the queue's redrive policy allows (see sqs.Source).
type messageSource interface {
	flow.Source[sqs.Message]
	flow.Acknowledger
	LastDelivery(receiveCount int) bool
}

// A ledger stands between the SQS source and the pipeline. It sees every message's outcome
// on its way back to the source: a failure that is the environment's pauses intake at the
// gate, where Receive waits, and the message does not pay for it. It is handed on as a
// release; or, on the last delivery that the queue's redrive policy allows (a release would
// have SQS move it to the dead-letter queue at its next receive), kept: held by the source,
// whose heartbeat keeps it hidden, and handed out again once intake resumes. It keeps, when
// asked to (a drain run, whose size the queue bounds), the last outcome of each distinct
// message for the summary and the exit status.
type ledger struct {
	src  messageSource
	gate *gate
	keep bool // remember outcomes by message id
	// outcome, when set, is told of every delivery's outcome, outside the lock: failures
	// are logged there once, and the admin listener's records kept.
	outcome func(m *ticket, r flow.Result)

	mu     sync.Mutex
	last   map[string]outcome
	parked []flow.Message[sqs.Message] // received while intake was paused, or kept (see ledger)
	// calls are the source's Receive calls in progress. Acknowledge cancels them when it keeps
	// a message: their callers then hand it out once intake resumes, instead of waiting for
	// the source to bring something (it may have nothing more).
	calls map[*receiveCall]struct{}
}

type receiveCall struct{ cancel context.CancelFunc }

// An outcome is how a message's last delivery in this run ended.
type outcome struct {
	kind   string // outcomeSucceeded, …
	reason string // for a failure: what went wrong, in a few words
}

// Outcome kinds, as the summary prints them.
const (
	outcomeSucceeded    = "succeeded"
	outcomeFailed       = "failed"
	outcomeDeadLettered = "dead-lettered"
	outcomeReleased     = "released"
	outcomeInFlight     = "in flight" // handed out, no outcome yet
)

// ticket is the token the pipeline carries for a message in place of the source's own.
type ticket struct {
	msg       flow.Message[sqs.Message] // as the source handed it to the ledger
	handedOut time.Time                 // when the ledger handed it to the pipeline
}

func newLedger(src messageSource, g *gate, keep bool) *ledger {
	l := &ledger{src: src, gate: g, keep: keep, calls: map[*receiveCall]struct{}{}}
	if keep {
		l.last = map[string]outcome{}
	}
	return l
}

// Receive receives from the source and makes the ledger the acknowledger of what it hands out.
// While intake is paused it waits at the gate, and the gate has paused the source: no receive
// is made (each counts towards the queue's maxReceiveCount). Receives already waiting in the
// source when the pause began are let finish (cancelling them would leave what SQS took for
// them hidden until the visibility timeout); what they bring is parked here, kept invisible by
// the source's heartbeat, and handed out first once intake resumes, as are the messages that
// Acknowledge keeps. Cancelling a call to the source's Receive (as Acknowledge does) ends
// only the wait: the source's receives in flight go on, and what they bring waits there.
func (l *ledger) Receive(ctx context.Context, n int) ([]flow.Message[sqs.Message], error) {
	for {
		if err := l.gate.wait(ctx); err != nil {
			return nil, err
		}
		l.mu.Lock()
		if len(l.parked) > 0 {
			k := min(n, len(l.parked))
			msgs := slices.Clone(l.parked[:k])
			l.parked = slices.Delete(l.parked, 0, k)
			l.mu.Unlock()
			return l.own(msgs), nil
		}
		callCtx, cancel := context.WithCancel(ctx)
		call := &receiveCall{cancel: cancel}
		l.calls[call] = struct{}{}
		l.mu.Unlock()
		msgs, err := l.src.Receive(callCtx, n)
		l.mu.Lock()
		delete(l.calls, call)
		l.mu.Unlock()
		cancel()
		if len(msgs) == 0 && errors.Is(err, context.Canceled) && ctx.Err() == nil {
			continue // Acknowledge kept a message: see calls
		}
		if len(msgs) > 0 && l.gate.paused() {
			l.mu.Lock()
			l.parked = append(l.parked, msgs...)
			l.mu.Unlock()
			if err != nil {
				return nil, err
			}
			continue
		}
		return l.own(msgs), err
	}
}

// own makes the ledger the acknowledger of msgs. A ledger that keeps outcomes notes each
// message the first time it is handed out, so that the distinct messages can be counted while
// they are worked on.
func (l *ledger) own(msgs []flow.Message[sqs.Message]) []flow.Message[sqs.Message] {
	now := time.Now()
	for i := range msgs {
		msgs[i].Token = &ticket{msg: msgs[i], handedOut: now}
		msgs[i].Acker = l
	}
	if l.keep && len(msgs) > 0 {
		l.mu.Lock()
		for _, m := range msgs {
			if _, ok := l.last[m.Data.ID]; !ok {
				l.last[m.Data.ID] = outcome{kind: outcomeInFlight}
			}
		}
		l.mu.Unlock()
	}
	return msgs
}

// messages returns the number of distinct messages handed out so far; ok is false when the
// ledger keeps none (a run that is not a drain: its messages are not remembered).
func (l *ledger) messages() (n int64, ok bool) {
	if !l.keep {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.last)), true
}

// Acknowledge records the outcomes and hands them on to the source with its own tokens.
func (l *ledger) Acknowledge(results []flow.Result) {
	fwd := make([]flow.Result, 0, len(results))
	if l.outcome != nil {
		for _, r := range results {
			var env *envFault
			var over *overtime
			if t, ok := r.Token.(*ticket); ok && !(r.Status == flow.Failed && (errors.As(r.Err, &env) || errors.As(r.Err, &over))) {
				l.outcome(t, r) // a fault of the environment is logged once, by the gate; overtime below
			}
		}
	}
	l.mu.Lock()
	for _, r := range results {
		t, ok := r.Token.(*ticket)
		if !ok {
			continue
		}
		var over *overtime
		switch {
		case r.Status == flow.Succeeded:
			l.gate.succeeded()
		case r.Status == flow.Failed && errors.As(r.Err, &over):
			// Work that outlived --max-work-time: the message goes back at once, not as a
			// failure, and not silently once the heartbeat gives up.
			l.gate.log.Warn("work on a message outlived --max-work-time: cancelled, message released",
				"message_id", over.messageID, "bucket", over.bucket, "key", over.key, "limit", over.limit)
			r.Status, r.Err = flow.Released, nil
		case r.Status == flow.Failed && l.gate.report(r.Err):
			if l.src.LastDelivery(t.msg.Data.ReceiveCount) {
				l.parked = append(l.parked, t.msg) // kept: see ledger
				for c := range l.calls {
					c.cancel()
				}
				if l.keep {
					l.last[t.msg.Data.ID] = outcome{kind: outcomeInFlight}
				}
				continue
			}
			r.Status, r.Err = flow.Released, nil
		}
		if l.keep {
			l.last[t.msg.Data.ID] = outcomeOf(r)
		}
		r.Token = t.msg.Token
		fwd = append(fwd, r)
	}
	l.mu.Unlock()
	l.src.Acknowledge(fwd)
}

func outcomeOf(r flow.Result) outcome {
	switch r.Status {
	case flow.Succeeded:
		return outcome{kind: outcomeSucceeded}
	case flow.Released:
		return outcome{kind: outcomeReleased}
	}
	if errors.Is(r.Err, sqs.ErrPermanent) {
		return outcome{kind: outcomeDeadLettered, reason: reasonOf(r.Err)}
	}
	return outcome{kind: outcomeFailed, reason: reasonOf(r.Err)}
}

// reasonOf names what went wrong with a message in a few words, for the summary.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrBadMessage):
		return "not an S3 notification"
	case errors.Is(err, object.ErrNotFound):
		return "object not found"
	case errors.Is(err, object.ErrCorrupt):
		return "corrupt content"
	case errors.Is(err, object.ErrChanged):
		return "object changed while read"
	case errors.Is(err, output.ErrCollision):
		return "result path taken by another key"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	return "other error"
}

// Tally is the count of distinct messages by how their last delivery in a run ended.
type Tally struct {
	Succeeded int64
	// Released counts messages put back unfinished (at shutdown, or while intake was paused
	// by a fault of the environment) and not taken again in the run.
	Released int64
	// Failures counts the others by outcome ("failed", "dead-lettered") and reason.
	Failures []FailureCount
}

// A FailureCount is the number of distinct messages that ended one way for one reason.
type FailureCount struct {
	Outcome string // "failed" or "dead-lettered"
	Reason  string // "object not found", "corrupt content", …
	N       int64
}

// Failed is the number of messages whose last outcome was a failure or the dead-letter queue.
func (t Tally) Failed() int64 {
	var n int64
	for _, f := range t.Failures {
		n += f.N
	}
	return n
}

// Total is the number of distinct messages counted.
func (t Tally) Total() int64 { return t.Succeeded + t.Released + t.Failed() }

// failures says how the messages that did not succeed ended, by reason: "3 failed (2 object
// not found, 1 corrupt content), 1 dead-lettered (1 not an S3 notification)".
func (t Tally) failures() string {
	var parts []string
	for i := 0; i < len(t.Failures); {
		j, n := i, int64(0)
		var reasons []string
		for ; j < len(t.Failures) && t.Failures[j].Outcome == t.Failures[i].Outcome; j++ {
			n += t.Failures[j].N
			reasons = append(reasons, fmt.Sprintf("%d %s", t.Failures[j].N, t.Failures[j].Reason))
		}
		parts = append(parts, fmt.Sprintf("%d %s (%s)", n, t.Failures[i].Outcome, strings.Join(reasons, ", ")))
		i = j
	}
	return strings.Join(parts, ", ")
}

// tally counts the distinct messages by their last outcome; zero when the ledger keeps none.
func (l *ledger) tally() Tally {
	var t Tally
	if !l.keep {
		return t
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fails := map[outcome]int64{}
	for _, o := range l.last {
		switch o.kind {
		case outcomeSucceeded:
			t.Succeeded++
		case outcomeReleased, outcomeInFlight: // in flight: none is left once the pipeline has ended
			t.Released++
		default:
			fails[o]++
		}
	}
	for o, n := range fails {
		t.Failures = append(t.Failures, FailureCount{Outcome: o.kind, Reason: o.reason, N: n})
	}
	slices.SortFunc(t.Failures, func(a, b FailureCount) int {
		if c := strings.Compare(a.Outcome, b.Outcome); c != 0 {
			return -c // "failed" before "dead-lettered"
		}
		if a.N != b.N {
			return int(b.N - a.N)
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	return t
}
