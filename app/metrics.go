package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/jobs"
	"github.com/palleto/palleto/metrics"
	"github.com/palleto/palleto/sqs"
)

// registerRunMetrics registers the metrics of a run with reg and returns the observer that
// feeds the stage metrics.
func registerRunMetrics(reg *prometheus.Registry, src *sqs.Source) (flow.Observer, error) {
	obs, err := metrics.NewObserver(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := reg.Register(metrics.NewSQSCollector(src)); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return obs, nil
}

// countTimeout bounds the job counts read for a scrape: with SQS they are a request.
const countTimeout = 10 * time.Second

// registerPoolMetrics registers the stage metrics and the job counts of a pool with reg, and
// returns the observer that feeds the stage metrics.
func registerPoolMetrics(ctx context.Context, reg *prometheus.Registry, counts func(context.Context) (jobs.Counts, error)) (flow.Observer, error) {
	obs, err := metrics.NewObserver(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// Scrapes go on while the pool shuts down, as GET /jobs does.
	base := context.WithoutCancel(ctx)
	collector := metrics.NewJobsCollector(func() (jobs.Counts, error) {
		ctx, cancel := context.WithTimeout(base, countTimeout)
		defer cancel()
		return counts(ctx)
	})
	if err := reg.Register(collector); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return obs, nil
}

// serveMetrics serves GET /metrics and GET /healthz on ln until stop is called; stop returns
// once the server and its connections are closed. A nil ln serves nothing.
func serveMetrics(ln net.Listener, reg *prometheus.Registry, log *slog.Logger) (stop func()) {
	if ln == nil {
		return func() {}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg, log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	srv := startHTTP(ln, mux, log)
	log.Info("serving metrics", "url", "http://"+srv.Addr()+"/metrics")
	return func() {
		if err := srv.Stop(); err != nil {
			log.Warn("the metrics server stopped", "err", err)
		}
	}
}
