package app_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/local"
	"github.com/palleto/palleto/output"
)

// faultRun is a run of the pipeline (no drain) with a health check on a free port.
type faultRun struct {
	health string
	cancel context.CancelFunc
	done   chan error
	sum    app.Summary
}

func startFaultRun(t *testing.T, e *env, mod ...func(*app.Config)) *faultRun {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := e.config(mod...)
	cfg.Drain = false
	cfg.MetricsListen = addr
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(t.Context())
	r := &faultRun{health: "http://" + addr + "/healthz", cancel: cancel, done: make(chan error, 1)}
	go func() {
		sum, err := app.Run(ctx, cfg)
		r.sum = sum
		r.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(time.Minute):
			t.Error("the run did not end within a minute of its cancel")
		}
	})
	r.waitHealth(t, http.StatusOK)
	return r
}

func (r *faultRun) healthz() (int, string) {
	resp, err := http.Get(r.health)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (r *faultRun) waitHealth(t *testing.T, code int) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got, body := r.healthz()
		if got == code {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz %d %q, want %d within a minute", got, body, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *faultRun) stop(t *testing.T) app.Summary {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("run: %v", err)
	}
	r.done <- nil // for the cleanup
	return r.sum
}

// pausedThenCured waits for /healthz to report the pause and its cause, checks that nothing
// reaches the dead-letter queue while several probes fail, then removes the cause (the file
// at cure) and waits for the keys' results and for /healthz to be ok again.
func (r *faultRun) pausedThenCured(t *testing.T, e *env, cause, cure string, keys []string) {
	t.Helper()
	body := r.waitHealth(t, http.StatusServiceUnavailable)
	if !strings.Contains(body, "intake paused") || !strings.Contains(body, cause) {
		t.Errorf("/healthz says %q: want the pause and its cause", body)
	}
	time.Sleep(4 * time.Second)
	if dl := e.deadLetterBodies(t, 0); len(dl) != 0 {
		t.Fatalf("dead-letter queue holds %q during a fault of the environment", dl)
	}
	if err := os.Remove(cure); err != nil {
		t.Fatal(err)
	}
	e.waitResults(t, keys...)
	r.waitHealth(t, http.StatusOK)
}

// waitResults waits until every key has its result.
func (e *env) waitResults(t *testing.T, keys ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for _, k := range keys {
		for {
			if _, ok := e.result(t, k); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no result for %s within a minute", k)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// A result directory that cannot be made (a file stands where the bucket's directory goes):
// intake pauses and /healthz says so; nothing reaches the dead-letter queue, though the
// queue's maxReceiveCount is 1 (a message put back would be moved there at its next receive);
// once the directory can be made, the run resumes and writes every result.
func TestUnwritableResultsPauseThenRecover(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 1)
		r := startFaultRun(t, e)
		blocker := filepath.Join(e.out, strings.Split(filepath.ToSlash(output.RelPath(e.bucket, "k")), "/")[0])
		if err := os.WriteFile(blocker, []byte("not a directory"), 0o644); err != nil {
			t.Fatal(err)
		}
		keys := []string{"a.log", "b.log", "c.log"}
		for _, k := range keys {
			e.put(t, k, lines(10, k))
		}
		r.pausedThenCured(t, e, "not a directory", blocker, keys)
		sum := r.stop(t)
		if dl := e.deadLetterBodies(t, 0); len(dl) != 0 {
			t.Fatalf("dead-letter queue holds %q", dl)
		}
		if v, f := e.queueCounts(t, e.queue.URL); v != "0" || f != "0" {
			t.Errorf("queue left with %s visible, %s in flight", v, f)
		}
		if sum.Objects != int64(len(keys)) {
			t.Errorf("summary %+v: want %d objects", sum, len(keys))
		}
	})
}

