package flow

import "sync"

// A Limit is how many of a stage's workers take work, changeable while the pipeline runs
// (for instance by a controller that looks for the concurrency giving the most throughput).
// Set it in [Options.Limit]; [Options.Concurrency] is then the most workers there can be.
// Workers beyond the limit ask for nothing and hold nothing, so that the demand a stage
// sends upstream, and with it what the source receives, follows the limit. A worker above a
// lowered limit finishes what it holds first. The zero value is not usable: use [NewLimit].
type Limit struct {
	mu      sync.Mutex
	n       int
	changed chan struct{} // closed and replaced by Set
}

// NewLimit returns a limit of n workers (at least 1).
func NewLimit(n int) *Limit {
	return &Limit{n: max(n, 1), changed: make(chan struct{})}
}

// Set changes the limit to n (at least 1).
func (l *Limit) Set(n int) {
	n = max(n, 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if n == l.n {
		return
	}
	l.n = n
	close(l.changed)
	l.changed = make(chan struct{})
}

// N returns the limit.
func (l *Limit) N() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// admits reports whether worker id may take work, and otherwise a channel closed when the
// limit changes.
func (l *Limit) admits(id int) (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return id < l.n, l.changed
}
