package flow

import (
	"context"
	"fmt"
	"hash/maphash"
)

// Partition routes items by key: each worker of the stage that consumes the returned stream
// gets the items of its own share of the keys, in the order they arrive here, and handles
// them one at a time — so items of one key are handled in order and never at once. Keys are
// spread by hash. One goroutine does the routing, with opts.MaxDemand and MinDemand; a
// Concurrency above 1 or a Limit is a *ConfigError. A worker that is slow holds back the
// items routed to it, and once the router's demand is used up, everything behind them.
func Partition[T any](in *Stream[T], name string, key func(T) string, opts Options) *Stream[T] {
	p := in.p
	opts, err := relayOptions(name, opts)
	if err != nil {
		p.configError(err)
	}
	r := &relay[T]{name: name, opts: opts, in: in.input(name, 1).parts[0]}
	seed := maphash.MakeSeed()
	one := make([]item[T], 1) // the relay is one goroutine: one reusable slot
	s := newStream(p, name, func(consumers int) *link[T] {
		out := newLink[T](consumers)
		p.addSweep(out)
		r.outs = []*link[T]{out}
		return out
	})
	r.route = func(rs *runState, it item[T], acks *ackBuf) bool {
		k, err := call1(name, rs.work, func(_ context.Context, v T) (string, error) { return key(v), nil }, it.v)
		if err != nil {
			it.ref.complete(Failed, err, acks)
			return true
		}
		parts := r.outs[0].parts
		dst := parts[maphash.String(seed, k)%uint64(len(parts))]
		one[0] = it
		_, err = dst.push(rs.work, one)
		one[0] = item[T]{}
		if err != nil {
			it.ref.complete(Released, nil, acks)
			return false
		}
		return true
	}
	p.add(r, StageInfo{Name: name, Kind: KindPartition, Input: in.name, Workers: 1, MaxDemand: opts.MaxDemand})
	return s
}

// Broadcast gives every item to each of n streams. The source message behind an item is
// acknowledged once all n copies have finished. One goroutine does the copying, with
// opts.MaxDemand and MinDemand (a Concurrency above 1 or a Limit is a *ConfigError); the
// slowest branch sets the pace.
func Broadcast[T any](in *Stream[T], name string, n int, opts Options) []*Stream[T] {
	p := in.p
	opts, err := relayOptions(name, opts)
	if err != nil {
		p.configError(err)
	}
	if n < 1 {
		p.configError(&ConfigError{name, fmt.Sprintf("Broadcast to %d streams", n)})
		n = 1
	}
	r := &relay[T]{name: name, opts: opts, in: in.input(name, 1).parts[0]}
	streams := make([]*Stream[T], n)
	for i := range streams {
		var out *link[T]
		streams[i], out = plainStream[T](p, fmt.Sprintf("%s[%d]", name, i))
		r.outs = append(r.outs, out)
	}
	one := make([]item[T], 1)
	r.route = func(rs *runState, it item[T], acks *ackBuf) bool {
		ref := it.ref
		if n > 1 {
			ref = ref.split(n)
		}
		for i, out := range r.outs {
			one[0] = item[T]{v: it.v, ref: ref}
			if _, err := out.parts[0].push(rs.work, one); err != nil {
				for range r.outs[i:] {
					ref.complete(Released, nil, acks)
				}
				return false
			}
		}
		one[0] = item[T]{}
		return true
	}
	p.add(r, StageInfo{Name: name, Kind: KindPartition, Input: in.name, Workers: 1, MaxDemand: opts.MaxDemand})
	return streams
}

// relayOptions are the options of a one-goroutine stage: those it cannot honour are an error.
func relayOptions(name string, opts Options) (Options, error) {
	switch {
	case opts.Concurrency > 1:
		return opts, &ConfigError{name, fmt.Sprintf("Concurrency %d: one goroutine routes the items (give the consuming stage the workers)", opts.Concurrency)}
	case opts.Limit != nil:
		return opts, &ConfigError{name, "a Limit needs workers to limit: one goroutine routes the items"}
	}
	opts.Concurrency = 1
	return opts.normalize(name)
}

// relay is a one-goroutine stage that takes items and hands each to route.
type relay[T any] struct {
	name  string
	opts  Options
	in    *part[T]
	outs  []*link[T]
	route func(*runState, item[T], *ackBuf) bool
}

func (r *relay[T]) start(rs *runState) {
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		defer func() {
			for _, o := range r.outs {
				o.close()
			}
		}()
		r.run(rs)
	}()
}

func (r *relay[T]) run(rs *runState) {
	var (
		batch       []item[T]
		acks        ackBuf
		outstanding int
		t           = newTaker()
	)
	defer acks.flush()
	for {
		if outstanding <= r.opts.MinDemand {
			want := r.opts.MaxDemand - outstanding
			r.in.ask(want)
			rs.observe(Event{Stage: r.name, Kind: EventAsked, N: want, Demand: r.opts.MaxDemand})
			outstanding = r.opts.MaxDemand
		}
		var err error
		batch, err = r.in.take(rs.work, nil, t, batch[:0], outstanding)
		if err != nil {
			return
		}
		outstanding -= len(batch)
		for i, it := range batch {
			if !r.route(rs, it, &acks) {
				for _, rest := range batch[i+1:] {
					rest.ref.complete(Released, nil, &acks)
				}
				return
			}
		}
		clear(batch)
		acks.flush()
	}
}
