package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/internal/leaktest"
	"github.com/palleto/palleto/jobs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(leaktest.Main(m)) }

// get makes a request to srv and returns the status and body.
func do(t *testing.T, srv *httptest.Server, method, path string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func newTestServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(cfg))
	t.Cleanup(srv.Close)
	return srv
}

func TestCheckAddr(t *testing.T) {
	for _, c := range []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8081", "", true},
		{"[::1]:8081", "", true},
		{"localhost:8081", "", true},
		{"127.0.0.2:0", "", true},
		{":8081", "", false}, // every interface
		{"0.0.0.0:8081", "", false},
		{"10.1.2.3:8081", "", false},
		{"0.0.0.0:8081", "s3cret", true},
		{"nonsense", "s3cret", false},
	} {
		err := CheckAddr(c.addr, c.token)
		if (err == nil) != c.ok {
			t.Errorf("CheckAddr(%q, %q) = %v, want ok=%v", c.addr, c.token, err, c.ok)
		}
		if !c.ok && c.addr != "nonsense" && !errors.Is(err, ErrNeedToken) {
			t.Errorf("CheckAddr(%q) = %v, want ErrNeedToken", c.addr, err)
		}
	}
}

// Without a token the listener answers only requests that name a loopback host: a page
// elsewhere that points a DNS name at 127.0.0.1 gets nothing.
func TestLoopbackHostOnly(t *testing.T) {
	srv := newTestServer(t, Config{Mode: ModeRun})
	if code, _, _ := do(t, srv, "GET", "/api/status", nil); code != 200 {
		t.Fatalf("GET /api/status from loopback = %d", code)
	}
	for _, host := range []string{"localhost:1234", "[::1]:80", "127.0.0.1"} {
		if code, _, _ := do(t, srv, "GET", "/healthz", map[string]string{"Host": host}); code != 200 {
			t.Errorf("Host %s: %d, want 200", host, code)
		}
	}
	if code, body, _ := do(t, srv, "GET", "/api/status", map[string]string{"Host": "rebound.example:8081"}); code != 403 || !strings.Contains(body, "loopback") {
		t.Fatalf("Host rebound.example: %d %q, want 403", code, body)
	}
}

// With a token every request needs it: as a bearer token, or as the cookie that /?token=
// sets (and then drops from the address).
func TestToken(t *testing.T) {
	srv := newTestServer(t, Config{Mode: ModeRun, Token: "s3cret"})
	for _, path := range []string{"/", "/api/snapshot", "/healthz", "/metrics", "/app.js"} {
		if code, _, h := do(t, srv, "GET", path, nil); code != 401 || h.Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s without the token = %d, want 401 with WWW-Authenticate", path, code)
		}
	}
	if code, _, _ := do(t, srv, "GET", "/api/status", map[string]string{"Authorization": "Bearer wrong"}); code != 401 {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if code, _, _ := do(t, srv, "GET", "/api/status", map[string]string{"Authorization": "Bearer s3cret"}); code != 200 {
		t.Errorf("bearer token: %d, want 200", code)
	}
	// A token is what protects a listener that is not on loopback: the Host does not matter.
	if code, _, _ := do(t, srv, "GET", "/api/status", map[string]string{"Authorization": "Bearer s3cret", "Host": "admin.example"}); code != 200 {
		t.Errorf("bearer token, another Host: %d, want 200", code)
	}
	if code, _, _ := do(t, srv, "GET", "/?token=wrong", nil); code != 401 {
		t.Errorf("/?token=wrong: %d, want 401", code)
	}
	code, _, h := do(t, srv, "GET", "/?token=s3cret", nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/" {
		t.Fatalf("/?token=s3cret: %d to %q, want 303 to /", code, h.Get("Location"))
	}
	cookie := h.Get("Set-Cookie")
	if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Fatalf("cookie %q, want HttpOnly and SameSite=Strict", cookie)
	}
	name, rest, _ := strings.Cut(cookie, "=")
	value, _, _ := strings.Cut(rest, ";")
	if code, body, _ := do(t, srv, "GET", "/", map[string]string{"Cookie": name + "=" + value}); code != 200 || !strings.Contains(body, "app.js") {
		t.Fatalf("GET / with the cookie: %d, want the page", code)
	}
}

