// Package admin is Palleto's admin listener: a live dashboard, the JSON API beneath it,
// Prometheus metrics and health checks, for `palleto run` and `palleto serve`.
//
// A [Server] is an http.Handler. It reads the running program through small interfaces that
// the program implements: the stage counts of its pipeline ([Stages], a flow.Observer), the
// counters and depth of its SQS queue ([QueueSource]), the latest failures ([Failures]) and,
// for the worker pool, its job queue ([Jobs]). [Server.Run] samples them once a second into
// rings of ten minutes, from which the page draws its charts.
//
// # Access
//
// The listener is meant for loopback: [CheckAddr] refuses any other address unless a token
// is set. With a token every request must carry it (Authorization: Bearer TOKEN, or the
// cookie that opening /?token=TOKEN sets). Without one, requests must name a loopback host,
// so that a web page cannot reach the API through a DNS name that points at 127.0.0.1.
// Mutations are POST only, and need the header X-Palleto-Request and, when the browser
// sends an Origin, one that is this server's: a cross-site form or script cannot make them.
//
// # API
//
//	GET  /                        the dashboard
//	GET  /api/snapshot?since=SEQ  all of the below in one answer (what the page polls)
//	GET  /api/status              mode, start time, health
//	GET  /api/stages              the pipeline's stages with their counts and rates
//	GET  /api/queue               the SQS queue: counters, rates, depth of it and its DLQ
//	GET  /api/failures            the latest failures, newest first
//	GET  /api/series?since=SEQ    samples of the last ten minutes, one a second
//	GET  /api/jobs?state=STATE    job counts, and the jobs in a state (all without state)
//	GET  /api/jobs/{id}           one job with the history of its failed runs
//	POST /api/jobs/{id}/run       run a retrying or dead job now
//	POST /api/jobs/{id}/delete    forget a job that is not running
//	GET  /jobs                    job counts, as the worker pool has always served them
//	GET  /metrics                 Prometheus metrics
//	GET  /healthz, /readyz        200 "ok", or 503 with the reason
//
// docs/admin.md describes each answer.
package admin

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/palleto/palleto/jobs"
)

// Modes of the dashboard.
const (
	ModeRun   = "run"   // an SQS → S3 pipeline
	ModeServe = "serve" // the webhook-fed worker pool
)

// RequestHeader must be set (to any value) on every POST: a browser sends it only from the
// dashboard's own scripts, never from a cross-site form or page.
const RequestHeader = "X-Palleto-Request"

// TokenEnv is the environment variable that holds the admin token.
const TokenEnv = "PALLETO_ADMIN_TOKEN"

const tokenCookie = "palleto_admin"

// How often Run samples.
const (
	sampleEvery = time.Second
	// depthEvery spaces the reads of the queue's depth and the job counts, which may be
	// requests to SQS.
	depthEvery  = 5 * time.Second
	readTimeout = 4 * time.Second
)

// ErrNeedToken is returned by CheckAddr for an address that is not loopback when no token
// is set.
var ErrNeedToken = errors.New("an admin listener on an address other than loopback needs a token (--admin-token or " + TokenEnv + ")")

// QueueSource is an SQS queue as the dashboard shows it.
type QueueSource interface {
	// QueueStats returns the source's counters; it is called every second and must not
	// make requests.
	QueueStats() QueueStats
	// QueueDepth asks SQS for the approximate counts of the queue and its dead-letter
	// queue; it is called every few seconds.
	QueueDepth(ctx context.Context) (QueueDepth, error)
}

// QueueStats are an SQS source's counters since it started.
type QueueStats struct {
	URL           string `json:"url"`
	Received      int64  `json:"received"`
	Deleted       int64  `json:"deleted"`
	Failed        int64  `json:"failed"`
	Released      int64  `json:"released"`
	DeadLettered  int64  `json:"dead_lettered"`
	Extended      int64  `json:"extended"`
	Receives      int64  `json:"receives"`       // ReceiveMessage requests
	EmptyReceives int64  `json:"empty_receives"` // of them, those that brought nothing
	Requests      int64  `json:"requests"`       // all requests
	RequestErrors int64  `json:"request_errors"`
	InFlight      int    `json:"in_flight"` // handed to the pipeline, not yet acknowledged
	Held          int    `json:"held"`      // received, not yet handed out
	Demand        int    `json:"demand"`    // asked for by waiting receives
}

// Depth is the approximate message counts of a queue.
type Depth struct {
	Visible  int `json:"visible"`
	InFlight int `json:"in_flight"`
	Delayed  int `json:"delayed"`
}

// QueueDepth is the depth of a queue and of its dead-letter queue, when it has one.
type QueueDepth struct {
	Queue  Depth  `json:"queue"`
	DLQURL string `json:"dlq_url,omitempty"`
	DLQ    *Depth `json:"dlq,omitempty"`
}

// Jobs is the embedded job queue as the dashboard manages it; *jobs.Queue implements it.
type Jobs interface {
	List(jobs.State) []jobs.Info
	Info(id string) (jobs.Info, error)
	RunNow(ctx context.Context, id string) (jobs.State, error)
	Delete(ctx context.Context, id string) error
}

// Config configures a Server. Every source may be nil: the page shows what it has.
type Config struct {
	Mode  string // ModeRun or ModeServe
	Title string // what runs: the queue URL, the data directory, …
	// Token, when set, must come with every request.
	Token    string
	Stages   *Stages
	Queue    QueueSource
	Failures *Failures
	Jobs     Jobs
	// Counts reads the job counts of the worker pool (GET /jobs); with SQS it is a request.
	Counts func(context.Context) (jobs.Counts, error)
	// Unlisted says why the jobs that Counts counts cannot be listed, for a pool without
	// Jobs (one on SQS): the page and GET /api/jobs say it where the list would be.
	Unlisted string
	// Health tells whether the program works; nil: always. Ready tells whether it takes
	// work; nil: as Health.
	Health func() (ok bool, reason string)
	Ready  func() (ok bool, reason string)
	// Metrics serves GET /metrics; nil: 404.
	Metrics http.Handler
	Logger  *slog.Logger
}

