package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/palleto/palleto/internal/leaktest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(leaktest.Main(m)) }

var secret = []byte("app-secret")

// queue records what a Handler enqueues.
type queue struct {
	mu    sync.Mutex
	calls [][]string
	err   error // returned by every call when set
}

func (q *queue) enqueue(_ context.Context, ids []string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.calls = append(q.calls, slices.Clone(ids))
	return nil
}

func (q *queue) all() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ids []string
	for _, c := range q.calls {
		ids = append(ids, c...)
	}
	return ids
}

func newHandler(t *testing.T, cfg Config) (*Handler, *queue) {
	t.Helper()
	q := &queue{}
	if cfg.Secret == nil {
		cfg.Secret = secret
	}
	if cfg.Enqueue == nil {
		cfg.Enqueue = q.enqueue
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h, q
}

func post(h http.Handler, body, sig string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
	if sig != "" {
		r.Header.Set(SignatureHeader, sig)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func signed(h http.Handler, body string) *httptest.ResponseRecorder {
	return post(h, body, Sign(secret, []byte(body)))
}

func TestSignKnownVector(t *testing.T) {
	// RFC 4231, test case 2.
	got := Sign([]byte("Jefe"), []byte("what do ya want for nothing?"))
	if want := "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func TestChallenge(t *testing.T) {
	h, q := newHandler(t, Config{})
	for _, tc := range []struct {
		name, target string
		code         int
		body         string
	}{
		{"value", "/webhook?challenge=abc123", 200, "abc123"},
		{"escaped value", "/webhook?challenge=%3Cscript%3Ealert(1)%3C%2Fscript%3E", 200, "<script>alert(1)</script>"},
		{"with other params", "/webhook?x=1&challenge=z", 200, "z"},
		{"empty value", "/webhook?challenge=", 400, ""},
		{"no value", "/webhook?challenge", 400, ""},
		{"no challenge", "/webhook", 400, ""},
		{"other param", "/webhook?chall=abc", 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.target, nil))
			if w.Code != tc.code {
				t.Fatalf("code = %d, want %d", w.Code, tc.code)
			}
			if tc.code != 200 {
				return
			}
			if got := w.Body.String(); got != tc.body {
				t.Errorf("body = %q, want %q", got, tc.body)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type = %q, want text/plain", ct)
			}
			if got := w.Header().Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options = %q, want nosniff", got)
			}
		})
	}
	if ids := q.all(); len(ids) != 0 {
		t.Errorf("a GET enqueued %q", ids)
	}
}

const oneAccount = `{"list_folder":{"accounts":["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"]},"delta":{"users":[12345678]}}`

func TestSignature(t *testing.T) {
	good := Sign(secret, []byte(oneAccount))
	for _, tc := range []struct {
		name, sig string
		code      int
	}{
		{"right", good, 200},
		{"upper-case hex", strings.ToUpper(good), 200},
		{"mixed-case hex", strings.ToUpper(good[:32]) + good[32:], 200},
		{"missing", "", 403},
		{"other body", Sign(secret, []byte(oneAccount+" ")), 403},
		{"other secret", Sign([]byte("app-secret2"), []byte(oneAccount)), 403},
		{"last digit changed", good[:63] + flip(good[63]), 403},
		{"truncated by one", good[:63], 403},
		{"truncated to half", good[:32], 403},
		{"one digit too many", good + "0", 403},
		{"not hex", strings.Repeat("z", 64), 403},
		{"prefixed", "sha256=" + good, 403},
		{"space padded", " " + good[:63], 403},
		{"base64", "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM=", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, q := newHandler(t, Config{})
			w := post(h, oneAccount, tc.sig)
			if w.Code != tc.code {
				t.Fatalf("code = %d, want %d", w.Code, tc.code)
			}
			want := []string(nil)
			if tc.code == 200 {
				want = []string{"dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"}
			}
			if got := q.all(); !slices.Equal(got, want) {
				t.Errorf("enqueued %q, want %q", got, want)
			}
		})
	}
}

// flip returns a hex digit other than d.
func flip(d byte) string {
	if d == '0' {
		return "1"
	}
	return "0"
}

