package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/palleto/palleto/admin"
	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/jobs"
	"github.com/palleto/palleto/webhook"
)

const secret = "test-secret"

// server is a Serve running in the test.
type server struct {
	url   string       // the webhook listener
	admin string       // the admin listener
	stop  func() error // cancels Serve's context and returns its error
	logs  *syncBuffer
}

type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // closed and replaced on each write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wrote != nil {
		close(s.wrote)
		s.wrote = nil
	}
	return s.b.Write(p)
}

// waitFor waits, write by write, until a log record with the message msg is written.
func (s *syncBuffer) waitFor(t *testing.T, msg string) {
	t.Helper()
	s.waitForRecords(t, msg, 1)
}

// waitForRecords waits, write by write, until n log records with the message msg and the
// attributes kv (key, value, …; values compared as printed) are written.
func (s *syncBuffer) waitForRecords(t *testing.T, msg string, n int, kv ...string) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		s.mu.Lock()
		if s.wrote == nil {
			s.wrote = make(chan struct{})
		}
		wrote := s.wrote
		s.mu.Unlock()
		got := 0
		for _, r := range s.records(t, msg) {
			match := true
			for i := 0; i+1 < len(kv); i += 2 {
				match = match && fmt.Sprint(r[kv[i]]) == kv[i+1]
			}
			if match {
				got++
			}
		}
		if got >= n {
			return
		}
		select {
		case <-wrote:
		case <-timeout:
			t.Fatalf("%d of %d log records %q %v within a minute", got, n, msg, kv)
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// records returns the JSON log records with the given message.
func (s *syncBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(s.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

func startServe(t *testing.T, cfg app.ServeConfig) *server {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.WebhookSecret = secret
	addr := make(chan string, 1)
	cfg.Ready = func(a string) { addr <- a }
	cfg.AdminListen = "127.0.0.1:0"
	adminAddr := make(chan string, 1)
	cfg.AdminReady = func(a string) { adminAddr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, cfg) }()
	s := &server{logs: logs}
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
		})
		return stopErr
	}
	select {
	case a := <-addr:
		s.url = "http://" + a
		s.admin = "http://" + <-adminAddr
	case err := <-done:
		cancel()
		t.Fatalf("Serve ended before listening: %v", err)
	}
	t.Cleanup(func() { s.stop() })
	return s
}

// stopCounts stops s and returns the counts it logged once stopped: by then every job it
// took has ended and its outcome is counted, which GET /jobs cannot promise while it runs.
func (s *server) stopCounts(t *testing.T) jobs.Counts {
	t.Helper()
	if err := s.stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	rs := s.logs.records(t, "stopped")
	if len(rs) != 1 {
		t.Fatalf("%d log records \"stopped\", want 1", len(rs))
	}
	n := func(k string) int {
		v, ok := rs[0][k].(float64)
		if !ok {
			t.Fatalf("the \"stopped\" record has no count %q: %v", k, rs[0])
		}
		return int(v)
	}
	return jobs.Counts{Queued: n("queued"), Done: n("done"), Failed: n("failed"), Dead: n("dead")}
}

func notification(ids ...string) []byte {
	b, _ := json.Marshal(map[string]any{"list_folder": map[string]any{"accounts": ids}, "delta": map[string]any{"users": []int{1}}})
	return b
}

func post(c *http.Client, url string, ids ...string) (int, error) {
	body := notification(ids...)
	req, err := http.NewRequest(http.MethodPost, url+"/webhook", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(secret), body))
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func mustPost(t *testing.T, url string, ids ...string) {
	t.Helper()
	code, err := post(http.DefaultClient, url, ids...)
	if err != nil || code != http.StatusOK {
		t.Fatalf("POST /webhook %v: %d, %v", ids, code, err)
	}
}

