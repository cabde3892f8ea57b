package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/jobs"
	"github.com/palleto/palleto/metrics"
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
}

// pool is one run of Serve: the server, the workers and the source of their jobs.
type pool struct {
	cfg ServeConfig
	log *slog.Logger
	src jobSource
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
	wh, err := webhook.New(webhook.Config{Secret: []byte(cfg.WebhookSecret), Enqueue: p.src.enqueue, Logger: log})
	if err != nil {
		return &ConfigError{"webhook-secret", err.Error()}
	}

	// The topology: the jobs flow from their source to the workers, one job at a time each.
	pl := flow.New(flow.Config{GracePeriod: grace, Observer: flow.Observers(flow.LogObserver(log), obs)})
	jobs := flow.From(pl, p.src.name, p.src.jobs, flow.SourceOptions{})
	flow.Sink(jobs, "workers", p.run, flow.Options{Concurrency: cfg.Workers, MaxDemand: 1})

	var stopping atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/webhook", wh)
	mux.HandleFunc("GET /jobs", p.serveCounts)
	mux.Handle("GET /metrics", metrics.Handler(cfg.Metrics, log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	ran := make(chan error, 1)
	go func() { ran <- pl.Run(runCtx) }()
	srv := startHTTP(ln, mux, log)
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
	stopping.Store(true)
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

// serveCounts answers GET /jobs with the job counts.
func (p *pool) serveCounts(w http.ResponseWriter, r *http.Request) {
	c, err := p.src.counts(r.Context())
	if err != nil {
		p.log.Warn("counting jobs", "err", err)
		http.Error(w, "cannot count jobs now", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(c)
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
	return err
}
