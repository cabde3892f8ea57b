package metrics_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/jobs"
	"github.com/palleto/palleto/metrics"
	"github.com/palleto/palleto/sqs"
)

type fakeSQS struct{ st sqs.Stats }

func (f fakeSQS) Stats() sqs.Stats { return f.st }

type fakeJobs struct {
	c   jobs.Counts
	err error
}

func (f fakeJobs) counts() (jobs.Counts, error) { return f.c, f.err }

func TestSQSCollector(t *testing.T) {
	// Every field a different value, so that a field exported under the wrong name shows.
	st := sqs.Stats{
		Requests: sqs.Requests{ReceiveMessage: 1, DeleteMessageBatch: 2, ChangeMessageVisibilityBatch: 3, SendMessage: 4, GetQueueAttributes: 5, Failed: 6},
		Received: 11, Deleted: 12, Released: 13, Failed: 14, Extended: 15, DeadLettered: 16, Redelivered: 17, Invalid: 18, Dropped: 19,
		InFlight: 21, Held: 22, Demand: 23,
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(metrics.NewSQSCollector(fakeSQS{st})); err != nil {
		t.Fatal(err)
	}
	f := gather(t, reg)
	r := st.Requests
	for action, v := range map[string]int64{
		"ReceiveMessage": r.ReceiveMessage, "DeleteMessageBatch": r.DeleteMessageBatch,
		"ChangeMessageVisibilityBatch": r.ChangeMessageVisibilityBatch, "SendMessage": r.SendMessage,
		"GetQueueAttributes": r.GetQueueAttributes,
	} {
		want(t, f, float64(v), "palleto_sqs_requests_total", "action", action)
	}
	want(t, f, float64(r.Failed), "palleto_sqs_request_failures_total")
	for event, v := range map[string]int64{
		metrics.SQSReceived: st.Received, metrics.SQSDeleted: st.Deleted, metrics.SQSReleased: st.Released,
		metrics.SQSFailed: st.Failed, metrics.SQSExtended: st.Extended, metrics.SQSDeadLettered: st.DeadLettered,
		metrics.SQSRedelivered: st.Redelivered, metrics.SQSInvalid: st.Invalid, metrics.SQSDropped: st.Dropped,
	} {
		want(t, f, float64(v), "palleto_sqs_messages_total", "event", event)
	}
	want(t, f, float64(st.InFlight), "palleto_sqs_in_flight")
	want(t, f, float64(st.Held), "palleto_sqs_held")
	want(t, f, float64(st.Demand), "palleto_sqs_demand")
	if got := len(f["palleto_sqs_messages_total"].GetMetric()); got != 9 {
		t.Errorf("%d message events, want 9", got)
	}
}

func TestJobsCollector(t *testing.T) {
	c := jobs.Counts{Queued: 3, Running: 2, Done: 7, Failed: 4, Dead: 1}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(metrics.NewJobsCollector(fakeJobs{c: c}.counts)); err != nil {
		t.Fatal(err)
	}
	f := gather(t, reg)
	want(t, f, float64(c.Queued), "palleto_jobs", "state", "queued")
	want(t, f, float64(c.Running), "palleto_jobs", "state", "running")
	want(t, f, float64(c.Dead), "palleto_jobs", "state", "dead")
	want(t, f, float64(c.Done), "palleto_job_runs_total", "outcome", "done")
	want(t, f, float64(c.Failed), "palleto_job_runs_total", "outcome", "failed")
	if f["palleto_job_runs_total"].GetType().String() != "COUNTER" || f["palleto_jobs"].GetType().String() != "GAUGE" {
		t.Errorf("types: runs %v, jobs %v", f["palleto_job_runs_total"].GetType(), f["palleto_jobs"].GetType())
	}
}

func TestHandlerServesTheRestWhenACollectorFails(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewSQSCollector(fakeSQS{sqs.Stats{InFlight: 5}}))
	reg.MustRegister(metrics.NewJobsCollector(fakeJobs{err: errors.New("store unavailable")}.counts))
	var logs bytes.Buffer
	h := metrics.Handler(reg, slog.New(slog.NewTextHandler(&logs, nil)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, body)
	}
	if !strings.Contains(body, "\npalleto_sqs_in_flight 5\n") {
		t.Errorf("body lacks palleto_sqs_in_flight 5:\n%s", body)
	}
	if strings.Contains(body, "palleto_job_runs_total{") {
		t.Errorf("body has job runs although counting failed:\n%s", body)
	}
	if !strings.Contains(logs.String(), "store unavailable") {
		t.Errorf("the failure was not logged: %q", logs.String())
	}
}
