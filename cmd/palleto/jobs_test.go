package main

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/jobs"
)

// deadJobs makes a data directory whose queue holds the given ids, dead after one failure.
func deadJobs(t *testing.T, ids ...string) string {
	t.Helper()
	dir := t.TempDir()
	q, err := jobs.Open(jobs.Config{Dir: dir, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(t.Context(), ids...); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(t.Context(), len(ids))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		q.Acknowledge([]flow.Result{{Token: m.Token, Status: flow.Failed, Err: errors.New("exit status 3: quota exceeded")}})
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func jobsRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb lockedBuffer
	code = mainCode(t.Context(), append([]string{"jobs"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// Without a server, palleto jobs works on the data directory itself.
func TestJobsOnDataDir(t *testing.T) {
	dir := deadJobs(t, "dbid:a", "dbid:b")
	code, out, errs := jobsRun(t, "list", "--state", "dead", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "dbid:a") || !strings.Contains(out, "dbid:b") || !strings.Contains(out, "quota exceeded") {
		t.Fatalf("list: %d\n%s%s", code, out, errs)
	}
	code, out, _ = jobsRun(t, "show", "dbid:a", "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "state:") || !strings.Contains(out, "dead") || !strings.Contains(out, "exit status 3") || !strings.Contains(out, "failed runs:") {
		t.Fatalf("show: %d\n%s", code, out)
	}
	if code, out, errs := jobsRun(t, "requeue", "--data-dir", dir, "dbid:a"); code != 0 || out != "dbid:a: queued\n" {
		t.Fatalf("requeue: %d %q %s", code, out, errs)
	}
	if code, out, _ := jobsRun(t, "delete", "dbid:b", "--data-dir", dir); code != 0 || out != "dbid:b: deleted\n" {
		t.Fatalf("delete: %d %q", code, out)
	}
	if code, _, errs := jobsRun(t, "show", "dbid:b", "--data-dir", dir); code != 1 || !strings.Contains(errs, "no such job") {
		t.Fatalf("show of a deleted job: %d %q", code, errs)
	}
	q, err := jobs.Open(jobs.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if l := q.List(""); len(l) != 1 || l[0].ID != "dbid:a" || l[0].State != jobs.StateQueued {
		t.Fatalf("after requeue and delete, the directory holds %+v", l)
	}
}

// A data directory held by a running server: the command says how to reach it instead.
func TestJobsLockedDataDir(t *testing.T) {
	dir := deadJobs(t, "x")
	q, err := jobs.Open(jobs.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	code, _, errs := jobsRun(t, "list", "--data-dir", dir)
	if code != 1 || !strings.Contains(errs, "held by a running server") || !strings.Contains(errs, "--admin-url") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("list on a held directory: %d %q", code, errs)
	}
}

func TestJobsUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"frob"}, {"show"}, {"show", "a", "b"}, {"list", "a"}, {"list", "--state", "zombie"}, {"show", "a", "--state", "dead"}, {"list", "--admin-url", "ftp://x"}} {
		if code, _, errs := jobsRun(t, args...); code != 2 || errs == "" {
			t.Errorf("jobs %q: %d %q, want 2 and a message", args, code, errs)
		}
	}
}

// With --admin-url, palleto jobs talks to a running pool's admin listener, with its token.
func TestJobsOnAdminURL(t *testing.T) {
	var healed atomic.Bool
	hook, url := serveInBackground(t, app.ServeConfig{Memory: true, WebhookSecret: "s", MaxAttempts: 1, AdminToken: "t0ken",
		Handler: func(context.Context, jobs.Job) error {
			if healed.Load() {
				return nil
			}
			return errors.New("quota exceeded")
		}})
	(&serveProc{url: hook}).post(t, "s", "acct")

	if code, _, errs := jobsRun(t, "list", "--admin-url", url); code != 1 || !strings.Contains(errs, "token") {
		t.Fatalf("list without the token: %d %q", code, errs)
	}
	t.Setenv("PALLETO_ADMIN_TOKEN", "t0ken")
	deadline := time.Now().Add(time.Minute)
	for {
		code, out, errs := jobsRun(t, "list", "--state", "dead", "--admin-url", url)
		if code != 0 {
			t.Fatalf("list: %d %q", code, errs)
		}
		if strings.Contains(out, "acct") && strings.Contains(out, "quota exceeded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job is not listed dead: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, out, _ := jobsRun(t, "show", "acct", "--admin-url", url); code != 0 || !strings.Contains(out, "quota exceeded") || !strings.Contains(out, "failed runs:") {
		t.Fatalf("show: %d %q", code, out)
	}
	if code, _, errs := jobsRun(t, "show", "nobody", "--admin-url", url); code != 1 || !strings.Contains(errs, "no such job") {
		t.Fatalf("show nobody: %d %q", code, errs)
	}
	healed.Store(true)
	if code, out, errs := jobsRun(t, "requeue", "acct", "--admin-url", url); code != 0 || !strings.Contains(out, "acct: ") {
		t.Fatalf("requeue: %d %q %q", code, out, errs)
	}
	for {
		_, out, _ := jobsRun(t, "list", "--admin-url", url)
		if strings.Contains(out, "no jobs") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the requeued job did not run: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A server whose jobs are SQS messages cannot list them: list says so, rather than that
// there are none.
func TestJobsOnSQSServer(t *testing.T) {
	bk := awstest.Local(t)
	q, err := moto.CreateQueue(t.Context(), bk.SQS(), "jobs", moto.QueueOptions{MaxReceiveCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	awsCfg := bk.Config("")
	_, url := serveInBackground(t, app.ServeConfig{QueueURL: q.URL, AWS: &awsCfg, WebhookSecret: "s",
		Handler: func(context.Context, jobs.Job) error { return nil }})
	code, out, errs := jobsRun(t, "list", "--state", "dead", "--admin-url", url)
	if code != 1 || out != "" || !strings.Contains(errs, "lists no jobs: Jobs by state cannot be listed here") || !strings.Contains(errs, q.DeadLetter.URL) {
		t.Fatalf("list: %d %q %q, want an error saying why, naming the dead-letter queue", code, out, errs)
	}
}

// serveInBackground runs app.Serve with cfg, its listeners on loopback, until the test ends,
// and returns the URLs of its webhook and admin listeners.
func serveInBackground(t *testing.T, cfg app.ServeConfig) (hookURL, adminURL string) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	addr, hook := make(chan string, 1), make(chan string, 1)
	done := make(chan error, 1)
	cfg.Listen, cfg.Ready = "127.0.0.1:0", func(a string) { hook <- a }
	cfg.AdminListen, cfg.AdminReady = "127.0.0.1:0", func(a string) { addr <- a }
	go func() { done <- app.Serve(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	select {
	case a := <-addr:
		return "http://" + <-hook, "http://" + a
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("serve: %v", err)
	}
	return "", ""
}
