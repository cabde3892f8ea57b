package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DurationBuckets are the buckets of the duration histograms, in seconds: from a
// millisecond to an hour.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}

// Run has the metrics that answer questions about a pipeline run's work:
//
//	palleto_message_seconds          histogram  from a message's first receive to its
//	                                            success (its last result written)
//	palleto_analysed_bytes_total     counter    decompressed bytes analysed
//	palleto_analysed_lines_total     counter    lines counted
type Run struct {
	message      prometheus.Histogram
	bytes, lines prometheus.Counter
}

// NewRun registers the run's metrics with reg.
func NewRun(reg prometheus.Registerer) (*Run, error) {
	r := &Run{
		message: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "palleto_message_seconds",
			Help:    "Time from a message's first receive (SQS's ApproximateFirstReceiveTimestamp) to its success: its last result written.",
			Buckets: DurationBuckets,
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "palleto_analysed_bytes_total", Help: "Decompressed bytes analysed."}),
		lines: prometheus.NewCounter(prometheus.CounterOpts{Name: "palleto_analysed_lines_total", Help: "Lines (newline bytes) counted in the decompressed content."}),
	}
	if err := register(reg, r.message, r.bytes, r.lines); err != nil {
		return nil, err
	}
	return r, nil
}

// MessageDone records the time a message took, from its first receive to its success.
func (r *Run) MessageDone(d time.Duration) { r.message.Observe(max(d, 0).Seconds()) }

// Analysed counts the bytes and lines of an analysed object.
func (r *Run) Analysed(bytes, lines int64) {
	r.bytes.Add(float64(bytes))
	r.lines.Add(float64(lines))
}

// Jobs has the metrics of the worker pool's job runs:
//
//	palleto_job_wait_seconds     histogram  from when a job could run to when it started
//	palleto_job_run_seconds      histogram  how long a run took, whatever its outcome
//	palleto_webhook_calls_total  counter    webhook calls by outcome: accepted,
//	                                        challenge, bad_signature, too_large, bad_body,
//	                                        bad_request, unavailable
type Jobs struct {
	wait, run prometheus.Histogram
	calls     *prometheus.CounterVec
}

// NewJobs registers the pool's metrics with reg.
func NewJobs(reg prometheus.Registerer) (*Jobs, error) {
	j := &Jobs{
		wait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "palleto_job_wait_seconds", Help: "Time from when a job could run (posted, or its retry due) to when a worker started it.",
			Buckets: DurationBuckets,
		}),
		run: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "palleto_job_run_seconds", Help: "Time a job's run took, whatever its outcome.",
			Buckets: DurationBuckets,
		}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palleto_webhook_calls_total", Help: "Webhook calls by outcome.",
		}, []string{"outcome"}),
	}
	if err := register(reg, j.wait, j.run, j.calls); err != nil {
		return nil, err
	}
	return j, nil
}

// Waited records how long a job waited to start.
func (j *Jobs) Waited(d time.Duration) { j.wait.Observe(max(d, 0).Seconds()) }

// Ran records how long a run took.
func (j *Jobs) Ran(d time.Duration) { j.run.Observe(max(d, 0).Seconds()) }

// WebhookCall counts a webhook call by outcome; it fits webhook.Config.OnCall.
func (j *Jobs) WebhookCall(outcome string) { j.calls.WithLabelValues(outcome).Inc() }

// register registers all of cs with reg, or none.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}