// A full disk (a small tmpfs; skipped where one cannot be mounted): the same pause, and
// recovery once space is freed.
func TestFullDiskPausesThenRecovers(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 2)
		dir := mountTmpfs(t, "size=256k")
		e.out = dir
		r := startFaultRun(t, e)
		filler := filepath.Join(dir, "filler")
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		chunk := make([]byte, 4096)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
		f.Close()
		keys := []string{"a.log", "b.log"}
		for _, k := range keys {
			e.put(t, k, lines(10, k))
		}
		r.pausedThenCured(t, e, "no space left on device", filler, keys)
		r.stop(t)
		if dl := e.deadLetterBodies(t, 0); len(dl) != 0 {
			t.Fatalf("dead-letter queue holds %q", dl)
		}
	})
}

// An --out that cannot be written (a read-only tmpfs; skipped where one cannot be mounted) is
// found at start-up by a real write: a configuration error naming --out, and no message taken.
func TestReadOnlyOutRefusedAtStartup(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 2)
		dir := mountTmpfs(t, "ro,size=64k")
		e.put(t, "a.log", lines(3, "a"))
		cfg := e.config(func(c *app.Config) { c.Out = dir })
		_, err := app.Run(t.Context(), cfg)
		var ce *app.ConfigError
		if !errors.As(err, &ce) || ce.Flag != "out" || !strings.Contains(err.Error(), "read-only file system") {
			t.Fatalf("run on a read-only --out: %v; want a configuration error naming --out and the cause", err)
		}
		if v, f := e.queueCounts(t, e.queue.URL); v == "0" || f != "0" {
			t.Fatalf("queue %s visible, %s in flight: a refused run took messages", v, f)
		}
	})
}

// A spool directory that cannot be written (here a file, not a directory) is found at
// start-up too, while --out is set up beside it: a configuration error naming --spool-dir, no
// message taken, and no --out left behind.
func TestUnwritableSpoolDirRefusedAtStartup(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 2)
		e.put(t, "a.log", lines(3, "a"))
		notDir := filepath.Join(t.TempDir(), "spool")
		if err := os.WriteFile(notDir, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out", "nested")
		cfg := e.config(func(c *app.Config) { c.Out, c.SpoolDir = out, notDir })
		_, err := app.Run(t.Context(), cfg)
		var ce *app.ConfigError
		if !errors.As(err, &ce) || ce.Flag != "spool-dir" || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("run with a file as --spool-dir: %v; want a configuration error naming --spool-dir and the cause", err)
		}
		if _, err := os.Stat(filepath.Dir(out)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("a refused run left --out behind (%v)", err)
		}
		if v, f := e.queueCounts(t, e.queue.URL); v == "0" || f != "0" {
			t.Fatalf("queue %s visible, %s in flight: a refused run took messages", v, f)
		}
	})
}

// mountTmpfs mounts a tmpfs with opts on a temporary directory for the test, or skips the
// test where that is not allowed.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// An SQS endpoint whose receives never answer (the fault proxy holds them): each times out
// after the wait plus --request-timeout, /healthz turns unhealthy, and healthy again once
// receives are answered.
func TestStalledReceivesMakeHealthUnhealthy(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 2)
		proxy := local.StartProxyT(t, local.ProxyConfig{Target: bk.URL})
		r := startFaultRun(t, e, func(c *app.Config) {
			c.AWS = ptr(bk.Config(proxy.URL()))
			c.RequestTimeout = time.Second
		})
		if err := proxy.SetFaults(local.Faults{Latency: time.Hour, Actions: []string{"ReceiveMessage"}}); err != nil {
			t.Fatal(err)
		}
		body := r.waitHealth(t, http.StatusServiceUnavailable)
		if !strings.Contains(body, "no SQS receive has succeeded") {
			t.Errorf("/healthz says %q: want the stalled receives named", body)
		}
		if err := proxy.SetFaults(local.Faults{}); err != nil {
			t.Fatal(err)
		}
		r.waitHealth(t, http.StatusOK)
		r.stop(t)
	})
}