// A Server is the admin listener's handler. Create it with New; call Run to sample.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	hist    *history
	started time.Time
	log     *slog.Logger

	mu    sync.Mutex
	rates map[string]float64 // the latest sample of each series
	depth *QueueDepth
	dErr  string
	jobsN *jobs.Counts
}

//go:embed ui
var uiFiles embed.FS

// New returns the admin handler for cfg.
func New(cfg Config) *Server {
	s := &Server{cfg: cfg, mux: http.NewServeMux(), hist: newHistory(), started: time.Now(), log: cfg.Logger, rates: map[string]float64{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	ui, _ := fs.Sub(uiFiles, "ui")
	files := http.FileServerFS(ui)
	s.mux.Handle("GET /", files)
	s.mux.HandleFunc("GET /api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, r.Method+" "+r.URL.Path+": no such call (see docs/admin.md)")
	})
	s.mux.HandleFunc("GET /api/snapshot", s.snapshot)
	s.mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.status()) })
	s.mux.HandleFunc("GET /api/stages", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.stages()) })
	s.mux.HandleFunc("GET /api/queue", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.queue()) })
	s.mux.HandleFunc("GET /api/failures", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, s.failures()) })
	s.mux.HandleFunc("GET /api/series", func(w http.ResponseWriter, r *http.Request) {
		since, ok := sinceParam(w, r)
		if ok {
			writeJSON(w, s.hist.since(since))
		}
	})
	s.mux.HandleFunc("GET /api/jobs", s.listJobs)
	s.mux.HandleFunc("GET /api/jobs/{id}", s.jobInfo)
	s.mux.HandleFunc("POST /api/jobs/{id}/run", s.runJob)
	s.mux.HandleFunc("POST /api/jobs/{id}/delete", s.deleteJob)
	s.mux.HandleFunc("GET /jobs", func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Counts == nil {
			http.NotFound(w, r)
			return
		}
		c, err := s.cfg.Counts(r.Context())
		if err != nil {
			s.log.Warn("counting jobs", "err", err)
			http.Error(w, "cannot count jobs now", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, c)
	})
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := s.health()
		writeCheck(w, ok, why)
	})
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ok, why := s.ready()
		writeCheck(w, ok, why)
	})
	if cfg.Metrics != nil {
		s.mux.Handle("GET /metrics", cfg.Metrics)
	}
	return s
}

// ServeHTTP checks the request's right to the listener, then serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
	h.Set("Cache-Control", "no-store")
	if !s.allowed(w, r) {
		return
	}
	if r.Method == http.MethodPost && !sameOrigin(r) {
		http.Error(w, "admin: a POST needs the "+RequestHeader+" header and, from a browser, this server's origin", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// allowed checks the token, or without one that the request names a loopback host. It
// answers the request itself when it is refused, or when it only set the token's cookie.
func (s *Server) allowed(w http.ResponseWriter, r *http.Request) bool {
	tok := s.cfg.Token
	if tok == "" {
		if !loopbackHost(r.Host) {
			http.Error(w, "admin: the request's Host is not a loopback name; without a token the listener answers only to localhost", http.StatusForbidden)
			return false
		}
		return true
	}
	if q := r.URL.Query().Get("token"); q != "" && r.Method == http.MethodGet && r.URL.Path == "/" {
		if !equal(q, tok) {
			http.Error(w, "admin: wrong token", http.StatusUnauthorized)
			return false
		}
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: tok, Path: "/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"})
		http.Redirect(w, r, "/", http.StatusSeeOther) // out of the address bar and the history
		return false
	}
	if got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && equal(got, tok) {
		return true
	}
	if c, err := r.Cookie(tokenCookie); err == nil && equal(c.Value, tok) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="palleto admin"`)
	http.Error(w, "admin: a token is required (Authorization: Bearer TOKEN, or open /?token=TOKEN)", http.StatusUnauthorized)
	return false
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// sameOrigin tells whether a POST comes from this server's page or from a program: it must
// carry RequestHeader (which a cross-site request cannot send without a preflight that is
// never answered), and an Origin, if any, must be this host.
func sameOrigin(r *http.Request) bool {
	if r.Header.Get(RequestHeader) == "" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host == r.Host
}

// loopbackHost tells whether host (with or without a port) is localhost or a loopback IP.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckAddr reports whether the admin listener may listen on addr: a loopback address
// always, any other (an empty host included: every interface) only with a token.
func CheckAddr(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host != "" && loopbackHost(host) || token != "" {
		return nil
	}
	return fmt.Errorf("%s: %w", addr, ErrNeedToken)
}

// Loopback tells whether addr listens on loopback only.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && host != "" && loopbackHost(host)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		// Too late for a status: the client sees a cut answer.
		return
	}
}

// writeError answers a JSON error: {"error": "…"}.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func writeCheck(w http.ResponseWriter, ok bool, reason string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, reason+"\n")
		return
	}
	io.WriteString(w, "ok\n")
}

func sinceParam(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	v := r.URL.Query().Get("since")
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("since=%q: want a sample number", v))
		return 0, false
	}
	return n, true
}

func (s *Server) health() (bool, string) {
	if s.cfg.Health == nil {
		return true, ""
	}
	return s.cfg.Health()
}

func (s *Server) ready() (bool, string) {
	if s.cfg.Ready == nil {
		return s.health()
	}
	return s.cfg.Ready()
}
