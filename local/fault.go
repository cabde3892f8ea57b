package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrBadFaults means a fraction of Faults is outside [0, 1], the fractions
// add up to more than 1, or the latency is negative.
var ErrBadFaults = errors.New("local: bad faults")

// Faults says which requests fail and how, for reliability tests. The
// fractions are of requests (those named by Actions, if any) and are
// exclusive: at most one fault hits a request. The zero value injects
// nothing.
//
// The same faults serve the embedded server (Options.Faults,
// Server.Injector) and a Proxy in front of any other endpoint (moto,
// fauxqs, AWS itself).
type Faults struct {
	// Error500 is the fraction answered 500 InternalFailure (S3:
	// InternalError) without reaching the service.
	Error500 float64
	// Error503 is the fraction answered 503 ServiceUnavailable without
	// reaching the service.
	Error503 float64
	// Throttle is the fraction answered with the protocol's throttling
	// error without reaching the service: SQS's RequestThrottled (AWS JSON
	// 1.0 or query) or S3's 503 SlowDown.
	Throttle float64
	// Drop is the fraction whose connection is closed before the request
	// reaches the service: the client gets no answer at all.
	Drop float64
	// Truncate is the fraction that reaches the service, whose answer is
	// cut off half-way through the body by closing the connection: the
	// service acted, the client cannot know. With Actions
	// []string{"S3.GetObject"} it cuts object downloads in the middle.
	Truncate float64
	// Duplicate is the fraction of SQS ReceiveMessage calls (JSON protocol)
	// whose answer also carries a message that an earlier receive returned
	// and that has not been deleted since (through this injector): the
	// at-least-once delivery of a standard queue. With no such message, a
	// message of the answer itself is delivered twice. An answer that
	// already holds MaxNumberOfMessages gets no duplicate.
	Duplicate float64
	// Latency is added before each request is handled. A client that gives
	// up meanwhile ends the wait.
	Latency time.Duration
	// Actions, if not empty, limits faults and latency to these actions
	// (see Injector.Counts for their names).
	Actions []string
}

// Validate reports whether f is usable; the error wraps ErrBadFaults.
func (f Faults) Validate() error {
	sum := 0.0
	for _, x := range []struct {
		name string
		v    float64
	}{{"Error500", f.Error500}, {"Error503", f.Error503}, {"Throttle", f.Throttle}, {"Drop", f.Drop}, {"Truncate", f.Truncate}, {"Duplicate", f.Duplicate}} {
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

func cloneFaults(f Faults) Faults {
	f.Actions = slices.Clone(f.Actions)
	return f
}

// Counts counts requests by what happened to them.
type Counts struct {
	Requests   int64 // all requests received
	Forwarded  int64 // handed to the service (Truncated and Duplicated included)
	Error500   int64
	Error503   int64
	Throttled  int64
	Dropped    int64
	Truncated  int64
	Duplicated int64 // receives whose answer got a message delivered again
}

func (c *Counts) add(o Counts) {
	c.Requests += o.Requests
	c.Forwarded += o.Forwarded
	c.Error500 += o.Error500
	c.Error503 += o.Error503
	c.Throttled += o.Throttled
	c.Dropped += o.Dropped
	c.Truncated += o.Truncated
	c.Duplicated += o.Duplicated
}

// Injector is an http.Handler that injects Faults into the requests on
// their way to another handler. Each request draws one number from a
// generator seeded by the seed it was made with, so a client that sends its
// requests one at a time meets the same faults on every run. The faults can
// be changed while requests are in flight.
type Injector struct {
	next    http.Handler
	observe func(action string, reqBody, respBody []byte)

	mu     sync.Mutex
	rnd    *rand.Rand
	faults Faults
	counts map[string]*Counts
	sent   []deliveredMessage // recent receives, for Duplicate
}

// deliveredMessage is a message a receive returned, kept for Duplicate until
// it is deleted or pushed out by newer ones.
type deliveredMessage struct {
	queue, handle string
	raw           json.RawMessage
}

// keepReceived bounds the messages kept for Duplicate.
const keepReceived = 256

// NewInjector returns an Injector in front of next. observe, if not nil,
// is called for each request that reached next, with next's full answer
// (even when the client is then sent only part of it), before the client
// gets anything; it is called from many goroutines at once and must not keep
// the slices.
func NewInjector(next http.Handler, seed uint64, f Faults, observe func(action string, reqBody, respBody []byte)) (*Injector, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &Injector{
		next:    next,
		observe: observe,
		rnd:     rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)),
		faults:  cloneFaults(f),
		counts:  map[string]*Counts{},
	}, nil
}

