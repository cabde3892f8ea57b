// Package backoff says how long to wait before trying again after a failure: at once, after a
// fixed delay, or after a delay that doubles with each failure in a row, with jitter. It is
// the one retry policy of the sqs and jobs packages, for failed messages and jobs and for the
// requests they repeat. It uses the standard library only.
package backoff

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// A Policy gives the delay before the next try after n failures in a row. The delay after the
// first failure is Base; each further failure doubles it, up to Max; then a random part of it,
// Jitter, is taken off, so that work that failed together does not come back together. The
// zero Policy retries at once.
type Policy struct {
	Base time.Duration
	Max  time.Duration // at least Base; Max == Base gives a fixed delay
	// Jitter is the fraction of each delay that is drawn at random, from 0 (none) to 1 (the
	// delay is anywhere between zero and all of it). At 0.5 it lies between half and all,
	// so that it still grows with each failure.
	Jitter float64
}

// Immediate retries at once.
func Immediate() *Policy { return &Policy{} }

// Fixed waits d after every failure.
func Fixed(d time.Duration) *Policy { return &Policy{Base: d, Max: d} }

// Exponential waits base after the first failure, doubling with each further one up to max,
// each delay drawn between half and all of that.
func Exponential(base, max time.Duration) *Policy {
	return &Policy{Base: base, Max: max, Jitter: 0.5}
}

// Default is the policy of failed messages in sqs and failed jobs in jobs: 1 s doubling up to
// 5 min, with jitter (Exponential).
func Default() *Policy { return Exponential(time.Second, 5*time.Minute) }

// Validate reports a policy that cannot be used: a negative delay, Max below Base, or a Jitter
// outside [0, 1].
func (p Policy) Validate() error {
	switch {
	case p.Base < 0:
		return fmt.Errorf("backoff: Base %v is negative", p.Base)
	case p.Max < p.Base:
		return fmt.Errorf("backoff: Max %v is less than Base %v", p.Max, p.Base)
	case !(p.Jitter >= 0 && p.Jitter <= 1):
		return fmt.Errorf("backoff: Jitter %v is outside [0, 1]", p.Jitter)
	}
	return nil
}

// Step returns the delay after n failures in a row before jitter: Base doubled n-1 times, at
// most Max. An n below 1 counts as 1.
func (p Policy) Step(n int) time.Duration {
	if p.Base <= 0 {
		return 0
	}
	limit := max(p.Max, p.Base)
	if shift := max(n, 1) - 1; shift < 62 && p.Base <= limit>>shift {
		return p.Base << shift
	}
	return limit
}

// DelayAt returns the delay after n failures in a row for a random draw r in [0, 1): Step(n)
// less r·Jitter of it. r = 0 gives the whole step.
func (p Policy) DelayAt(n int, r float64) time.Duration {
	step := p.Step(n)
	return step - time.Duration(float64(step)*p.Jitter*r)
}

// Delay returns the delay after n failures in a row, its jitter drawn at random.
func (p Policy) Delay(n int) time.Duration {
	if p.Jitter == 0 {
		return p.Step(n)
	}
	return p.DelayAt(n, rand.Float64())
}