func counts(t *testing.T, url string) jobs.Counts {
	t.Helper()
	resp, err := http.Get(url + "/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c jobs.Counts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// recorder is a Handler that records runs and can hold them.
type recorder struct {
	mu   sync.Mutex
	runs []jobs.Job
	ran  chan jobs.Job
	hold chan struct{} // when non-nil, runs wait for it to close
}

func newRecorder(hold bool) *recorder {
	r := &recorder{ran: make(chan jobs.Job, 100000)}
	if hold {
		r.hold = make(chan struct{})
	}
	return r
}

func (r *recorder) handle(ctx context.Context, j jobs.Job) error {
	r.mu.Lock()
	r.runs = append(r.runs, j)
	r.mu.Unlock()
	r.ran <- j
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (r *recorder) wait(t *testing.T, n int) []jobs.Job {
	t.Helper()
	var got []jobs.Job
	timeout := time.After(time.Minute)
	for len(got) < n {
		select {
		case j := <-r.ran:
			got = append(got, j)
		case <-timeout:
			t.Fatalf("%d of %d jobs ran", len(got), n)
		}
	}
	return got
}

func TestServeRoutes(t *testing.T) {
	rec := newRecorder(true)
	s := startServe(t, app.ServeConfig{Memory: true, Workers: 2, Handler: rec.handle})

	resp, err := http.Get(s.url + "/webhook?challenge=abc")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "abc" {
		t.Fatalf("challenge: %d %q", resp.StatusCode, b)
	}
	resp, err = http.Get(s.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}

	mustPost(t, s.url, "a", "b", "c")
	rec.wait(t, 2)
	if c := counts(t, s.admin); c != (jobs.Counts{Queued: 1, Running: 2}) {
		t.Fatalf("GET /jobs with two workers busy = %+v", c)
	}
	mustPost(t, s.url, "a") // running: queued again
	if c := counts(t, s.admin); c.Queued != 2 {
		t.Fatalf("after posting a running id, GET /jobs = %+v", c)
	}
	close(rec.hold)
	rec.wait(t, 2) // c, and a again: all four have started, and none is held
	if c := s.stopCounts(t); c != (jobs.Counts{Done: 4}) {
		t.Fatalf("counts at the end = %+v, want the four runs done", c)
	}
}

// TestServeShutdown: after the stop signal, webhook calls get 503 while running jobs finish;
// a job still running when the shutdown timeout ends is stopped and stays queued.
func TestServeShutdown(t *testing.T) {
	dir := t.TempDir()
	rec := newRecorder(true)
	s := startServe(t, app.ServeConfig{DataDir: dir, Workers: 1, Handler: rec.handle, ShutdownTimeout: 200 * time.Millisecond})
	mustPost(t, s.url, "a", "b")
	rec.wait(t, 1)

	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	// The shutdown is logged once the webhook is closed: from then on it must refuse.
	s.logs.waitFor(t, "shutting down: webhook closed, waiting for running jobs")
	if code, err := post(http.DefaultClient, s.url, "c"); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("webhook during the shutdown: %d, %v; want 503", code, err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Serve after a shutdown: %v", err)
	}
	if runs := len(rec.runs); runs != 1 {
		t.Fatalf("%d jobs ran; only a had started", runs)
	}
	q, err := jobs.Open(jobs.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if c := q.Counts(); c.Queued < 2 || c.Queued > 3 {
		t.Fatalf("after the shutdown the queue holds %+v; want a (stopped) and b, maybe c", c)
	}
}

func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "job.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeExec runs jobs as processes: the id as the last argument and in PALLETO_JOB_ID,
// output logged line by line with the job id, exit status 0 as success.
func TestServeExec(t *testing.T) {
	sh := script(t, `echo "arg=$2 env=$PALLETO_JOB_ID first=$1"
printf 'two\nlines\n' >&2
printf 'no newline'
[ "$2" = ok ] || exit 3
`)
	s := startServe(t, app.ServeConfig{Memory: true, Workers: 1, Exec: []string{sh, "x y"}, MaxAttempts: 1})
	mustPost(t, s.url, "ok", "bad")
	s.logs.waitForRecords(t, "job done", 1, "job", "ok")
	s.logs.waitForRecords(t, "job failed", 1, "job", "bad")
	if c := s.stopCounts(t); c != (jobs.Counts{Done: 1, Failed: 1, Dead: 1}) {
		t.Fatalf("counts = %+v; want ok done and bad dead", c)
	}
	var got []string
	for _, r := range s.logs.records(t, "job output") {
		got = append(got, fmt.Sprint(r["job"], " ", r["stream"], " ", r["line"]))
	}
	slices.Sort(got)
	want := []string{
		"bad stderr lines", "bad stderr two", "bad stdout arg=bad env=bad first=x y", "bad stdout no newline",
		"ok stderr lines", "ok stderr two", "ok stdout arg=ok env=ok first=x y", "ok stdout no newline",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("job output logged as\n%q\nwant\n%q", got, want)
	}
	failed := s.logs.records(t, "job failed")
	if len(failed) != 1 || failed[0]["job"] != "bad" || !strings.Contains(fmt.Sprint(failed[0]["err"]), "exit status 3") ||
		!strings.HasPrefix(fmt.Sprint(failed[0]["next"]), "dead") || fmt.Sprint(failed[0]["attempt"]) != "1" {
		t.Fatalf("job failed records: %v; want one, for bad, attempt 1, next: dead", failed)
	}
	if rt := s.logs.records(t, "failed 1"); len(rt) != 0 {
		t.Fatalf("the runtime's count of the failure reached the info log: %v", rt)
	}
}

// TestServeStopsProcessGroups: a job that outlives the shutdown timeout gets SIGTERM in its
// whole process group; one that ignores it gets SIGKILL; both stay queued.
func TestServeStopsProcessGroups(t *testing.T) {
	dir := t.TempDir()
	pids := t.TempDir()
	// The stubborn job ignores SIGTERM before it starts its child, which inherits that: only
	// a SIGKILL to the whole group ends the child.
	sh := script(t, `
if [ "$1" = stubborn ]; then trap '' TERM; fi
/bin/sleep 600 &
echo $! > "`+pids+`/$1.child"
if [ "$1" != stubborn ]; then trap 'echo term > "`+pids+`/$1.term"; kill $!; exit 1' TERM; fi
echo $$ > "`+pids+`/$1.pid"
echo started
while :; do wait; done
`)
	s := startServe(t, app.ServeConfig{DataDir: dir, Workers: 2, Exec: []string{sh}, ShutdownTimeout: 100 * time.Millisecond, KillDelay: 300 * time.Millisecond})
	mustPost(t, s.url, "polite", "stubborn")
	// Each job says it has started once its traps are set and its pid files written.
	s.logs.waitForRecords(t, "job output", 2, "line", "started")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(pids, "polite.term")); err != nil {
		t.Fatalf("the polite job did not get SIGTERM: %v", err)
	}
	for _, f := range []string{"polite.pid", "polite.child", "stubborn.pid", "stubborn.child"} {
		pid := readPid(t, filepath.Join(pids, f))
		if !ended(t, pid, 10*time.Second) {
			t.Errorf("process %s (%d) is still running after the shutdown", f, pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if strings.Count(s.logs.String(), "SIGKILL to its process group") != 1 {
		t.Errorf("want one SIGKILL, for the stubborn job; logs:\n%s", s.logs)
	}
	q, err := jobs.Open(jobs.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if c := q.Counts(); c.Queued != 2 || c.Dead != 0 {
		t.Fatalf("after the shutdown the queue holds %+v; want both jobs queued", c)
	}
}

func readPid(t *testing.T, p string) int {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return pid
}

func TestServeConfigErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	handler := func(context.Context, jobs.Job) error { return nil }
	for _, c := range []struct {
		cfg  app.ServeConfig
		flag string
	}{
		{app.ServeConfig{Memory: true, Handler: handler}, "webhook-secret"},
		{app.ServeConfig{WebhookSecret: "s", Memory: true}, "exec"},
		{app.ServeConfig{WebhookSecret: "s", Memory: true, Handler: handler, Workers: -1}, "workers"},
		{app.ServeConfig{WebhookSecret: "s", Memory: true, Handler: handler, MaxAttempts: -2}, "max-attempts"},
		{app.ServeConfig{WebhookSecret: "s", Memory: true, Handler: handler, Listen: taken.Addr().String()}, "listen"},
		{app.ServeConfig{WebhookSecret: "s", DataDir: "/dev/null/x", Handler: handler, Listen: "127.0.0.1:0"}, "data-dir"},
	} {
		err := app.Serve(t.Context(), c.cfg)
		ce, ok := errors.AsType[*app.ConfigError](err)
		if !ok || ce.Flag != c.flag {
			t.Errorf("Serve(%+v) = %v, want a ConfigError for --%s", c.cfg, err, c.flag)
		}
	}
}

// TestServeLoad: 10,000 webhook calls over 64 connections at once are all answered 200, and
// every job they name runs exactly once.
func TestServeLoad(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "durable"}[durable], func(t *testing.T) {
			const calls, conns = 10000, 64
			rec := newRecorder(false)
			cfg := app.ServeConfig{Memory: !durable, Workers: 4, Handler: rec.handle, Logger: slog.New(slog.DiscardHandler)}
			if durable {
				cfg.DataDir = t.TempDir()
			}
			s := startServe(t, cfg)
			res := load(t, s.url, calls, conns)
			if res.ok != calls {
				t.Fatalf("%d of %d calls answered 200 (%d errors, codes %v)", res.ok, calls, res.errs, res.codes)
			}
			rec.wait(t, calls)
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, j := range rec.runs {
				seen[j.ID]++
			}
			for id, n := range seen {
				if n != 1 {
					t.Fatalf("job %s ran %d times", id, n)
				}
			}
			if len(seen) != calls {
				t.Fatalf("%d distinct jobs ran, want %d", len(seen), calls)
			}
			t.Logf("%d calls in %v: %.0f calls/s", calls, res.took, float64(calls)/res.took.Seconds())
		})
	}
}

type loadResult struct {
	ok, errs int
	codes    map[int]int
	took     time.Duration
}

// load posts calls webhook notifications, one new id each, over conns connections at once.
func load(t *testing.T, url string, calls, conns int) loadResult {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: time.Minute}
	var next atomic.Int64
	var mu sync.Mutex
	res := loadResult{codes: map[int]int{}}
	start := time.Now()
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(calls) {
					return
				}
				code, err := post(c, url, fmt.Sprint("dbid:", i))
				mu.Lock()
				switch {
				case err != nil:
					res.errs++
				case code == http.StatusOK:
					res.ok++
				default:
					res.codes[code]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.took = time.Since(start)
	return res
}

// TestServeSQS: two servers on one SQS queue share the work, and every job runs.
func TestServeSQS(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		q, err := moto.CreateQueue(t.Context(), srv.SQS(), fmt.Sprint("serve-", time.Now().UnixNano()), moto.QueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		awsCfg := srv.Config("")
		recs := []*recorder{newRecorder(true), newRecorder(true)}
		var servers []*server
		for _, rec := range recs {
			servers = append(servers, startServe(t, app.ServeConfig{QueueURL: q.URL, AWS: &awsCfg, Workers: 1, Handler: rec.handle}))
		}
		// One worker each, both jobs held: each server must have taken one.
		mustPost(t, servers[0].url, "first", "second")
		a, b := recs[0].wait(t, 1)[0], recs[1].wait(t, 1)[0]
		ids := []string{a.ID, b.ID}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"first", "second"}) || a.Attempt != 1 {
			t.Fatalf("the two servers ran %v and %v", a, b)
		}
		for _, rec := range recs {
			close(rec.hold)
		}
		var want []string
		for i := range 20 {
			id := fmt.Sprint("job-", i)
			want = append(want, id)
			mustPost(t, servers[i%2].url, id)
		}
		// SQS delivers at least once: a job may run twice, but every job must run.
		seen := map[string]bool{}
		timeout := time.After(time.Minute)
		for len(seen) < len(want) {
			select {
			case j := <-recs[0].ran:
				seen[j.ID] = true
			case j := <-recs[1].ran:
				seen[j.ID] = true
			case <-timeout:
				t.Fatalf("%d of %d jobs ran", len(seen), len(want))
			}
		}
		got := slices.Collect(maps.Keys(seen))
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("jobs run: %v, want %v", got, want)
		}
		for _, s := range servers {
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// On a FIFO queue the jobs of one id run one at a time and in order, and every post is a job
// (none merged by SQS's deduplication).
func TestServeSQSFIFO(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		q, err := moto.CreateQueue(t.Context(), srv.SQS(), fmt.Sprint("serve-", time.Now().UnixNano()), moto.QueueOptions{FIFO: true})
		if err != nil {
			t.Fatal(err)
		}
		awsCfg := srv.Config("")
		var mu sync.Mutex
		running := map[string]bool{}
		var overlap []string
		ran := make(chan string, 100)
		// moto decides which groups are busy when a long poll starts, and keeps to it until the
		// poll ends: short polls keep a job from waiting for a poll that began while its group
		// was busy.
		s := startServe(t, app.ServeConfig{QueueURL: q.URL, WaitTime: time.Second, AWS: &awsCfg, Workers: 3, Handler: func(_ context.Context, j jobs.Job) error {
			mu.Lock()
			if running[j.ID] {
				overlap = append(overlap, j.ID)
			}
			running[j.ID] = true
			mu.Unlock()
			// A window for the wrong outcome to show: while this run lasts, a second job of
			// the same id must not start on the other workers. No event marks a start that
			// must not happen, so the window is a fixed, short time.
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			running[j.ID] = false
			mu.Unlock()
			ran <- j.ID
			return nil
		}})
		mustPost(t, s.url, "a", "b", "a") // one post names an id once: a job for a, one for b
		mustPost(t, s.url, "a")
		mustPost(t, s.url, "a")
		got := map[string]int{}
		timeout := time.After(time.Minute)
		for n := 0; n < 4; n++ {
			select {
			case id := <-ran:
				got[id]++
			case <-timeout:
				t.Fatalf("jobs run: %v, want a three times and b once", got)
			}
		}
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}
		if got["a"] < 3 || got["b"] < 1 {
			t.Fatalf("jobs run: %v, want a three times and b once", got)
		}
		if len(overlap) > 0 {
			t.Fatalf("jobs of one id ran at once: %v", overlap)
		}
	})
}