// SetFaults replaces the faults; requests already past their draw keep the
// fault they drew.
func (in *Injector) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	in.mu.Lock()
	in.faults = cloneFaults(f)
	if f.Duplicate == 0 {
		in.sent = nil
	}
	in.mu.Unlock()
	return nil
}

// Faults returns the faults in force.
func (in *Injector) Faults() Faults {
	in.mu.Lock()
	defer in.mu.Unlock()
	return cloneFaults(in.faults)
}

// Counts returns the counts so far by action. An SQS action is named as in
// its X-Amz-Target header or Action parameter ("ReceiveMessage"); an S3
// request is "S3." followed by the operation the SDK names in its x-id
// parameter ("S3.PutObject", "S3.GetObject") or else by the HTTP method
// ("S3.HEAD", "S3.GET").
func (in *Injector) Counts() map[string]Counts {
	in.mu.Lock()
	defer in.mu.Unlock()
	m := make(map[string]Counts, len(in.counts))
	for k, v := range in.counts {
		m[k] = *v
	}
	return m
}

// Total returns the counts so far over all actions.
func (in *Injector) Total() Counts {
	in.mu.Lock()
	defer in.mu.Unlock()
	var t Counts
	for _, v := range in.counts {
		t.add(*v)
	}
	return t
}

// ResetCounts sets all counts to zero.
func (in *Injector) ResetCounts() {
	in.mu.Lock()
	in.counts = map[string]*Counts{}
	in.mu.Unlock()
}

type fault int

const (
	none fault = iota
	error500
	error503
	throttle
	drop
	truncate
	duplicate
)

// draw picks the fate of one request and counts it. track says the
// request's answer must be seen for Duplicate.
func (in *Injector) draw(action string) (kind fault, latency time.Duration, track bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	c := in.counts[action]
	if c == nil {
		c = &Counts{}
		in.counts[action] = c
	}
	c.Requests++
	f := in.faults
	track = f.Duplicate > 0
	if len(f.Actions) > 0 && !slices.Contains(f.Actions, action) {
		c.Forwarded++
		return none, 0, track
	}
	// One draw per request, faults or not, so that the sequence of fates
	// depends only on the seed and the order of requests.
	r := in.rnd.Float64()
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
		{f.Duplicate, duplicate, nil}, // counted when it happens
	} {
		if r < x.frac {
			if x.n != nil {
				*x.n++
			}
			if x.kind == truncate || x.kind == duplicate {
				c.Forwarded++
			}
			return x.kind, f.Latency, track
		}
		r -= x.frac
	}
	c.Forwarded++
	return none, f.Latency, track
}

