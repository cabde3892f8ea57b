package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/metrics/metricstest"
)

var metricsURL = regexp.MustCompile(`msg="admin listener[^"]*" url=(http://[^/\s]+)/`)

// palleto run with PALLETO_METRICS_LISTEN on port 0: the log says where /metrics is; it shows
// the run's progress, the Go and process metrics, and goes away when the run ends.
func TestRunServesMetrics(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		ctx := t.Context()
		s3c, sqsc := srv.S3(), srv.SQS()
		name := fmt.Sprint("metrics-", time.Now().UnixNano())
		q, err := moto.CreateQueue(ctx, sqsc, name, moto.QueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := moto.CreateBucket(ctx, s3c, name); err != nil {
			t.Fatal(err)
		}
		if err := moto.NotifyQueue(ctx, s3c, sqsc, name, q); err != nil {
			t.Fatal(err)
		}
		const n = 3
		for i := range n {
			if _, err := moto.PutObject(ctx, s3c, name, fmt.Sprintf("o-%d", i), []byte("one\ntwo\n")); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range map[string]string{
			"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
			"AWS_ENDPOINT_URL": srv.URL, "PALLETO_METRICS_LISTEN": "127.0.0.1:0",
		} {
			t.Setenv(k, v)
		}
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		var stdout, stderr lockedBuffer
		exit := make(chan int, 1)
		go func() {
			exit <- mainCode(runCtx, []string{"run", "--queue-url", q.URL, "--out", t.TempDir(), "--wait-time", "1s", "--status", "off"}, &stdout, &stderr)
		}()

		var url string
		deadline := time.Now().Add(time.Minute)
		for {
			if m := metricsURL.FindStringSubmatch(stderr.String()); m != nil {
				url = m[1] + "/metrics"
				break
			}
			select {
			case code := <-exit:
				t.Fatalf("run exited %d before serving metrics:\n%s", code, stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no metrics URL in the log:\n%s", stderr.String())
			}
		}

		f := metricstest.Wait(t, url, fmt.Sprintf("%d objects written", n), func(f metricstest.Families) bool {
			v, _ := f.Value("palleto_stage_items_total", "stage", "write", "outcome", "done")
			return v >= n
		})
		// At least once: a message SQS delivers twice is written twice (into the same file).
		if v, _ := f.Value("palleto_stage_items_total", "stage", "write", "outcome", "done"); v > n+2 {
			t.Errorf("write done = %v, want %d", v, n)
		}
		if v, _ := f.Value("palleto_sqs_requests_total", "action", "ReceiveMessage"); v < 1 {
			t.Errorf("ReceiveMessage requests = %v, want some", v)
		}
		// The test event and one message per object.
		if v, _ := f.Value("palleto_stage_items_total", "stage", "sqs", "outcome", "received"); v < n+1 {
			t.Errorf("sqs received = %v, want at least %d", v, n+1)
		}
		if v, _ := f.Value("palleto_stage_busy_seconds_total", "stage", "analyse"); v <= 0 {
			t.Errorf("busy seconds of analyse = %v, want more than 0", v)
		}
		// The write stage runs 64 workers (app.writeWorkers) that ask for 1 item each.
		if v, _ := f.Value("palleto_stage_demand", "stage", "write"); v != 64 {
			t.Errorf("demand of write = %v, want 64", v)
		}
		// The downloads in flight that the run chose, 4 at first.
		if v, ok := f.Value("palleto_stage_limit", "stage", "fetch"); !ok || v < 1 {
			t.Errorf("palleto_stage_limit of fetch = %v (present %v), want at least 1", v, ok)
		}
		for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
			if _, ok := f.Value(name); !ok {
				t.Errorf("%s: missing", name)
			}
		}
		// The same listener answers a health check while the run lasts.
		resp, err := http.Get(strings.TrimSuffix(url, "/metrics") + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz: %s, want 200", resp.Status)
		}

		stop()
		select {
		case code := <-exit:
			if code != 0 {
				t.Fatalf("exit %d after the stop:\n%s", code, stderr.String())
			}
		case <-time.After(time.Minute):
			t.Fatal("run did not end after the stop")
		}
		if _, err := metricstest.Scrape(ctx, url); err == nil {
			t.Fatal("/metrics still served after the run ended")
		}
	})
}

func TestMetricsListenUsageErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"taken port", nil, []string{"--metrics-listen", taken.Addr().String()}},
		{"taken port from the environment", map[string]string{"PALLETO_METRICS_LISTEN": taken.Addr().String()}, nil},
		{"no port", nil, []string{"--metrics-listen", "127.0.0.1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"run", "--queue-url", "http://127.0.0.1:1/123456789012/q", "--status", "off"}, c.args...)
			code, _, stderr := runMain(t, c.env, args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr)
			}
			if !strings.Contains(stderr, "--metrics-listen") {
				t.Fatalf("stderr %q does not name --metrics-listen", stderr)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("stderr is not one line: %q", stderr)
			}
		})
	}
}

// palleto serve: GET /metrics has the job counts after webhook posts, and the Go and
// process metrics.
func TestServeServesMetrics(t *testing.T) {
	p := startServeProc(t, nil, "--webhook-secret", "s", "--memory", "--workers", "1", "--exec", "true")
	p.post(t, "s", "a", "b")
	p.post(t, "s", "c")
	f := metricstest.Wait(t, p.admin+"/metrics", "three jobs done", func(f metricstest.Families) bool {
		v, _ := f.Value("palleto_job_runs_total", "outcome", "done")
		return v == 3
	})
	for _, bad := range f.Check(
		metricstest.Want{Name: "palleto_jobs", Labels: []string{"state", "queued"}, Value: 0},
		metricstest.Want{Name: "palleto_jobs", Labels: []string{"state", "running"}, Value: 0},
		metricstest.Want{Name: "palleto_job_runs_total", Labels: []string{"outcome", "failed"}, Value: 0},
	) {
		t.Error(bad)
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds"} {
		if _, ok := f.Value(name); !ok {
			t.Errorf("%s: missing", name)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, p.logs)
	}
}
