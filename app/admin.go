package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/admin"
	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/sqs"
)

// listenAdmin opens the admin listener's address, given with the flag named flag, refusing
// one that is not loopback when no token is set. An empty address opens nothing.
func listenAdmin(flag, addr, token string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	if err := admin.CheckAddr(addr, token); err != nil {
		return nil, &ConfigError{flag, err.Error()}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ConfigError{flag, err.Error()}
	}
	return ln, nil
}

// startAdmin serves the admin handler for cfg on ln, and samples its sources, until stop is
// called. A nil ln serves nothing.
func startAdmin(ln net.Listener, cfg admin.Config, ready func(string), log *slog.Logger) (stop func()) {
	if ln == nil {
		return func() {}
	}
	cfg.Logger = log
	h := admin.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		h.Run(ctx)
	}()
	srv := startHTTP(ln, h, log)
	url := "http://" + srv.Addr() + "/"
	switch {
	case cfg.Token == "":
		log.Info("admin listener: dashboard, API and metrics (loopback only, no token)", "url", url)
	case admin.Loopback(srv.Addr()):
		log.Info("admin listener: dashboard, API and metrics; every request needs the token", "url", url)
	default:
		log.Warn("admin listener on an address other than loopback: every request needs the token; put TLS in front of it", "url", url)
	}
	if ready != nil {
		ready(srv.Addr())
	}
	return func() {
		cancel()
		<-sampled
		if err := srv.Stop(); err != nil {
			log.Warn("the admin listener stopped", "err", err)
		}
	}
}

// depth is a queue's approximate counts as the dashboard shows them.
func depth(ctx context.Context, client *awssqs.Client, url string) (admin.Depth, error) {
	c, err := sqs.QueueCounts(ctx, client, url)
	return admin.Depth{Visible: c.Visible, InFlight: c.InFlight, Delayed: c.Delayed}, err
}

// adminQueue is an SQS source and its queues as the dashboard shows them.
type adminQueue struct {
	src    *sqs.Source
	client *awssqs.Client
	url    string
	dlq    func() string // its dead-letter queue; "" for none
}

func (a *adminQueue) QueueStats() admin.QueueStats {
	st := a.src.Stats()
	r := st.Requests
	return admin.QueueStats{
		URL: a.url, Received: st.Received, Deleted: st.Deleted, Failed: st.Failed, Released: st.Released,
		DeadLettered: st.DeadLettered, Extended: st.Extended,
		Receives: r.ReceiveMessage, EmptyReceives: st.EmptyReceives,
		Requests:      r.ReceiveMessage + r.DeleteMessageBatch + r.ChangeMessageVisibilityBatch + r.SendMessage + r.GetQueueAttributes,
		RequestErrors: r.Failed,
		InFlight:      st.InFlight, Held: st.Held, Demand: st.Demand,
	}
}

func (a *adminQueue) QueueDepth(ctx context.Context) (admin.QueueDepth, error) {
	d, err := depth(ctx, a.client, a.url)
	if err != nil {
		return admin.QueueDepth{}, err
	}
	dlq := a.dlq()
	out := admin.QueueDepth{Queue: d, DLQURL: dlq}
	if dlq != "" {
		if dd, err := depth(ctx, a.client, dlq); err == nil {
			out.DLQ = &dd
		}
	}
	return out, nil
}

// messageFailure describes the failure of an SQS message of a run: the stage and the object
// where it failed, when the error says.
func messageFailure(m *ticket, err error) admin.Failure {
	f := admin.Failure{MessageID: m.msg.Data.ID, Attempt: m.msg.Data.ReceiveCount, Error: errString(err)}
	var oe *ObjectError
	switch {
	case errors.As(err, &oe):
		f.Stage, f.Object = oe.Stage, "s3://"+oe.Bucket+"/"+oe.Key
	case errors.Is(err, ErrBadMessage):
		f.Stage = "parse"
	}
	return f
}

