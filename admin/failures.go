package admin

import (
	"sync"
	"time"
)

// DefaultFailures is how many failures a [Failures] made by [NewFailures] with 0 keeps.
const DefaultFailures = 100

// A Failure is one failed attempt at a piece of work, and what happens next with it.
type Failure struct {
	Time      time.Time `json:"time"`
	MessageID string    `json:"message_id,omitempty"` // run: the SQS message
	Object    string    `json:"object,omitempty"`     // run: s3://bucket/key
	JobID     string    `json:"job_id,omitempty"`     // serve: the job
	Stage     string    `json:"stage,omitempty"`
	Attempt   int       `json:"attempt,omitempty"` // 1 for the first; 0 when unknown
	Error     string    `json:"error"`
	// Next says what happens next: "retry at 15:04:05", "dead", "dead-lettered", …
	Next string `json:"next,omitempty"`
}

// Failures keeps the latest failures in a ring. Its methods are safe for concurrent use.
type Failures struct {
	mu    sync.Mutex
	ring  []Failure
	next  int
	total int64
}

// NewFailures returns a ring that keeps the latest n failures (DefaultFailures for 0).
func NewFailures(n int) *Failures {
	if n <= 0 {
		n = DefaultFailures
	}
	return &Failures{ring: make([]Failure, 0, n)}
}

// Add records f; a zero Time is now.
func (r *Failures) Add(f Failure) {
	if f.Time.IsZero() {
		f.Time = time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, f)
		return
	}
	r.ring[r.next] = f
	r.next = (r.next + 1) % len(r.ring)
}

// List returns the failures kept, newest first, and how many were added in all.
func (r *Failures) List() ([]Failure, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Failure, 0, len(r.ring))
	for i := range r.ring {
		// The newest is just before next.
		j := (r.next - 1 - i + 2*len(r.ring)) % len(r.ring)
		out = append(out, r.ring[j])
	}
	return out, r.total
}