// ServeHTTP handles one request: it draws its fate, waits the latency, and
// then fails it, or hands it on and passes, cuts or adds to the answer.
func (in *Injector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if in.observe != nil || needsBody(r) || (r.Header.Get("X-Amz-Target") != "" && in.tracking()) {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return // the client went away mid-request; there is no one to answer
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	proto, action := classify(r, body)
	kind, latency, track := in.draw(action)
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
	track = track && proto == awsJSON && (action == "ReceiveMessage" || action == "DeleteMessage" || action == "DeleteMessageBatch")
	if kind == none && !track && in.observe == nil {
		in.next.ServeHTTP(w, r)
		return
	}

	rec := newResponseBuffer()
	in.next.ServeHTTP(rec, r)
	if in.observe != nil {
		in.observe(action, body, rec.body.Bytes())
	}
	if track && rec.ok() {
		in.trackSQS(action, body, rec, kind == duplicate)
	}
	if kind == truncate {
		if rec.body.Len() == 0 {
			// Nothing to cut in an empty body: hang up before the headers.
			hangUp(w)
			return
		}
		// Announce the full length, send half, and hang up: the client
		// sees the answer begin and end too soon.
		h := w.Header()
		for k, v := range rec.header {
			h[k] = v
		}
		h.Set("Content-Length", strconv.Itoa(rec.body.Len()))
		w.WriteHeader(rec.code())
		_, _ = w.Write(rec.body.Bytes()[:rec.body.Len()/2])
		_ = http.NewResponseController(w).Flush()
		hangUp(w)
		return
	}
	rec.copyTo(w)
}

// needsBody reports whether classify must read the body: the query
// protocol names its action there.
func needsBody(r *http.Request) bool {
	return r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
}

// tracking reports whether Duplicate is in force, so that SQS calls must be
// followed.
func (in *Injector) tracking() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.faults.Duplicate > 0
}

// trackSQS keeps the messages a receive returned, forgets deleted ones and,
// for a receive drawn to duplicate, adds a message delivered before.
func (in *Injector) trackSQS(action string, reqBody []byte, rec *responseBuffer, dup bool) {
	switch action {
	case "DeleteMessage", "DeleteMessageBatch":
		var req struct {
			ReceiptHandle string
			Entries       []struct{ ReceiptHandle string }
		}
		if json.Unmarshal(reqBody, &req) != nil {
			return
		}
		gone := map[string]bool{req.ReceiptHandle: true}
		for _, e := range req.Entries {
			gone[e.ReceiptHandle] = true
		}
		in.mu.Lock()
		in.sent = slices.DeleteFunc(in.sent, func(m deliveredMessage) bool { return gone[m.handle] })
		in.mu.Unlock()
		return
	}
	var req struct {
		QueueURL            string `json:"QueueUrl"`
		MaxNumberOfMessages *int
	}
	var resp map[string]json.RawMessage
	if json.Unmarshal(reqBody, &req) != nil || json.Unmarshal(rec.body.Bytes(), &resp) != nil {
		return
	}
	var msgs []json.RawMessage
	_ = json.Unmarshal(resp["Messages"], &msgs)
	handles := make([]string, len(msgs))
	for i, m := range msgs {
		var h struct{ ReceiptHandle string }
		_ = json.Unmarshal(m, &h)
		handles[i] = h.ReceiptHandle
	}
	limit := 1
	if req.MaxNumberOfMessages != nil {
		limit = *req.MaxNumberOfMessages
	}

	in.mu.Lock()
	defer in.mu.Unlock()
	var extra json.RawMessage
	if dup && len(msgs) < limit {
		for i, m := range in.sent {
			if m.queue == req.QueueURL && !slices.Contains(handles, m.handle) {
				extra = m.raw
				in.sent = slices.Delete(in.sent, i, i+1)
				break
			}
		}
		if extra == nil && len(msgs) > 0 {
			extra = msgs[0]
		}
	}
	for i, m := range msgs {
		in.sent = append(in.sent, deliveredMessage{queue: req.QueueURL, handle: handles[i], raw: slices.Clone(m)})
	}
	if n := len(in.sent) - keepReceived; n > 0 {
		in.sent = slices.Delete(in.sent, 0, n)
	}
	if extra == nil {
		return
	}
	b, err := json.Marshal(append(msgs, extra))
	if err != nil {
		return
	}
	resp["Messages"] = b
	out, err := json.Marshal(resp)
	if err != nil {
		return
	}
	rec.body.Reset()
	rec.body.Write(out)
	rec.header.Del("Content-Length")
	if c := in.counts["ReceiveMessage"]; c != nil {
		c.Duplicated++
	}
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
