// Package webhook receives Dropbox webhook calls and hands the accounts they
// name to a job queue.
//
// Dropbox first checks an endpoint with GET ?challenge=X and expects X back.
// It then POSTs a JSON body, {"list_folder":{"accounts":["dbid:…",…]},
// "delta":{…}}, for every change, signed in the X-Dropbox-Signature header
// with the hex HMAC-SHA256 of the raw body under the app secret. It wants an
// answer within seconds and retries a call that fails, so Handler only
// verifies, parses and enqueues: the work itself runs later, from the queue.
//
// Answers:
//
//	GET ?challenge=X  200, X as text/plain with X-Content-Type-Options: nosniff
//	GET otherwise     400
//	POST              200 once every account is enqueued (duplicates within a
//	                  body once; an empty list enqueues nothing)
//	                  413 body larger than Config.MaxBody
//	                  403 signature missing, malformed or wrong
//	                  400 signed body that is not the expected JSON, or that
//	                      names an account id of 0 or more than 256 bytes or
//	                      with control characters (nothing is enqueued)
//	                  503 Config.Enqueue failed: Dropbox will retry
//	other methods     405 with Allow: GET, POST
//	after Stop        503, whatever the request
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"unicode"
	"unicode/utf8"
)

// DefaultMaxBody is the body limit when Config.MaxBody is zero. Dropbox
// bodies list changed accounts and are far smaller.
const DefaultMaxBody = 1 << 20

// MaxAccountIDLen is the longest account id accepted, in bytes.
const MaxAccountIDLen = 256

// SignatureHeader carries the body's signature.
const SignatureHeader = "X-Dropbox-Signature"

// Errors returned by Config.Validate and New.
var (
	ErrNoSecret  = errors.New("webhook: no app secret")
	ErrNoEnqueue = errors.New("webhook: no Enqueue function")
	ErrMaxBody   = errors.New("webhook: negative MaxBody")
)

// Config configures a Handler.
type Config struct {
	// Secret is the Dropbox app secret that signs the bodies. Required.
	Secret []byte
	// Enqueue queues one job per account id; ids are distinct and valid.
	// It runs within the request, so it should be quick (a durable queue
	// returns once the jobs are stored). An error answers 503, so that
	// Dropbox retries the call. Required.
	Enqueue func(ctx context.Context, ids []string) error
	// MaxBody limits POST bodies, in bytes; zero means DefaultMaxBody.
	MaxBody int64
	// Logger receives refused and failed calls; nil discards.
	Logger *slog.Logger
	// OnCall, when set, is told the outcome of every call (one of the Outcome
	// constants), for metrics.
	OnCall func(outcome string)
}

// Outcomes of a call, as Config.OnCall hears them.
const (
	OutcomeAccepted     = "accepted"      // POST: every account queued (or none named)
	OutcomeChallenge    = "challenge"     // GET ?challenge= answered
	OutcomeBadSignature = "bad_signature" // 403
	OutcomeTooLarge     = "too_large"     // 413
	OutcomeBadBody      = "bad_body"      // 400: not the expected JSON, or unreadable
	OutcomeBadRequest   = "bad_request"   // 400 GET without challenge, 405 other methods
	OutcomeUnavailable  = "unavailable"   // 503: Enqueue failed, or after Stop
)

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	switch {
	case len(c.Secret) == 0:
		return ErrNoSecret
	case c.Enqueue == nil:
		return ErrNoEnqueue
	case c.MaxBody < 0:
		return ErrMaxBody
	}
	return nil
}

// Handler is the webhook endpoint. It is safe for concurrent use.
type Handler struct {
	secret  []byte
	enqueue func(context.Context, []string) error
	maxBody int64
	log     *slog.Logger
	onCall  func(string)
	stopped atomic.Bool
}

