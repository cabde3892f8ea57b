package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/palleto/palleto/admin"
	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/jobs"
	"github.com/palleto/palleto/metrics"
	"github.com/palleto/palleto/sqs"
	"github.com/palleto/palleto/webhook"
)

// A jobSource is where the pool's jobs come from and where the webhook puts new ones: the
// embedded queue, or an SQS queue whose messages are adapted to jobs. The pool's topology is
// the same for both.
type jobSource struct {
	name    string                // the source stage's name: "queue" or "sqs"
	desc    string                // for the log: the data directory, "memory" or the queue URL
	jobs    flow.Source[jobs.Job] // the jobs to run; their outcomes go back to it
	enqueue func(ctx context.Context, ids []string) error
	counts  func(ctx context.Context) (jobs.Counts, error)
	manage  admin.Jobs        // the embedded queue, managed from the admin listener; nil for SQS
	queue   admin.QueueSource // the SQS queue, for the dashboard; nil for the embedded queue
	// unlisted says why the jobs are counted but not listed (SQS); "" for the embedded queue.
	unlisted string
}

// pool is one run of Serve: the server, the workers and the source of their jobs.
type pool struct {
	cfg      ServeConfig
	log      *slog.Logger
	src      jobSource
	failures *admin.Failures
	jm       *metrics.Jobs
	adminLn  net.Listener // nil: no admin listener
}