// padded returns a signed-worthy body of exactly n bytes naming one account.
func padded(t *testing.T, n int) string {
	t.Helper()
	const head, tail = `{"list_folder":{"accounts":["dbid:a"]},"pad":"`, `"}`
	if n < len(head)+len(tail) {
		t.Fatalf("cannot pad to %d bytes", n)
	}
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

func TestBodyLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxBody int64 // for Config
		limit   int   // effective
	}{
		{"default", 0, DefaultMaxBody},
		{"small", 100, 100},
	} {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s chunked=%v", tc.name, chunked), func(t *testing.T) {
				h, q := newHandler(t, Config{MaxBody: tc.maxBody})
				for _, n := range []int{tc.limit, tc.limit + 1} {
					body := padded(t, n)
					r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(body))
					if chunked {
						// Without a length, the limit is found while reading.
						r.ContentLength = -1
					}
					r.Header.Set(SignatureHeader, Sign(secret, []byte(body)))
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					want := http.StatusOK
					if n > tc.limit {
						want = http.StatusRequestEntityTooLarge
					}
					if w.Code != want {
						t.Errorf("%d-byte body: code = %d, want %d", n, w.Code, want)
					}
				}
				if got := q.all(); !slices.Equal(got, []string{"dbid:a"}) {
					t.Errorf("enqueued %q, want only the body at the limit's account", got)
				}
			})
		}
	}
}

func TestBodies(t *testing.T) {
	long := "dbid:" + strings.Repeat("a", MaxAccountIDLen-5)
	for _, tc := range []struct {
		name string
		body string
		code int
		want []string
	}{
		{"one account", oneAccount, 200, []string{"dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"}},
		{"without delta", `{"list_folder":{"accounts":["dbid:a","dbid:b"]}}`, 200, []string{"dbid:a", "dbid:b"}},
		{"duplicates once, in order", `{"list_folder":{"accounts":["dbid:b","dbid:a","dbid:b","dbid:a","dbid:c"]}}`, 200, []string{"dbid:b", "dbid:a", "dbid:c"}},
		{"empty list", `{"list_folder":{"accounts":[]},"delta":{"users":[]}}`, 200, nil},
		{"id of 256 bytes", `{"list_folder":{"accounts":["` + long + `"]}}`, 200, []string{long}},
		{"id of 1 byte", `{"list_folder":{"accounts":["x"]}}`, 200, []string{"x"}},
		{"unicode id", `{"list_folder":{"accounts":["dbid:ü日本"]}}`, 200, []string{"dbid:ü日本"}},
		{"escaped unicode id", `{"list_folder":{"accounts":["dbid:\u00fc"]}}`, 200, []string{"dbid:ü"}},
		{"unknown fields", `{"list_folder":{"accounts":["dbid:a"],"cursor":"c"},"extra":[1,2]}`, 200, []string{"dbid:a"}},

		{"not json", `list_folder`, 400, nil},
		{"empty body", ``, 400, nil},
		{"json null", `null`, 400, nil},
		{"json array", `[{"list_folder":{"accounts":["dbid:a"]}}]`, 400, nil},
		{"empty object", `{}`, 400, nil},
		{"no accounts", `{"list_folder":{}}`, 400, nil},
		{"null accounts", `{"list_folder":{"accounts":null}}`, 400, nil},
		{"accounts not a list", `{"list_folder":{"accounts":"dbid:a"}}`, 400, nil},
		{"list_folder not an object", `{"list_folder":["dbid:a"]}`, 400, nil},
		{"number id", `{"list_folder":{"accounts":["dbid:a",7]}}`, 400, nil},
		{"null id", `{"list_folder":{"accounts":["dbid:a",null]}}`, 400, nil},
		{"empty id", `{"list_folder":{"accounts":["dbid:a",""]}}`, 400, nil},
		{"id of 257 bytes", `{"list_folder":{"accounts":["dbid:a","` + long + `b"]}}`, 400, nil},
		{"newline in id", `{"list_folder":{"accounts":["dbid:a","dbid:\nb"]}}`, 400, nil},
		{"NUL in id", `{"list_folder":{"accounts":["dbid:\u0000"]}}`, 400, nil},
		{"DEL in id", "{\"list_folder\":{\"accounts\":[\"dbid:\x7f\"]}}", 400, nil},
		{"C1 control in id", `{"list_folder":{"accounts":["dbid:\u0085"]}}`, 400, nil},
		{"raw tab in id", "{\"list_folder\":{\"accounts\":[\"dbid:\tb\"]}}", 400, nil},
		{"invalid utf-8", "{\"list_folder\":{\"accounts\":[\"dbid:\xff\"]}}", 400, nil},
		{"trailing data", `{"list_folder":{"accounts":["dbid:a"]}}{}`, 400, nil},
		{"truncated", `{"list_folder":{"accounts":["dbid:a"]`, 400, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, q := newHandler(t, Config{})
			w := signed(h, tc.body)
			if w.Code != tc.code {
				t.Fatalf("code = %d, want %d (%s)", w.Code, tc.code, w.Body)
			}
			if got := q.all(); !slices.Equal(got, tc.want) {
				t.Errorf("enqueued %q, want %q", got, tc.want)
			}
			if tc.want == nil && len(q.calls) != 0 {
				t.Errorf("Enqueue called %d times, want none", len(q.calls))
			}
		})
	}
}