// In SQS mode a job that the queue's redrive policy moved to the dead-letter queue counts as
// dead in GET /jobs.
func TestServeSQSDeadJobs(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		q, err := moto.CreateQueue(t.Context(), srv.SQS(), fmt.Sprint("serve-", time.Now().UnixNano()), moto.QueueOptions{MaxReceiveCount: 1})
		if err != nil {
			t.Fatal(err)
		}
		awsCfg := srv.Config("")
		s := startServe(t, app.ServeConfig{QueueURL: q.URL, WaitTime: time.Second, AWS: &awsCfg, Workers: 2, Handler: func(_ context.Context, j jobs.Job) error {
			if j.ID == "bad" {
				return errors.New("always fails")
			}
			return nil
		}})
		mustPost(t, s.url, "good", "bad")
		// The move to the dead-letter queue is SQS's, seen only in its approximate counts:
		// no event tells when they settle, so they are polled, for a minute at most.
		deadline := time.Now().Add(time.Minute)
		var c jobs.Counts
		for {
			c = counts(t, s.admin)
			// The counts of an SQS queue are approximate and settle a moment after a
			// move to the dead-letter queue: wait for all of them, not just the first.
			if c.Dead == 1 && c.Done >= 1 && c.Failed >= 1 && c.Queued == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		fl := getJSON[admin.FailureList](t, s.admin+"/api/failures")
		if err := s.stop(); err != nil {
			t.Fatal(err)
		}
		if c.Dead != 1 || c.Done < 1 || c.Failed < 1 || c.Queued != 0 {
			t.Fatalf("GET /jobs = %+v; want the bad job dead, the good one done", c)
		}
		// The queue's redrive policy, read at start-up, says what comes next.
		if len(fl.Failures) == 0 || fl.Failures[0].JobID != "bad" || fl.Failures[0].Next != "dead-lettered by the queue's redrive policy (receive 1 of 1)" {
			t.Errorf("failures %+v; want the bad job's, dead-lettered", fl.Failures)
		}
	})
}