// newPool makes the parts of a pool that its source reports to.
func newPool(cfg ServeConfig, adminLn net.Listener) (*pool, error) {
	jm, err := metrics.NewJobs(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &pool{cfg: cfg, log: cfg.Logger, failures: admin.NewFailures(0), jm: jm, adminLn: adminLn}, nil
}

// jobOutcome records the end of a run of the embedded queue: its times, and a failure with
// what the queue does next.
func (p *pool) jobOutcome(o jobs.Outcome) {
	p.jm.Waited(o.Waited)
	p.jm.Ran(o.Ran)
	if o.Err == nil {
		return
	}
	next := "runs again now (posted during the run)"
	switch {
	case o.Dead:
		next = fmt.Sprintf("dead after %d failed runs: run it again from the dashboard or with palleto jobs requeue", o.Attempt)
	case time.Until(o.RetryAt) > 0:
		next = fmt.Sprintf("retry at %s (in %v)", o.RetryAt.Format(time.TimeOnly), time.Until(o.RetryAt).Round(100*time.Millisecond))
	}
	p.failed(admin.Failure{JobID: o.ID, Stage: "workers", Attempt: o.Attempt, Error: o.Err.Error(), Next: next})
}

// sqsOutcome records the end of a run of a job from SQS, whose queue has the redrive policy
// rp (nil: unknown).
func (p *pool) sqsOutcome(rp *sqs.Redrive) func(*ticket, flow.Result) {
	return func(m *ticket, r flow.Result) {
		if r.Status == flow.Released {
			return
		}
		if m.msg.Data.ReceiveCount == 1 && !m.msg.Data.SentAt.IsZero() {
			p.jm.Waited(m.handedOut.Sub(m.msg.Data.SentAt)) // a retry's wait is SQS's to know
		}
		p.jm.Ran(time.Since(m.handedOut))
		if r.Status != flow.Failed {
			return
		}
		p.failed(admin.Failure{JobID: m.msg.Data.Body, MessageID: m.msg.Data.ID, Stage: "workers", Attempt: m.msg.Data.ReceiveCount, Error: errString(r.Err),
			Next: retryNext(m.msg.Data.ReceiveCount, r.Err, backoff.Default(), "", rp)})
	}
}

func (p *pool) failed(f admin.Failure) {
	p.failures.Add(f)
	logFailure(p.log, f)
}

func errString(err error) string {
	if err == nil {
		return "failed"
	}
	return err.Error()
}

// serve runs the HTTP server on ln and the pipeline, until ctx is cancelled or either fails,
// and shuts both down in order.
func (p *pool) serve(ctx context.Context, ln net.Listener) error {
	cfg, log := p.cfg, p.log
	grace := cfg.ShutdownTimeout
	obs, err := registerPoolMetrics(ctx, cfg.Metrics, p.src.counts)
	if err != nil {
		return err
	}
	wh, err := webhook.New(webhook.Config{Secret: []byte(cfg.WebhookSecret), Enqueue: p.src.enqueue, Logger: log, OnCall: p.jm.WebhookCall})
	if err != nil {
		return &ConfigError{"webhook-secret", err.Error()}
	}

	// The topology: the jobs flow from their source to the workers, one job at a time each.
	stages := admin.NewStages(nil)
	pl := flow.New(flow.Config{GracePeriod: grace, Observer: flow.Observers(quietFailures(flow.LogObserver(log)), obs, stages)})
	jobs := flow.From(pl, p.src.name, p.src.jobs, flow.SourceOptions{})
	flow.Sink(jobs, "workers", p.run, flow.Options{Concurrency: cfg.Workers, MaxDemand: 1})
	stages.SetTopology(pl.Topology())

	// The webhook listener is the one the internet reaches: the webhook and a health check,
	// nothing else. The rest is on the admin listener.
	var h health
	mux := http.NewServeMux()
	mux.Handle("/webhook", wh)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if ok, why := h.healthy(); !ok {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	ac := admin.Config{Mode: admin.ModeServe, Title: p.src.desc, Token: cfg.AdminToken, Stages: stages,
		Failures: p.failures, Counts: p.src.counts, Health: h.healthy, Ready: h.ready,
		Metrics: metrics.Handler(cfg.Metrics, log)}
	if p.src.manage != nil {
		ac.Jobs = p.src.manage
	}
	if p.src.queue != nil {
		ac.Queue = p.src.queue
	}
	ac.Unlisted = p.src.unlisted
	stopAdmin := startAdmin(p.adminLn, ac, cfg.AdminReady, log)
	defer stopAdmin()

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	ran := make(chan error, 1)
	go func() { ran <- pl.Run(runCtx) }()
	srv := startHTTP(ln, mux, log)
	h.started.Store(true)
	log.Info("serving", "addr", srv.Addr(), "workers", cfg.Workers, "queue", p.src.desc)
	if cfg.Ready != nil {
		cfg.Ready(srv.Addr())
	}

	var runErr error
	runDone := false
	select {
	case <-ctx.Done():
	case runErr = <-ran:
		runDone = true
		log.Error("the worker pool stopped", "err", runErr)
	case <-srv.Done():
		log.Error("the HTTP server stopped", "err", srv.Stop())
	}
	// New webhook calls get 503 from now on, so that Dropbox keeps them for later; the
	// counts and the health check stay up until the jobs are over.
	wh.Stop()
	h.stopping.Store(true)
	if ctx.Err() != nil {
		log.Info("shutting down: webhook closed, waiting for running jobs", "timeout", grace)
	}
	stopRun()
	if !runDone {
		runErr = <-ran
	}
	srvErr := srv.Stop()
	counting, cancel := context.WithTimeout(context.WithoutCancel(ctx), countTimeout)
	defer cancel()
	if c, err := p.src.counts(counting); err == nil {
		log.Info("stopped", "queued", c.Queued, "done", c.Done, "failed", c.Failed, "dead", c.Dead)
	}
	return errors.Join(runErr, srvErr)
}

// run runs one job: with Handler, or as a process.
func (p *pool) run(ctx context.Context, job jobs.Job) error {
	log := p.log.With("job", job.ID, "attempt", job.Attempt)
	log.Info("job started")
	began := time.Now()
	var err error
	if p.cfg.Handler != nil {
		err = p.cfg.Handler(ctx, job)
	} else {
		err = runProcess(ctx, p.cfg.Exec, job.ID, p.cfg.KillDelay, log)
	}
	took := time.Since(began).Round(time.Millisecond)
	switch {
	case err == nil:
		log.Info("job done", "took", took)
	case ctx.Err() != nil:
		log.Warn("job stopped by the shutdown; it stays queued", "took", took)
		return ctx.Err()
	default:
		// Logged at warn by the queue, with what happens next.
		log.Debug("job failed", "took", took, "err", err)
	}
	return err // a failure is logged once with what happens next, when the queue has it
}