// records keeps the log records a Handler writes.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) errAttr(level slog.Level) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Level != level {
			continue
		}
		var found error
		rec.Attrs(func(a slog.Attr) bool {
			if e, ok := a.Value.Any().(error); ok {
				found = e
				return false
			}
			return true
		})
		if found != nil {
			return found
		}
	}
	return nil
}

func TestEnqueueFailure(t *testing.T) {
	logs := &records{}
	h, q := newHandler(t, Config{Logger: slog.New(logs)})
	errFull := errors.New("queue full")
	q.err = errFull
	w := signed(h, oneAccount)
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("code = %d, want 503", w.Code)
	}
	if err := logs.errAttr(slog.LevelError); !errors.Is(err, errFull) {
		t.Errorf("logged error %v, want %v", err, errFull)
	}
	q.err = nil
	if w := signed(h, oneAccount); w.Code != http.StatusOK {
		t.Errorf("retry: code = %d, want 200", w.Code)
	}
}

func TestEnqueueGetsRequestContext(t *testing.T) {
	type key struct{}
	var got any
	h, _ := newHandler(t, Config{Enqueue: func(ctx context.Context, ids []string) error {
		got = ctx.Value(key{})
		return nil
	}})
	r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(oneAccount))
	r = r.WithContext(context.WithValue(r.Context(), key{}, "request"))
	r.Header.Set(SignatureHeader, Sign(secret, []byte(oneAccount)))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || got != "request" {
		t.Errorf("code %d, context value %v; want 200 and the request's context", w.Code, got)
	}
}

func TestMethods(t *testing.T) {
	h, q := newHandler(t, Config{})
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead, http.MethodOptions, "BREW"} {
		r := httptest.NewRequest(m, "/webhook?challenge=x", strings.NewReader(oneAccount))
		r.Header.Set(SignatureHeader, Sign(secret, []byte(oneAccount)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s: code = %d, want 405", m, w.Code)
		}
		if got := w.Header().Get("Allow"); got != "GET, POST" {
			t.Errorf("%s: Allow = %q, want \"GET, POST\"", m, got)
		}
	}
	if ids := q.all(); len(ids) != 0 {
		t.Errorf("enqueued %q", ids)
	}
}

func TestStop(t *testing.T) {
	h, q := newHandler(t, Config{})
	if w := signed(h, oneAccount); w.Code != http.StatusOK {
		t.Fatalf("before Stop: code = %d, want 200", w.Code)
	}
	h.Stop()
	h.Stop() // again: no effect
	for _, r := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/webhook?challenge=abc", nil),
		httptest.NewRequest(http.MethodGet, "/webhook", nil),
		httptest.NewRequest(http.MethodPut, "/webhook", nil),
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s %s after Stop: code = %d, want 503", r.Method, r.URL, w.Code)
		}
	}
	for _, sig := range []string{Sign(secret, []byte(oneAccount)), "", "bad"} {
		if w := post(h, oneAccount, sig); w.Code != http.StatusServiceUnavailable {
			t.Errorf("POST after Stop (signature %q): code = %d, want 503", sig, w.Code)
		}
	}
	if got := len(q.all()); got != 1 {
		t.Errorf("%d accounts enqueued, want only the one before Stop", got)
	}
}