// A mutation is a POST with RequestHeader, and from a browser with this server's Origin:
// neither a cross-site form nor a GET can make one.
func TestMutationsAreSafe(t *testing.T) {
	q, err := jobs.Open(jobs.Config{Memory: true, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	kill(t, q, "acct")
	srv := newTestServer(t, Config{Mode: ModeServe, Jobs: q})
	origin := srv.URL
	for _, c := range []struct {
		name   string
		method string
		hdr    map[string]string
		want   int
	}{
		{"GET", "GET", map[string]string{RequestHeader: "1"}, 404},
		{"no header", "POST", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 403},
		{"other origin", "POST", map[string]string{RequestHeader: "1", "Origin": "https://evil.example"}, 403},
		{"null origin", "POST", map[string]string{RequestHeader: "1", "Origin": "null"}, 403},
		{"same origin", "POST", map[string]string{RequestHeader: "1", "Origin": origin}, 200},
	} {
		code, body, _ := do(t, srv, c.method, "/api/jobs/acct/run", c.hdr)
		if code != c.want {
			t.Errorf("%s: %d %q, want %d", c.name, code, body, c.want)
		}
	}
	if in, _ := q.Info("acct"); in.State != jobs.StateQueued {
		t.Fatalf("after the one allowed run-now, acct is %s, want queued", in.State)
	}
}

// kill makes id a dead job of q (MaxAttempts 1).
func kill(t *testing.T, q *jobs.Queue, id string) {
	t.Helper()
	if err := q.Enqueue(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	msgs, err := q.Receive(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	q.Acknowledge([]flow.Result{{Token: msgs[0].Token, Status: flow.Failed, Err: fmt.Errorf("exit status 1")}})
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%v in %q", err, body)
	}
	return v
}

func TestJobsAPI(t *testing.T) {
	q, err := jobs.Open(jobs.Config{Memory: true, MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	kill(t, q, "dead one")
	kill(t, q, "dead two")
	if err := q.Enqueue(t.Context(), "busy"); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Receive(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, Config{Mode: ModeServe, Jobs: q, Counts: func(context.Context) (jobs.Counts, error) { return q.Counts(), nil }})
	post := map[string]string{RequestHeader: "1"}

	code, body, _ := do(t, srv, "GET", "/api/jobs?state=dead", nil)
	l := decode[JobList](t, body)
	if code != 200 || len(l.Jobs) != 2 || l.Jobs[0].ID != "dead one" || l.Jobs[0].LastError != "exit status 1" || l.Counts.Dead != 2 || l.Counts.Running != 1 {
		t.Fatalf("GET /api/jobs?state=dead = %d %+v", code, l)
	}
	if code, body, _ := do(t, srv, "GET", "/api/jobs?state=zombie", nil); code != 400 || !strings.Contains(body, "zombie") {
		t.Errorf("state=zombie: %d %q, want 400 naming it", code, body)
	}
	code, body, _ = do(t, srv, "GET", "/api/jobs/"+url.PathEscape("dead one"), nil)
	in := decode[jobs.Info](t, body)
	if code != 200 || in.State != jobs.StateDead || len(in.History) != 1 || in.History[0].Error != "exit status 1" {
		t.Fatalf("GET /api/jobs/dead one = %d %+v", code, in)
	}
	if code, _, _ := do(t, srv, "GET", "/api/jobs/nobody", nil); code != 404 {
		t.Errorf("GET unknown job: %d, want 404", code)
	}
	code, body, _ = do(t, srv, "POST", "/api/jobs/"+url.PathEscape("dead one")+"/run", post)
	if ch := decode[JobChange](t, body); code != 200 || ch.State != jobs.StateQueued {
		t.Fatalf("run now: %d %+v", code, ch)
	}
	if code, _, _ := do(t, srv, "POST", "/api/jobs/busy/delete", post); code != 409 {
		t.Errorf("delete a running job: %d, want 409", code)
	}
	code, body, _ = do(t, srv, "POST", "/api/jobs/"+url.PathEscape("dead two")+"/delete", post)
	if ch := decode[JobChange](t, body); code != 200 || !ch.Deleted {
		t.Fatalf("delete: %d %+v", code, ch)
	}
	if code, _, _ := do(t, srv, "POST", "/api/jobs/"+url.PathEscape("dead two")+"/delete", post); code != 404 {
		t.Errorf("delete twice: %d, want 404", code)
	}
	code, body, _ = do(t, srv, "GET", "/jobs", nil)
	if c := decode[jobs.Counts](t, body); code != 200 || c != (jobs.Counts{Queued: 1, Running: 1, Failed: 2}) {
		t.Fatalf("GET /jobs = %d %+v", code, c)
	}
	if code, body, _ := do(t, srv, "GET", "/api/jobs?state=retrying", nil); code != 200 || !strings.Contains(body, `"jobs":[]`) {
		t.Errorf("no job in a state: %d %s, want an empty list", code, body)
	}
	if code, body, _ := do(t, srv, "GET", "/api/status", nil); code != 200 || strings.Contains(body, "jobs_unlisted") || !strings.Contains(body, `"manage_jobs":true`) {
		t.Errorf("GET /api/status of a pool with its own queue = %d %s", code, body)
	}
	// Without a queue of its own (SQS), nothing to manage, and the list says why it is
	// empty whatever the counts.
	const why = "the jobs are messages in SQS, which cannot list them"
	srv2 := newTestServer(t, Config{Mode: ModeServe, Unlisted: why, Counts: func(context.Context) (jobs.Counts, error) { return jobs.Counts{Queued: 3, Dead: 1}, nil }})
	if code, _, _ := do(t, srv2, "POST", "/api/jobs/x/run", post); code != 404 {
		t.Errorf("run now without a queue: %d, want 404", code)
	}
	code, body, _ = do(t, srv2, "GET", "/api/jobs?state=dead", nil)
	if l := decode[JobList](t, body); code != 200 || l.Unlisted != why || len(l.Jobs) != 0 || l.Counts.Dead != 1 {
		t.Errorf("GET /api/jobs without a queue = %d %+v, want the counts and why the list is empty", code, l)
	}
	code, body, _ = do(t, srv2, "GET", "/api/status", nil)
	if st := decode[Status](t, body); code != 200 || st.JobsUnlisted != why || st.Manage {
		t.Errorf("GET /api/status without a queue = %d %+v", code, st)
	}
}

func TestHealth(t *testing.T) {
	var ok atomic.Bool
	srv := newTestServer(t, Config{Mode: ModeRun,
		Health: func() (bool, string) { return true, "" },
		Ready: func() (bool, string) {
			if ok.Load() {
				return true, ""
			}
			return false, "intake paused: results not writable"
		}})
	if code, _, _ := do(t, srv, "GET", "/healthz", nil); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, body, _ := do(t, srv, "GET", "/readyz", nil); code != 503 || !strings.Contains(body, "intake paused") {
		t.Errorf("/readyz = %d %q, want 503 with the reason", code, body)
	}
	ok.Store(true)
	if code, _, _ := do(t, srv, "GET", "/readyz", nil); code != 200 {
		t.Errorf("/readyz when ready = %d", code)
	}
}

// The page and its files are in the binary, with headers that keep it from being framed or
// loading anything from elsewhere.
func TestDashboardFiles(t *testing.T) {
	srv := newTestServer(t, Config{Mode: ModeRun})
	code, body, h := do(t, srv, "GET", "/", nil)
	if code != 200 || !strings.Contains(body, `<script src="app.js">`) {
		t.Fatalf("GET / = %d", code)
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	for _, f := range []string{"/app.js", "/style.css", "/logo.svg"} {
		if code, body, _ := do(t, srv, "GET", f, nil); code != 200 || len(body) < 100 {
			t.Errorf("GET %s = %d, %d bytes", f, code, len(body))
		}
	}
	for _, f := range []string{"/index.html", "/", "/app.js"} {
		_, body, _ := do(t, srv, "GET", f, nil)
		if strings.Contains(body, "http://") && !strings.Contains(body, "http://www.w3.org/2000/svg") || strings.Contains(body, "https://") {
			t.Errorf("%s refers to another site", f)
		}
	}
}

func TestStages(t *testing.T) {
	s := NewStages([]flow.StageInfo{
		{Name: "sqs", Kind: flow.KindSource, Workers: 1},
		{Name: "fetch", Kind: flow.KindStage, Input: "sqs", Workers: 2, MaxDemand: 1},
	})
	for _, e := range []flow.Event{
		{Stage: "sqs", Kind: flow.EventReceived, N: 5, Demand: 7},
		{Stage: "fetch", Worker: 0, Kind: flow.EventAsked, N: 1, Demand: 1},
		{Stage: "fetch", Worker: 1, Kind: flow.EventAsked, N: 1, Demand: 1},
		{Stage: "fetch", Worker: 0, Kind: flow.EventTaken, N: 1, Demand: 0},
		{Stage: "fetch", Worker: 1, Kind: flow.EventTaken, N: 1, Demand: 0},
		{Stage: "fetch", Worker: 0, Kind: flow.EventDone, N: 1, Busy: time.Second},
		{Stage: "fetch", Worker: 0, Kind: flow.EventAsked, N: 1, Demand: 1},
		{Stage: "late", Worker: 0, Kind: flow.EventFailed, N: 2, Busy: time.Second},
	} {
		s.Observe(e)
	}
	got := s.Snapshot()
	if len(got) != 3 {
		t.Fatalf("%d stages: %+v", len(got), got)
	}
	if g := got[0]; g.Name != "sqs" || g.Received != 5 || g.Demand != 7 || g.InFlight != 0 {
		t.Errorf("sqs: %+v", g)
	}
	if g := got[1]; g.Name != "fetch" || g.Done != 1 || g.InFlight != 1 || g.Demand != 1 || g.Busy != 1 || g.Workers != 2 {
		t.Errorf("fetch: %+v", g)
	}
	if g := got[2]; g.Name != "late" || g.Failed != 2 {
		t.Errorf("a stage missing from the topology: %+v", g)
	}
}

func TestFailuresRing(t *testing.T) {
	r := NewFailures(0)
	for i := range 150 {
		r.Add(Failure{MessageID: fmt.Sprint(i), Error: "boom"})
	}
	l, total := r.List()
	if total != 150 || len(l) != DefaultFailures || l[0].MessageID != "149" || l[99].MessageID != "50" || l[0].Time.IsZero() {
		t.Fatalf("total %d, %d kept, first %s, last %s", total, len(l), l[0].MessageID, l[len(l)-1].MessageID)
	}
	r = NewFailures(3)
	r.Add(Failure{MessageID: "a"})
	r.Add(Failure{MessageID: "b"})
	if l, _ := r.List(); len(l) != 2 || l[0].MessageID != "b" || l[1].MessageID != "a" {
		t.Fatalf("partly filled: %+v", l)
	}
}

type fakeQueue struct {
	mu     sync.Mutex
	stats  QueueStats
	depths int
}

func (f *fakeQueue) QueueStats() QueueStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func (f *fakeQueue) QueueDepth(context.Context) (QueueDepth, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.depths++
	return QueueDepth{Queue: Depth{Visible: 100 - f.depths}, DLQ: &Depth{Visible: 1}}, nil
}

// Run samples once a second: counters become rates, busy time a share of the workers'
// time; the queue's depth is read every five seconds. Each series keeps ten minutes.
func TestSampling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := NewStages([]flow.StageInfo{{Name: "write", Kind: flow.KindSink, Workers: 2, MaxDemand: 4}})
		fq := &fakeQueue{}
		srv := New(Config{Mode: ModeRun, Stages: st, Queue: fq})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.Run(ctx)
		}()
		time.Sleep(time.Second / 2) // between two samples
		for range 12 {
			time.Sleep(time.Second)
			// 10 items a second, one worker busy all the time out of two.
			st.Observe(flow.Event{Stage: "write", Kind: flow.EventDone, N: 10, Busy: time.Second})
			fq.mu.Lock()
			fq.stats.Received += 4
			fq.stats.Receives += 2
			fq.stats.EmptyReceives++
			fq.mu.Unlock()
		}
		time.Sleep(time.Second)
		stages := srv.stages()
		if r := stages[0].Rate; r != 10 {
			t.Errorf("rate %v, want 10", r)
		}
		if b := stages[0].BusyPercent; b != 50 {
			t.Errorf("busy %v%%, want 50", b)
		}
		q := srv.queue()
		if q.ReceivedRate != 4 || q.EmptyRate != 1 || q.Depth == nil || q.Depth.DLQ == nil {
			t.Errorf("queue %+v", q)
		}
		fq.mu.Lock()
		if fq.depths != 3 { // at 0, 5 and 10 s
			t.Errorf("depth read %d times in 13.5 s, want 3", fq.depths)
		}
		fq.mu.Unlock()
		all := srv.hist.since(0)
		if all.Seq != 14 || len(all.Times) != 14 || len(all.Values["stage:write:done"]) != 14 {
			t.Errorf("series: seq %d, %d times, %d values", all.Seq, len(all.Times), len(all.Values["stage:write:done"]))
		}
		if newer := srv.hist.since(12); len(newer.Times) != 2 || newer.Values["stage:write:done"][1] != 10 {
			t.Errorf("since 12: %+v", newer)
		}
		time.Sleep(HistoryLen * time.Second)
		if all := srv.hist.since(0); len(all.Times) != HistoryLen || all.Times[HistoryLen-1]-all.Times[0] != (HistoryLen-1)*1000 {
			t.Errorf("after ten minutes: %d samples over %d ms", len(all.Times), all.Times[len(all.Times)-1]-all.Times[0])
		}
		cancel()
		<-done
	})
}
