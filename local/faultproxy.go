package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrBadTarget means ProxyConfig.Target is not an absolute http URL.
var ErrBadTarget = errors.New("local: bad proxy target")

// ProxyConfig configures a Proxy.
type ProxyConfig struct {
	// Target is the base URL of the server behind the proxy.
	Target string
	// Seed seeds the choice of faults; zero is a seed like any other.
	Seed uint64
	// Faults are the faults to start with.
	Faults Faults
	// Observe, if not nil, is called for each request that reached the
	// target, as NewInjector describes.
	Observe func(action string, reqBody, respBody []byte)
}

// Proxy is an HTTP reverse proxy on loopback that injects Faults between a
// client and another AWS endpoint (moto_server, fauxqs, AWS): the same
// Injector the embedded server applies to itself. Point the client's
// BaseEndpoint at URL.
type Proxy struct {
	*Injector
	url    string
	target *url.URL
	srv    *http.Server
	client *http.Client
	cancel context.CancelFunc
	served chan struct{}
	active sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// StartProxy starts a proxy on a free 127.0.0.1 port.
func StartProxy(cfg ProxyConfig) (*Proxy, error) {
	target, err := url.Parse(cfg.Target)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, fmt.Errorf("%w: %q", ErrBadTarget, cfg.Target)
	}
	p := &Proxy{
		target: target,
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
		served: make(chan struct{}),
	}
	p.Injector, err = NewInjector(http.HandlerFunc(p.forward), cfg.Seed, cfg.Faults, cfg.Observe)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("local: proxy: listen: %w", err)
	}
	p.url = "http://" + l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.active.Add(1)
			defer p.active.Done()
			p.Injector.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(l)
	}()
	return p, nil
}

// StartProxyT starts a proxy for a test and closes it when the test ends.
func StartProxyT(t testing.TB, cfg ProxyConfig) *Proxy {
	t.Helper()
	p, err := StartProxy(cfg)
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

// Close stops the proxy, ends requests in flight and waits for their
// handlers to return. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		p.closeErr = p.srv.Close()
		<-p.served
		p.active.Wait()
		p.client.CloseIdleConnections()
	})
	return p.closeErr
}

// forward sends the request to the target and passes its answer on.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request) {
	u := *p.target
	u.Path = strings.TrimSuffix(p.target.Path, "/") + r.URL.Path
	u.RawPath = ""
	if r.URL.RawPath != "" {
		u.RawPath = strings.TrimSuffix(p.target.EscapedPath(), "/") + r.URL.RawPath
	}
	u.RawQuery = r.URL.RawQuery
	// The whole body first: the target gets a Content-Length, as the
	// client sent it.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, "local: proxy: "+err.Error(), http.StatusBadGateway)
		return
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
		if r.Context().Err() == nil {
			http.Error(w, "local: proxy: "+err.Error(), http.StatusBadGateway)
		}
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		if !hopByHop(k) {
			h[k] = vs
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
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
