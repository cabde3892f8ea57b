package app_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/metrics/metricstest"
)

// value reads one series, failing the test when it is missing.
func value(t *testing.T, f metricstest.Families, name string, labels ...string) float64 {
	t.Helper()
	v, ok := f.Value(name, labels...)
	if !ok {
		t.Fatalf("%s%v: missing", name, labels)
	}
	return v
}

// A run given a registry registers the stage metrics and the SQS source's counters there;
// the registry then refuses a second run.
func TestRunRegistersMetrics(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 0)
		const n = 2
		for i := range n {
			e.put(t, fmt.Sprintf("m/%d.txt", i), []byte("a\nb\n"))
		}
		reg := prometheus.NewRegistry()
		sum := e.run(t, func(c *app.Config) { c.Metrics = reg })
		f, err := metricstest.Gather(reg)
		if err != nil {
			t.Fatal(err)
		}
		if got := value(t, f, "palleto_stage_items_total", "stage", "write", "outcome", "done"); got != float64(sum.Objects) || sum.Objects < n {
			t.Errorf("write done = %v, summary %d objects, %d put", got, sum.Objects, n)
		}
		if got := value(t, f, "palleto_stage_items_total", "stage", "sqs", "outcome", "received"); got != float64(sum.Messages) {
			t.Errorf("sqs received = %v, summary %d messages", got, sum.Messages)
		}
		// The test event and one message per object, each deleted (a redelivery may add more).
		if got := value(t, f, "palleto_sqs_messages_total", "event", "deleted"); got < n+1 {
			t.Errorf("sqs deleted = %v, want at least %d", got, n+1)
		}
		if got := value(t, f, "palleto_sqs_requests_total", "action", "ReceiveMessage"); got < 1 {
			t.Errorf("ReceiveMessage requests = %v", got)
		}
		if got := value(t, f, "palleto_sqs_in_flight"); got != 0 {
			t.Errorf("in flight after the run = %v", got)
		}

		_, err = app.Run(t.Context(), e.config(func(c *app.Config) { c.Metrics = reg }))
		if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); !ok {
			t.Fatalf("second run on one registry: %v, want AlreadyRegisteredError", err)
		}
	})
}

func TestRunMetricsListenUnbindable(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	out := filepath.Join(t.TempDir(), "out")
	// The address is checked first: the queue is never asked for.
	_, err = app.Run(t.Context(), app.Config{QueueURL: "http://127.0.0.1:1/123456789012/q", Out: out, MetricsListen: taken.Addr().String()})
	ce, ok := errors.AsType[*app.ConfigError](err)
	if !ok || ce.Flag != "metrics-listen" {
		t.Fatalf("run with --metrics-listen on a taken port: %v, want a ConfigError for metrics-listen", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused run left --out behind (%v)", err)
	}
}

// GET /metrics of palleto serve: job counts, and the stages of the pool.
func TestServeMetrics(t *testing.T) {
	rec := newRecorder(true)
	s := startServe(t, app.ServeConfig{Memory: true, Workers: 2, Handler: rec.handle})
	url := s.admin + "/metrics"
	mustPost(t, s.url, "a", "b", "c")
	rec.wait(t, 2)
	// Two workers hold a and b; c waits.
	f := metricstest.Wait(t, url, "two running jobs", func(f metricstest.Families) bool {
		v, _ := f.Value("palleto_jobs", "state", "running")
		return v == 2
	})
	if got := value(t, f, "palleto_jobs", "state", "queued"); got != 1 {
		t.Errorf("queued = %v, want 1", got)
	}
	if got := value(t, f, "palleto_stage_demand", "stage", "workers"); got != 2 {
		t.Errorf("demand of the workers = %v, want 2 (two workers, one job each)", got)
	}
	close(rec.hold)
	f = metricstest.Wait(t, url, "three jobs done", func(f metricstest.Families) bool {
		v, _ := f.Value("palleto_job_runs_total", "outcome", "done")
		return v == 3
	})
	for _, bad := range f.Check(
		metricstest.Want{Name: "palleto_jobs", Labels: []string{"state", "queued"}, Value: 0},
		metricstest.Want{Name: "palleto_jobs", Labels: []string{"state", "running"}, Value: 0},
		metricstest.Want{Name: "palleto_jobs", Labels: []string{"state", "dead"}, Value: 0},
		metricstest.Want{Name: "palleto_job_runs_total", Labels: []string{"outcome", "failed"}, Value: 0},
		metricstest.Want{Name: "palleto_stage_items_total", Labels: []string{"stage", "queue", "outcome", "received"}, Value: 3},
	) {
		t.Error(bad)
	}
	// The workers stage counts the same three jobs, as its workers report them.
	metricstest.Wait(t, url, "three jobs done by the workers stage", func(f metricstest.Families) bool {
		v, _ := f.Value("palleto_stage_items_total", "stage", "workers", "outcome", "done")
		return v == 3
	})
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}

// With --queue-url, GET /metrics adds the SQS source's counters.
func TestServeSQSMetrics(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		q, err := moto.CreateQueue(t.Context(), srv.SQS(), fmt.Sprint("serve-metrics-", time.Now().UnixNano()), moto.QueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		awsCfg := srv.Config("")
		rec := newRecorder(false)
		s := startServe(t, app.ServeConfig{QueueURL: q.URL, AWS: &awsCfg, Workers: 1, Handler: rec.handle})
		mustPost(t, s.url, "x", "y")
		rec.wait(t, 2)
		f := metricstest.Wait(t, s.admin+"/metrics", "two messages deleted", func(f metricstest.Families) bool {
			v, _ := f.Value("palleto_sqs_messages_total", "event", "deleted")
			return v >= 2
		})
		if got := value(t, f, "palleto_sqs_messages_total", "event", "received"); got < 2 {
			t.Errorf("received = %v, want at least 2", got)
		}
		if got := value(t, f, "palleto_sqs_requests_total", "action", "DeleteMessageBatch"); got < 1 {
			t.Errorf("DeleteMessageBatch requests = %v", got)
		}
		if got := value(t, f, "palleto_job_runs_total", "outcome", "done"); got < 2 {
			t.Errorf("job runs done = %v, want at least 2", got)
		}
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}
	})
}
