package flow

import (
	"sync"
	"sync/atomic"
)

// ackRef says where an item's outcome goes. Items that map 1:1 to a source message carry the
// acknowledger and token directly; only fan-out (FlatMap, Broadcast) and fan-in (Batch)
// allocate an origin to count the items still open, which then is the token, with no
// acknowledger (a source's token cannot be an *origin: the type is the runtime's). Two words
// fewer per item than a separate origin field: items are copied from stage to stage.
type ackRef struct {
	acker Acknowledger
	token any
}

// origin returns the origin that r stands for, or nil.
func (r ackRef) origin() *origin {
	if r.acker != nil {
		return nil
	}
	o, _ := r.token.(*origin)
	return o
}

// origin tracks a message (or a batch) whose outcome waits for several items.
type origin struct {
	target  ackRef   // where the outcome goes, when members is nil
	members []ackRef // for a batch: the items it was made of
	pending atomic.Int64

	mu     sync.Mutex
	status Status
	err    error
}

// split makes ref stand for n items instead of one. n must be at least 2.
func (r ackRef) split(n int) ackRef {
	if o := r.origin(); o != nil {
		o.pending.Add(int64(n - 1))
		return r
	}
	o := &origin{target: r}
	o.pending.Store(int64(n))
	return ackRef{token: o}
}

// join makes one ref for a batch of items.
func join(members []ackRef) ackRef {
	o := &origin{members: members}
	o.pending.Store(1)
	return ackRef{token: o}
}

// complete records the outcome of one item, and the outcome of its origin once that has no
// open items left.
func (r ackRef) complete(st Status, err error, acks *ackBuf) {
	if r.acker != nil {
		acks.add(r.acker, Result{Token: r.token, Status: st, Err: err})
		return
	}
	o := r.origin()
	if o == nil {
		return // nobody needs to know
	}
	o.mu.Lock()
	if st > o.status {
		o.status = st
	}
	if err != nil && o.err == nil && st == Failed {
		o.err = err
	}
	o.mu.Unlock()
	if o.pending.Add(-1) != 0 {
		return
	}
	// The last item: no other goroutine touches o any more.
	if o.members != nil {
		for _, m := range o.members {
			m.complete(o.status, o.err, acks)
		}
		return
	}
	o.target.complete(o.status, o.err, acks)
}

// ackBuf collects outcomes so that each acknowledger gets one call per flush.
type ackBuf struct {
	groups []ackGroup
}

type ackGroup struct {
	acker   Acknowledger
	results []Result
}

func (b *ackBuf) add(a Acknowledger, r Result) {
	for i := range b.groups {
		if b.groups[i].acker == a {
			b.groups[i].results = append(b.groups[i].results, r)
			return
		}
	}
	for i := range b.groups {
		if b.groups[i].acker == nil { // a spare group from an earlier flush
			b.groups[i].acker = a
			b.groups[i].results = append(b.groups[i].results[:0], r)
			return
		}
	}
	b.groups = append(b.groups, ackGroup{acker: a, results: []Result{r}})
}

func (b *ackBuf) flush() {
	for i := range b.groups {
		g := &b.groups[i]
		if g.acker == nil || len(g.results) == 0 {
			continue
		}
		g.acker.Acknowledge(g.results)
		clear(g.results)
		g.results = g.results[:0]
		g.acker = nil
	}
}
