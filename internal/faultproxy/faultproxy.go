// Package faultproxy is an HTTP reverse proxy that injects faults between an
// AWS SDK client and a local AWS stand-in (moto, fauxqs), for reliability
// tests: server errors, throttling in the wire format of the protocol in use,
// added latency, and dropped or cut-off connections.
//
// Point the client's BaseEndpoint at URL. The faults can be changed while
// requests are in flight. Each request draws one number from a generator
// seeded by Config.Seed, so a client that sends its requests one at a time
// meets the same faults on every run.
package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Errors returned by Start and SetFaults.
var (
	// ErrBadFaults means a fraction is outside [0, 1], the fractions add
	// up to more than 1, or the latency is negative.
	ErrBadFaults = errors.New("faultproxy: bad faults")

	// ErrBadTarget means Config.Target is not an absolute http URL.
	ErrBadTarget = errors.New("faultproxy: bad target")
)

// Faults says which requests fail and how. The fractions are of requests
// (those named by Actions, if any) and are exclusive: at most one fault hits a
// request. The zero value injects nothing.
type Faults struct {
	// Error500 is the fraction answered 500 InternalFailure without reaching
	// the target.
	Error500 float64
	// Error503 is the fraction answered 503 ServiceUnavailable without
	// reaching the target.
	Error503 float64
	// Throttle is the fraction answered with the protocol's throttling error
	// without reaching the target: SQS's RequestThrottled (AWS JSON 1.0 or
	// query) or S3's 503 SlowDown.
	Throttle float64
	// Drop is the fraction whose connection is closed before the request
	// reaches the target: the client gets no answer at all.
	Drop float64
	// Truncate is the fraction that reaches the target, whose answer is cut
	// off half-way through the body by closing the connection: the target
	// acted, the client cannot know.
	Truncate float64
	// Latency is added before each request is handled. A client that gives
	// up meanwhile ends the wait.
	Latency time.Duration
	// Actions, if not empty, limits faults and latency to these actions
	// (see Counts for their names).
	Actions []string
}

// Validate reports whether f is usable; the error wraps ErrBadFaults.
func (f Faults) Validate() error {
	sum := 0.0
	for _, x := range []struct {
		name string
		v    float64
	}{{"Error500", f.Error500}, {"Error503", f.Error503}, {"Throttle", f.Throttle}, {"Drop", f.Drop}, {"Truncate", f.Truncate}} {
		if !(x.v >= 0 && x.v <= 1) { // also catches NaN
			return fmt.Errorf("%w: %s = %v, want a fraction in [0, 1]", ErrBadFaults, x.name, x.v)
		}
		sum += x.v
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("%w: fractions add up to %v, more than 1", ErrBadFaults, sum)
	}
	if f.Latency < 0 {
		return fmt.Errorf("%w: Latency = %v", ErrBadFaults, f.Latency)
	}
	return nil
}

// Config configures a Proxy.
type Config struct {
	// Target is the base URL of the server behind the proxy.
	Target string
	// Seed seeds the choice of faults; zero is a seed like any other.
	Seed uint64
	// Faults are the faults to start with.
	Faults Faults
	// Observe, if not nil, is called for each request that reached the
	// target, with the target's full answer (even when the client is then
	// sent only part of it), before the client gets anything. It is called
	// from many goroutines at once and must not keep the slices.
	Observe func(action string, reqBody, respBody []byte)
}

// Counts counts requests by what happened to them.
type Counts struct {
	Requests  int64 // all requests received
	Forwarded int64 // sent to the target (Truncated included)
	Error500  int64
	Error503  int64
	Throttled int64
	Dropped   int64
	Truncated int64
}

func (c *Counts) add(o Counts) {
	c.Requests += o.Requests
	c.Forwarded += o.Forwarded
	c.Error500 += o.Error500
	c.Error503 += o.Error503
	c.Throttled += o.Throttled
	c.Dropped += o.Dropped
	c.Truncated += o.Truncated
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	url     string
	target  *url.URL
	observe func(action string, reqBody, respBody []byte)
	srv     *http.Server
	client  *http.Client
	cancel  context.CancelFunc
	served  chan struct{}
	handler sync.WaitGroup

	mu     sync.Mutex
	rnd    *rand.Rand
	faults Faults
	counts map[string]*Counts

	closeOnce sync.Once
	closeErr  error
}

// Start starts a proxy on a free 127.0.0.1 port.
func Start(cfg Config) (*Proxy, error) {
	target, err := url.Parse(cfg.Target)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("%w: %q", ErrBadTarget, cfg.Target)
	}
	if err := cfg.Faults.Validate(); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		url:     "http://" + l.Addr().String(),
		target:  target,
		observe: cfg.Observe,
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:               nil,
				DisableCompression:  true, // pass bodies through as the target sent them
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     30 * time.Second,
			},
			// Redirects are the client's business.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		cancel: cancel,
		served: make(chan struct{}),
		rnd:    rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
		faults: cloneFaults(cfg.Faults),
		counts: map[string]*Counts{},
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serve),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(l)
	}()
	return p, nil
}