// New returns a Handler for cfg, or the error of cfg.Validate.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Handler{
		secret:  append([]byte(nil), cfg.Secret...),
		enqueue: cfg.Enqueue,
		maxBody: cfg.MaxBody,
		log:     cfg.Logger,
		onCall:  cfg.OnCall,
	}
	if h.onCall == nil {
		h.onCall = func(string) {}
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBody
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// Stop makes every later call answer 503 Service Unavailable, so that Dropbox
// keeps its notifications for later while the process shuts down. Calls
// already past the check still finish. Stop cannot be undone.
func (h *Handler) Stop() { h.stopped.Store(true) }

// Sign returns the signature of body under secret, as Dropbox puts it in
// the X-Dropbox-Signature header: hex of the HMAC-SHA256, lower case.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ServeHTTP answers one webhook call.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.stopped.Load() {
		h.onCall(OutcomeUnavailable)
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	switch r.Method {
	case http.MethodGet:
		h.onCall(h.challenge(w, r))
	case http.MethodPost:
		h.onCall(h.notify(w, r))
	default:
		h.onCall(OutcomeBadRequest)
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (h *Handler) challenge(w http.ResponseWriter, r *http.Request) (outcome string) {
	c := r.URL.Query().Get("challenge")
	if c == "" {
		http.Error(w, "missing challenge", http.StatusBadRequest)
		return OutcomeBadRequest
	}
	// The challenge is echoed as is; nosniff keeps a browser from reading it
	// as anything but text.
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	io.WriteString(w, c)
	return OutcomeChallenge
}

// body is the part of a notification that Handler reads.
type body struct {
	ListFolder *struct {
		Accounts *[]string `json:"accounts"`
	} `json:"list_folder"`
}

func (h *Handler) notify(w http.ResponseWriter, r *http.Request) (outcome string) {
	if r.ContentLength > h.maxBody {
		http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
		return OutcomeTooLarge
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return OutcomeTooLarge
		}
		h.log.Warn("webhook: reading body", "remote", r.RemoteAddr, "err", err)
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return OutcomeBadBody
	}
	if !h.verify(r.Header.Get(SignatureHeader), raw) {
		h.log.Warn("webhook: bad signature", "remote", r.RemoteAddr, "present", r.Header.Get(SignatureHeader) != "")
		http.Error(w, "bad signature", http.StatusForbidden)
		return OutcomeBadSignature
	}
	ids, err := accounts(raw)
	if err != nil {
		h.log.Warn("webhook: refused body", "remote", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return OutcomeBadBody
	}
	if len(ids) == 0 {
		w.WriteHeader(http.StatusOK)
		return OutcomeAccepted
	}
	if err := h.enqueue(r.Context(), ids); err != nil {
		h.log.Error("webhook: enqueue failed", "accounts", len(ids), "err", err)
		http.Error(w, "cannot queue now", http.StatusServiceUnavailable)
		return OutcomeUnavailable
	}
	h.log.Debug("webhook: enqueued", "accounts", len(ids))
	w.WriteHeader(http.StatusOK)
	return OutcomeAccepted
}

// verify reports whether sig is the signature of raw. Only a full-length
// signature is compared, in constant time; its length is no secret.
func (h *Handler) verify(sig string, raw []byte) bool {
	if len(sig) != hex.EncodedLen(sha256.Size) {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, h.secret)
	m.Write(raw)
	return hmac.Equal(got, m.Sum(nil))
}

// accounts returns the distinct account ids of a notification body, in the
// order of their first appearance.
func accounts(raw []byte) ([]string, error) {
	if !utf8.Valid(raw) {
		// encoding/json would quietly turn bad bytes into U+FFFD, and the
		// ids into ones that Dropbox never sent.
		return nil, errors.New("body is not UTF-8")
	}
	var b body
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("body is not the expected JSON: %w", err)
	}
	if b.ListFolder == nil || b.ListFolder.Accounts == nil {
		return nil, errors.New("body has no list_folder.accounts")
	}
	list := *b.ListFolder.Accounts
	ids := make([]string, 0, len(list))
	seen := make(map[string]bool, len(list))
	for i, id := range list {
		if err := checkID(id); err != nil {
			return nil, fmt.Errorf("account %d: %w", i, err)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func checkID(id string) error {
	if id == "" || len(id) > MaxAccountIDLen {
		return fmt.Errorf("id of %d bytes, want 1 to %d", len(id), MaxAccountIDLen)
	}
	for _, c := range id {
		if unicode.IsControl(c) {
			return fmt.Errorf("id %q holds a control character", id)
		}
	}
	return nil
}
