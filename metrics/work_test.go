package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/metrics"
)

func TestRunMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	r, err := metrics.NewRun(reg)
	if err != nil {
		t.Fatal(err)
	}
	r.MessageDone(2 * time.Second)
	r.MessageDone(-time.Second) // clocks apart: counted as 0
	r.Analysed(1000, 10)
	r.Analysed(24, 2)
	f := gather(t, reg)
	if n, sum, ok := f.Histogram("palleto_message_seconds"); !ok || n != 2 || sum != 2 {
		t.Errorf("palleto_message_seconds: %d samples, sum %v", n, sum)
	}
	want(t, f, 1024, "palleto_analysed_bytes_total")
	want(t, f, 12, "palleto_analysed_lines_total")
	if _, err := metrics.NewRun(reg); err == nil {
		t.Error("a second NewRun on one registry succeeded")
	}
}

func TestJobsMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	j, err := metrics.NewJobs(reg)
	if err != nil {
		t.Fatal(err)
	}
	j.Waited(time.Second)
	j.Ran(3 * time.Second)
	j.WebhookCall("accepted")
	j.WebhookCall("accepted")
	j.WebhookCall("bad_signature")
	f := gather(t, reg)
	if n, sum, _ := f.Histogram("palleto_job_wait_seconds"); n != 1 || sum != 1 {
		t.Errorf("wait: %d samples, sum %v", n, sum)
	}
	if n, sum, _ := f.Histogram("palleto_job_run_seconds"); n != 1 || sum != 3 {
		t.Errorf("run: %d samples, sum %v", n, sum)
	}
	want(t, f, 2, "palleto_webhook_calls_total", "outcome", "accepted")
	want(t, f, 1, "palleto_webhook_calls_total", "outcome", "bad_signature")
}

// Each Done or Failed batch adds its items' mean handling time to the stage's histogram.
func TestStageItemSeconds(t *testing.T) {
	o, reg := newObserver(t)
	o.Observe(flow.Event{Stage: "fetch", Kind: flow.EventAsked, N: 1, Demand: 1})
	o.Observe(flow.Event{Stage: "fetch", Kind: flow.EventDone, N: 4, Busy: 2 * time.Second})
	o.Observe(flow.Event{Stage: "fetch", Kind: flow.EventFailed, N: 1, Busy: time.Second})
	o.Observe(flow.Event{Stage: "fetch", Kind: flow.EventFailed, N: 1}) // counted with its Done
	if n, sum, ok := gather(t, reg).Histogram("palleto_stage_item_seconds", "stage", "fetch"); !ok || n != 2 || sum != 1.5 {
		t.Errorf("palleto_stage_item_seconds{fetch}: %d samples, sum %v; want 2, 1.5", n, sum)
	}
}