func TestNew(t *testing.T) {
	enq := func(context.Context, []string) error { return nil }
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"ok", Config{Secret: secret, Enqueue: enq}, nil},
		{"no secret", Config{Enqueue: enq}, ErrNoSecret},
		{"empty secret", Config{Secret: []byte{}, Enqueue: enq}, ErrNoSecret},
		{"no enqueue", Config{Secret: secret}, ErrNoEnqueue},
		{"negative max body", Config{Secret: secret, Enqueue: enq, MaxBody: -1}, ErrMaxBody},
	} {
		h, err := New(tc.cfg)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: New error = %v, want %v", tc.name, err, tc.want)
		}
		if (h == nil) != (tc.want != nil) {
			t.Errorf("%s: New handler = %v with error %v", tc.name, h, err)
		}
	}
}

func TestSecretCopied(t *testing.T) {
	s := []byte("app-secret")
	h, _ := newHandler(t, Config{Secret: s})
	s[0] = 'X'
	if w := signed(h, oneAccount); w.Code != http.StatusOK {
		t.Errorf("after the caller changed its slice: code = %d, want 200", w.Code)
	}
}

// TestConcurrent posts from many goroutines through a real server while the
// handler is stopped midway: every account answered 200 is enqueued exactly
// once, and none answered otherwise is.
func TestConcurrent(t *testing.T) {
	h, q := newHandler(t, Config{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := srv.Client()

	const workers, each = 16, 25
	var (
		mu       sync.Mutex
		accepted = map[string]int{}
		refused  = map[string]bool{}
		wg       sync.WaitGroup
	)
	for g := range workers {
		wg.Go(func() {
			for i := range each {
				if g == 0 && i == each/2 {
					h.Stop()
				}
				id := fmt.Sprintf("dbid:%d-%d", g, i)
				body := fmt.Sprintf(`{"list_folder":{"accounts":[%q,%q]}}`, id, id)
				req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set(SignatureHeader, Sign(secret, []byte(body)))
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				switch resp.StatusCode {
				case http.StatusOK:
					accepted[id]++
				case http.StatusServiceUnavailable:
					refused[id] = true
				default:
					t.Errorf("%s: code %d", id, resp.StatusCode)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	got := map[string]int{}
	for _, id := range q.all() {
		got[id]++
	}
	if len(accepted)+len(refused) != workers*each {
		t.Fatalf("%d accepted + %d refused, want %d answers", len(accepted), len(refused), workers*each)
	}
	if len(refused) == 0 {
		t.Errorf("no call refused after Stop")
	}
	for id, n := range accepted {
		if n != 1 || got[id] != 1 {
			t.Errorf("%s: answered 200 %d times, enqueued %d times; want 1 and 1", id, n, got[id])
		}
	}
	for id := range refused {
		if got[id] != 0 {
			t.Errorf("%s: answered 503 but enqueued", id)
		}
	}
	if len(got) != len(accepted) {
		t.Errorf("%d ids enqueued, %d accepted", len(got), len(accepted))
	}
}

// OnCall hears the outcome of every call, the way its answer tells it.
func TestOnCall(t *testing.T) {
	var mu sync.Mutex
	var got []string
	h, q := newHandler(t, Config{MaxBody: 200, OnCall: func(o string) {
		mu.Lock()
		got = append(got, o)
		mu.Unlock()
	}})
	signed(h, `{"list_folder":{"accounts":["dbid:a"]}}`)
	post(h, `{"list_folder":{"accounts":["dbid:a"]}}`, "00")
	signed(h, strings.Repeat(" ", 201))
	signed(h, `{"list_folder":{"accounts":[""]}}`)
	signed(h, `{"list_folder":{"accounts":[]}}`)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/webhook?challenge=x", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPut, "/webhook", nil))
	q.mu.Lock()
	q.err = errors.New("disk full")
	q.mu.Unlock()
	signed(h, `{"list_folder":{"accounts":["dbid:b"]}}`)
	h.Stop()
	signed(h, `{"list_folder":{"accounts":["dbid:b"]}}`)
	want := []string{OutcomeAccepted, OutcomeBadSignature, OutcomeTooLarge, OutcomeBadBody, OutcomeAccepted,
		OutcomeChallenge, OutcomeBadRequest, OutcomeUnavailable, OutcomeUnavailable}
	if !slices.Equal(got, want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
}