// StartT starts a proxy for a test and closes it when the test ends.
func StartT(t testing.TB, cfg Config) *Proxy {
	t.Helper()
	p, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// URL is the proxy's base URL, http://127.0.0.1:PORT.
func (p *Proxy) URL() string { return p.url }

// SetFaults replaces the faults; requests already past their draw keep the
// fault they drew.
func (p *Proxy) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	p.faults = cloneFaults(f)
	p.mu.Unlock()
	return nil
}

// Faults returns the faults in force.
func (p *Proxy) Faults() Faults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return cloneFaults(p.faults)
}

// Counts returns the counts so far by action. An SQS action is named as in
// its X-Amz-Target header or Action parameter ("ReceiveMessage"); an S3
// request is "S3." followed by the operation the SDK names in its x-id
// parameter ("S3.PutObject", "S3.GetObject") or else by the HTTP method
// ("S3.HEAD", "S3.GET").
func (p *Proxy) Counts() map[string]Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]Counts, len(p.counts))
	for k, v := range p.counts {
		m[k] = *v
	}
	return m
}

// Total returns the counts so far over all actions.
func (p *Proxy) Total() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	var t Counts
	for _, v := range p.counts {
		t.add(*v)
	}
	return t
}

// ResetCounts sets all counts to zero.
func (p *Proxy) ResetCounts() {
	p.mu.Lock()
	p.counts = map[string]*Counts{}
	p.mu.Unlock()
}

// Close stops the proxy, ends requests in flight and waits for their
// handlers to return. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		p.closeErr = p.srv.Close()
		<-p.served
		p.handler.Wait()
		p.client.CloseIdleConnections()
	})
	return p.closeErr
}

type fault int

const (
	none fault = iota
	error500
	error503
	throttle
	drop
	truncate
)

// draw picks the fate of one request and counts it.
func (p *Proxy) draw(action string) (fault, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts[action]
	if c == nil {
		c = &Counts{}
		p.counts[action] = c
	}
	c.Requests++
	f := p.faults
	if len(f.Actions) > 0 && !slices.Contains(f.Actions, action) {
		c.Forwarded++
		return none, 0
	}
	// One draw per request, faults or not, so that the sequence of fates
	// depends only on the seed and the order of requests.
	r := p.rnd.Float64()
	for _, x := range []struct {
		frac float64
		kind fault
		n    *int64
	}{
		{f.Drop, drop, &c.Dropped},
		{f.Truncate, truncate, &c.Truncated},
		{f.Error500, error500, &c.Error500},
		{f.Error503, error503, &c.Error503},
		{f.Throttle, throttle, &c.Throttled},
	} {
		if r < x.frac {
			*x.n++
			if x.kind == truncate {
				c.Forwarded++
			}
			return x.kind, f.Latency
		}
		r -= x.frac
	}
	c.Forwarded++
	return none, f.Latency
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	p.handler.Add(1)
	defer p.handler.Done()

	body, err := io.ReadAll(r.Body)
	if err != nil {
		// The client went away mid-request; there is no one to answer.
		return
	}
	proto, action := classify(r, body)
	kind, latency := p.draw(action)
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch kind {
	case drop:
		hangUp(w)
		return
	case error500, error503, throttle:
		writeFault(w, proto, kind)
		return
	}

	resp, respBody, err := p.forward(r, body)
	if err != nil {
		if r.Context().Err() == nil {
			http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		}
		return
	}
	if p.observe != nil {
		p.observe(action, body, respBody)
	}
	h := w.Header()
	for k, vs := range resp.Header {
		if !hopByHop(k) {
			h[k] = vs
		}
	}
	if kind == truncate && len(respBody) > 0 {
		// Announce the full length, send half, and hang up: the client
		// sees the answer begin and end too soon.
		h.Set("Content-Length", fmt.Sprint(len(respBody)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(respBody[:len(respBody)/2])
		_ = http.NewResponseController(w).Flush()
		hangUp(w)
		return
	}
	if kind == truncate {
		// Nothing to cut in an empty body: hang up before the headers.
		hangUp(w)
		return
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)
}

// forward sends the request to the target and reads the whole answer.
func (p *Proxy) forward(r *http.Request, body []byte) (*http.Response, []byte, error) {
	u := *p.target
	u.Path = strings.TrimSuffix(p.target.Path, "/") + r.URL.Path
	u.RawPath = ""
	if r.URL.RawPath != "" {
		u.RawPath = strings.TrimSuffix(p.target.EscapedPath(), "/") + r.URL.RawPath
	}
	u.RawQuery = r.URL.RawQuery
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range r.Header {
		if !hopByHop(k) {
			out.Header[k] = vs
		}
	}
	// The client signed the Host it sent to the proxy; keep it, so that a
	// target that checks signatures, or builds URLs from Host (moto's queue
	// URLs), sees what the client meant.
	out.Host = r.Host
	out.ContentLength = int64(len(body))
	resp, err := p.client.Do(out)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	return resp, b, nil
}

// hangUp closes the client's connection without a word more.
func hangUp(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): the server resets the stream instead.
		panic(http.ErrAbortHandler)
	}
	// An orderly close, as from a server that died after reading the
	// request: the client reads EOF, not a reset.
	_ = conn.Close()
}

// hopByHop reports whether a header belongs to one connection. Content-Length
// passes: the answer to a HEAD request has one and no body.
func hopByHop(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

func cloneFaults(f Faults) Faults {
	f.Actions = slices.Clone(f.Actions)
	return f
}
