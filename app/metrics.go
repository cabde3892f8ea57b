package app

import (
	"context"
	"fmt"
	"io"
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
func registerRunMetrics(reg *prometheus.Registry, src *sqs.Source, g *gate) (flow.Observer, error) {
	obs, err := metrics.NewObserver(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	pauses := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "palleto_intake_pauses_total",
		Help: "Times intake paused because of a fault of the environment (results or spool not writable, credentials, S3 failing).",
	}, func() float64 { n, _ := g.Pauses(); return float64(n) })
	paused := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "palleto_intake_paused",
		Help: "1 while intake is paused by a fault of the environment, 0 otherwise.",
	}, func() float64 {
		if _, p := g.Pauses(); p {
			return 1
		}
		return 0
	})
	for _, c := range []prometheus.Collector{metrics.NewSQSCollector(src), pauses, paused} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
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

// A HealthFunc reports whether a run is healthy, and if not, why in one line.
type HealthFunc func() (ok bool, reason string)

// healthHandler answers GET /healthz: 200 "ok", or 503 with the reason.
func healthHandler(health HealthFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if ok, reason := health(); !ok {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "unhealthy: "+reason+"\n")
			return
		}
		io.WriteString(w, "ok\n")
	}
}
