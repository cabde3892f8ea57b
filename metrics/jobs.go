package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/jobs"
)

// A JobsCollector exports a job queue's counts, read at each scrape:
//
//	palleto_jobs{state}                 gauge    jobs by state: queued (retry-waiting
//	                                             included), running, dead
//	palleto_job_runs_total{outcome}     counter  runs that ended, by outcome: done, failed
//
// The counts are those of GET /jobs. When they cannot be read, the scrape reports the error
// for these metrics and still serves the others.
type JobsCollector struct {
	counts     func() (jobs.Counts, error)
	state, run *prometheus.Desc
}

// NewJobsCollector returns a collector of the counts that counts reads.
func NewJobsCollector(counts func() (jobs.Counts, error)) *JobsCollector {
	return &JobsCollector{
		counts: counts,
		state:  prometheus.NewDesc("palleto_jobs", "Jobs by state: queued (retry-waiting included), running, dead (given up).", []string{"state"}, nil),
		run:    prometheus.NewDesc("palleto_job_runs_total", "Job runs that ended, by outcome: done or failed.", []string{"outcome"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *JobsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.run
}

// Collect implements prometheus.Collector.
func (c *JobsCollector) Collect(ch chan<- prometheus.Metric) {
	n, err := c.counts()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.state, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, float64(n.Queued), "queued")
	ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, float64(n.Running), "running")
	ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, float64(n.Dead), "dead")
	ch <- prometheus.MustNewConstMetric(c.run, prometheus.CounterValue, float64(n.Done), "done")
	ch <- prometheus.MustNewConstMetric(c.run, prometheus.CounterValue, float64(n.Failed), "failed")
}