// retryNext says what happens to an SQS message that failed on its receiveCount-th
// receive: the dead-letter queue at once for a permanent failure when dlqURL is set;
// otherwise it comes back after the retry policy's backoff, until the queue's redrive policy
// rp moves it, on the receive after its MaxReceiveCount-th. A nil rp is a policy that could
// not be read at start-up.
func retryNext(receiveCount int, err error, retry *backoff.Policy, dlqURL string, rp *sqs.Redrive) string {
	if errors.Is(err, sqs.ErrPermanent) && dlqURL != "" {
		return "moved to the dead-letter queue"
	}
	receiveCount = max(receiveCount, 1)
	if rp != nil && rp.MaxReceiveCount > 0 && receiveCount == rp.MaxReceiveCount {
		return fmt.Sprintf("dead-lettered by the queue's redrive policy (receive %d of %d)", receiveCount, rp.MaxReceiveCount)
	}
	when := "retried at once"
	if step := retry.Step(receiveCount); step > 0 { // the delay before jitter takes a part off
		when = "retried within " + step.Round(time.Millisecond).String()
	}
	switch {
	case rp != nil && rp.MaxReceiveCount > 0 && receiveCount > rp.MaxReceiveCount:
		// Delivered more often than the policy read at start-up allows: it has changed, and the
		// source lets every failure wait its delay (see sqs.Source).
		return when + ", the queue's redrive policy has changed since start-up"
	case rp == nil:
		return when + ", unless the queue's redrive policy moves it"
	case rp.MaxReceiveCount == 0:
		return when + ", no dead-letter queue"
	}
	return fmt.Sprintf("%s (receive %d of %d, then dead-lettered)", when, receiveCount, rp.MaxReceiveCount)
}

// redrivePolicy reads the queue's redrive policy at start-up; nil, with a warning, when it
// cannot be read.
func redrivePolicy(ctx context.Context, src *sqs.Source, log *slog.Logger) *sqs.Redrive {
	rp, err := src.RedrivePolicy(ctx)
	if err != nil {
		log.Warn("cannot read the queue's redrive policy: its dead-letter queue is neither shown nor counted, and failures do not say when they will be dead-lettered", "err", err)
		return nil
	}
	return &rp
}

// redriveLookup is redrivePolicy run in the background, so that a run's first receive does
// not wait for it: only what a failure's next step is and which dead-letter queue the
// dashboard shows need it, and the policy can take a request of its own (GetQueueUrl).
type redriveLookup struct {
	done chan struct{}
	rp   *sqs.Redrive
}

// lookUpRedrive starts the lookup; the caller waits for it (policy) before it returns.
func lookUpRedrive(ctx context.Context, src *sqs.Source, log *slog.Logger) *redriveLookup {
	l := &redriveLookup{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.rp = redrivePolicy(ctx, src, log)
	}()
	return l
}

// policy waits for the lookup and returns what redrivePolicy did.
func (l *redriveLookup) policy() *sqs.Redrive {
	<-l.done
	return l.rp
}

// dlq waits for the lookup and returns the dead-letter queue's URL, "" for none.
func (l *redriveLookup) dlq() string {
	if rp := l.policy(); rp != nil {
		return rp.DeadLetterQueueURL
	}
	return ""
}

// logFailure logs a failure, once, with its attempt and what happens next.
func logFailure(log *slog.Logger, f admin.Failure) {
	attrs := make([]any, 0, 14)
	if f.MessageID != "" {
		attrs = append(attrs, "message_id", f.MessageID)
	}
	if f.Object != "" {
		attrs = append(attrs, "object", f.Object)
	}
	if f.JobID != "" {
		attrs = append(attrs, "job", f.JobID)
	}
	if f.Stage != "" {
		attrs = append(attrs, "stage", f.Stage)
	}
	attrs = append(attrs, "attempt", f.Attempt, "next", f.Next, "err", f.Error)
	what := "message failed"
	if f.JobID != "" {
		what = "job failed"
	}
	log.Warn(what, attrs...)
}

// quietFailures passes every event but failures to obs: failures are logged once, with
// their message or job, where their outcome is known.
func quietFailures(obs flow.Observer) flow.Observer {
	return flow.ObserverFunc(func(e flow.Event) {
		if e.Kind != flow.EventFailed {
			obs.Observe(e)
		}
	})
}

// health is what /healthz and /readyz of the admin listener say: unhealthy once the program
// stops, ready once it has started.
type health struct {
	started, stopping atomic.Bool
}

func (h *health) healthy() (bool, string) {
	if h.stopping.Load() {
		return false, "shutting down"
	}
	return true, ""
}

func (h *health) ready() (bool, string) {
	switch {
	case h.stopping.Load():
		return false, "shutting down"
	case !h.started.Load():
		return false, "starting"
	}
	return true, ""
}
