package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palleto/palleto/admin"
	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/jobs"
	"github.com/palleto/palleto/metrics/metricstest"
)

func getJSON[T any](t *testing.T, url string) T {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v T
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return v
}

func status(t *testing.T, method, url string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.Header.Set(admin.RequestHeader, "test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls until ok or a minute has passed.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running is a run started by startRun.
type running struct {
	done   chan error // its error, once it has ended
	cancel context.CancelFunc
}

// startRun runs cfg until stopped, or until the test ends.
func startRun(t *testing.T, cfg app.Config) *running {
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{done: make(chan error, 1), cancel: cancel}
	go func() {
		_, err := app.Run(ctx, cfg)
		r.done <- err
	}()
	return r
}

// stop stops the run and returns its error.
func (r *running) stop() error {
	r.cancel()
	return <-r.done
}

// The admin listener of a run shows the pipeline's real stages and the failures of its
// messages, each logged once with its attempt and what happens next.
func TestRunAdmin(t *testing.T) {
	e := newEnv(t, awstest.Local(t), 2)
	e.put(t, "here", []byte("a\nb\n"))
	e.purge(t)
	e.send(t, s3Notification(e.bucket, "here", "gone"))
	logs := &syncBuffer{}
	addr := make(chan string, 1)
	cfg := e.config(func(c *app.Config) {
		c.Drain = false
		c.AdminListen = "127.0.0.1:0"
		c.AdminReady = func(a string) { addr <- a }
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	r := startRun(t, cfg)
	var url string
	select {
	case a := <-addr:
		url = "http://" + a
	case err := <-r.done:
		t.Fatalf("run ended before its admin listener: %v", err)
	}
	var snap admin.Snapshot
	waitFor(t, "two failed attempts", func() bool {
		snap = getJSON[admin.Snapshot](t, url+"/api/snapshot")
		return len(snap.Failures.Failures) >= 2
	})
	var names []string
	for _, s := range snap.Stages {
		names = append(names, s.Name)
	}
	if want := []string{"sqs", "parse", "fetch", "analyse", "write"}; !slices.Equal(names, want) {
		t.Errorf("stages %v, want %v", names, want)
	}
	if snap.Stages[2].Workers != 3 || snap.Stages[2].MaxDemand != 1 {
		t.Errorf("fetch: %+v, want 3 workers of demand 1", snap.Stages[2])
	}
	f1, f2 := snap.Failures.Failures[1], snap.Failures.Failures[0] // newest first
	for i, f := range []admin.Failure{f1, f2} {
		if f.MessageID == "" || f.Object != "s3://"+e.bucket+"/gone" || f.Stage != "fetch" || f.Attempt != i+1 || !strings.Contains(f.Error, "gone") {
			t.Errorf("failure %d: %+v", i+1, f)
		}
	}
	// The queue's redrive policy moves a message on the receive after its second.
	if want := "retried within 200ms (receive 1 of 2, then dead-lettered)"; f1.Next != want {
		t.Errorf("after failure 1: next %q, want %q", f1.Next, want)
	}
	if want := "dead-lettered by the queue's redrive policy (receive 2 of 2)"; f2.Next != want {
		t.Errorf("after failure 2: next %q, want %q", f2.Next, want)
	}
	if snap.Queue == nil || snap.Queue.Stats.URL != e.queue.URL || snap.Queue.Stats.Received < 2 {
		t.Errorf("queue: %+v", snap.Queue)
	}
	if code := status(t, "GET", url+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d", code)
	}
	f := metricstest.Wait(t, url+"/metrics", "the object analysed", func(f metricstest.Families) bool {
		v, _ := f.Value("palleto_analysed_lines_total")
		return v >= 2 // once per attempt
	})
	if n, _, ok := f.Histogram("palleto_stage_item_seconds", "stage", "fetch"); !ok || n < 2 {
		t.Errorf("palleto_stage_item_seconds{fetch}: %d samples", n)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	// Each failure is logged once, with its message, attempt and what happens next.
	logged := logs.records(t, "message failed")
	if len(logged) < 2 {
		t.Fatalf("%d failures logged", len(logged))
	}
	for _, r := range logged[:2] {
		if r["message_id"] != f1.MessageID || r["object"] != f1.Object || r["attempt"] == nil || r["next"] == "" {
			t.Errorf("log record %v", r)
		}
	}
	if n := len(logs.records(t, "failed 1")); n != 0 {
		t.Errorf("the runtime logged %d failures again", n)
	}
}

// A run reads the queue's redrive policy at start-up, with or without an admin listener: on
// a queue without one, a failure is logged as retried without end.
func TestRunNextWithoutRedrive(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 0) // no dead-letter queue
		e.purge(t)
		e.send(t, s3Notification(e.bucket, "gone"))
		logs := &syncBuffer{}
		cfg := e.config(func(c *app.Config) {
			c.Drain = false
			c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		})
		r := startRun(t, cfg)
		logs.waitFor(t, "message failed")
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		rec := logs.records(t, "message failed")[0]
		if want := "retried within 200ms, no dead-letter queue"; rec["next"] != want || rec["attempt"] != 1.0 {
			t.Errorf("logged %v, want attempt 1 and next %q", rec, want)
		}
	})
}

// The webhook listener of a pool serves the webhook and /healthz only; the admin listener
// lists the dead job with its error and runs it again.
func TestServeAdmin(t *testing.T) {
	var healed atomic.Bool
	s := startServe(t, app.ServeConfig{Memory: true, Workers: 2, MaxAttempts: 1, Handler: func(_ context.Context, j jobs.Job) error {
		if j.ID == "bad" && !healed.Load() {
			return errors.New("sync failed: quota exceeded")
		}
		return nil
	}})
	for _, path := range []string{"/metrics", "/jobs", "/api/jobs", "/"} {
		if code := status(t, "GET", s.url+path); code != 404 {
			t.Errorf("webhook listener GET %s = %d, want 404", path, code)
		}
	}
	if code := status(t, "GET", s.url+"/healthz"); code != 200 {
		t.Errorf("webhook listener GET /healthz = %d", code)
	}
	mustPost(t, s.url, "ok", "bad")
	waitFor(t, "bad dead", func() bool { return counts(t, s.admin).Dead == 1 })
	l := getJSON[admin.JobList](t, s.admin+"/api/jobs?state=dead")
	if len(l.Jobs) != 1 || l.Jobs[0].ID != "bad" || l.Jobs[0].LastError != "sync failed: quota exceeded" {
		t.Fatalf("dead jobs %+v", l.Jobs)
	}
	fl := getJSON[admin.FailureList](t, s.admin+"/api/failures")
	if len(fl.Failures) != 1 || fl.Failures[0].JobID != "bad" || fl.Failures[0].Attempt != 1 || !strings.Contains(fl.Failures[0].Next, "dead after 1 failed run") {
		t.Fatalf("failures %+v", fl)
	}
	healed.Store(true)
	if code := status(t, "POST", s.admin+"/api/jobs/bad/run"); code != 200 {
		t.Fatalf("run now = %d", code)
	}
	waitFor(t, "bad done", func() bool { return counts(t, s.admin).Done == 2 })
	f := metricstest.Wait(t, s.admin+"/metrics", "three runs", func(f metricstest.Families) bool {
		n, _, _ := f.Histogram("palleto_job_run_seconds")
		return n == 3
	})
	if v, _ := f.Value("palleto_webhook_calls_total", "outcome", "accepted"); v != 1 {
		t.Errorf("accepted webhook calls = %v", v)
	}
	if n, _, _ := f.Histogram("palleto_job_wait_seconds"); n != 3 {
		t.Errorf("job waits observed %d, want 3", n)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.logs.records(t, "job failed")); n != 1 {
		t.Errorf("job failed logged %d times, want once", n)
	}
}

// An admin listener on an address that is not loopback needs a token: refused at start-up,
// naming the flag.
func TestAdminNeedsToken(t *testing.T) {
	err := app.Serve(t.Context(), app.ServeConfig{Memory: true, WebhookSecret: "s", Handler: func(context.Context, jobs.Job) error { return nil },
		Listen: "127.0.0.1:0", AdminListen: "0.0.0.0:0"})
	var ce *app.ConfigError
	if !errors.As(err, &ce) || ce.Flag != "admin-listen" || !errors.Is(err, admin.ErrNeedToken) && !strings.Contains(err.Error(), "token") {
		t.Fatalf("Serve with a public admin address and no token = %v", err)
	}
}
