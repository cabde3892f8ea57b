package flow

import (
	"context"
	"fmt"
	"time"
)

// BatchOptions configure a [Batch] stage.
type BatchOptions[T any] struct {
	// Size is the most items in a batch. Zero means 10.
	Size int
	// Timeout is how long a batch may wait for more items after its first one arrived.
	// Zero means one second.
	Timeout time.Duration
	// Key, when set, puts items with different keys in different batches.
	Key func(T) string
}

// Batch declares a stage that groups items into slices of at most Size items (of one key,
// with Key), emitted when full or Timeout after their first item arrived, and when the
// input ends. The source messages of a batch's items are acknowledged with the batch's
// outcome. One goroutine does the grouping; give the stage that consumes the batches the
// concurrency. Its demand follows from Size: it holds or asks for at most two batches' worth
// of items, and asks for more once a batch's worth is free.
func Batch[T any](in *Stream[T], name string, opts BatchOptions[T]) *Stream[[]T] {
	p := in.p
	if opts.Size == 0 {
		opts.Size = 10
	}
	if opts.Timeout == 0 {
		opts.Timeout = time.Second
	}
	if opts.Size < 0 || opts.Timeout < 0 {
		p.configError(&ConfigError{name, fmt.Sprintf("Size %d, Timeout %v: must not be negative", opts.Size, opts.Timeout)})
	}
	b := &batcher[T]{name: name, opts: opts, maxDemand: 2 * opts.Size, minDemand: opts.Size, in: in.input(name, 1).parts[0]}
	s, out := plainStream[[]T](p, name)
	b.out = out
	p.add(b, StageInfo{Name: name, Kind: KindBatch, Input: in.name, Workers: 1, MaxDemand: b.maxDemand})
	return s
}

type batcher[T any] struct {
	name string
	opts BatchOptions[T]
	// maxDemand is the most items held or asked for; more are asked for when no more than
	// minDemand are.
	maxDemand, minDemand int
	in                   *part[T]
	out                  *link[[]T]
}

type pendingBatch[T any] struct {
	key      string
	items    []T
	refs     []ackRef
	deadline time.Time
}

func (b *batcher[T]) start(rs *runState) {
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		defer b.out.close()
		b.run(rs)
	}()
}

func (b *batcher[T]) run(rs *runState) {
	var (
		open        []*pendingBatch[T] // in order of deadline
		ready       []item[[]T]
		taken       []item[T]
		acks        ackBuf
		outstanding int // asked for and not yet taken
		held        int // taken and not yet emitted
		timer       = time.NewTimer(time.Hour)
		t           = newTaker()
		armed       bool
	)
	timer.Stop()
	defer func() {
		timer.Stop()
		for _, pb := range open {
			for _, r := range pb.refs {
				r.complete(Released, nil, &acks)
			}
		}
		acks.flush()
	}()
	// flush moves batches to ready: all of them, or only those whose deadline has passed.
	flush := func(all bool, now time.Time) {
		keep := open[:0]
		for _, pb := range open {
			if all || !now.Before(pb.deadline) {
				ready = append(ready, item[[]T]{v: pb.items, ref: join(pb.refs)})
			} else {
				keep = append(keep, pb)
			}
		}
		clear(open[len(keep):])
		open = keep
	}
	emit := func() bool {
		for _, it := range ready {
			held -= len(it.v)
		}
		n, err := b.out.parts[0].push(rs.work, ready)
		if err != nil {
			for _, it := range ready[n:] {
				it.ref.complete(Released, nil, &acks)
			}
			rs.observe(Event{Stage: b.name, Kind: EventReleased, N: len(ready) - n})
		}
		clear(ready)
		ready = ready[:0]
		acks.flush()
		return err == nil
	}
	for {
		if want := b.maxDemand - outstanding - held; outstanding+held <= b.minDemand && want > 0 {
			b.in.ask(want)
			rs.observe(Event{Stage: b.name, Kind: EventAsked, N: want, Demand: outstanding + want})
			outstanding += want
		}
		// The timer runs for the earliest open batch (batches open in deadline order).
		var wake <-chan time.Time
		if len(open) > 0 {
			if !armed {
				timer.Reset(time.Until(open[0].deadline))
				armed = true
			}
			wake = timer.C
		}
		var err error
		taken, err = b.in.take(rs.work, wake, t, taken[:0], outstanding)
		if err != nil {
			if err == errClosed {
				flush(true, time.Time{})
				emit()
			}
			return
		}
		if len(taken) == 0 { // the timer fired
			armed = false
			flush(false, time.Now())
			if !emit() {
				return
			}
			continue
		}
		outstanding -= len(taken)
		held += len(taken)
		now := time.Now()
		for _, it := range taken {
			var key string
			if b.opts.Key != nil {
				var err error
				key, err = call1(b.name, rs.work, func(_ context.Context, v T) (string, error) { return b.opts.Key(v), nil }, it.v)
				if err != nil {
					held--
					it.ref.complete(Failed, err, &acks)
					continue
				}
			}
			var pb *pendingBatch[T]
			for _, o := range open {
				if o.key == key {
					pb = o
					break
				}
			}
			if pb == nil {
				pb = &pendingBatch[T]{key: key, deadline: now.Add(b.opts.Timeout)}
				open = append(open, pb)
			}
			pb.items = append(pb.items, it.v)
			pb.refs = append(pb.refs, it.ref)
			if len(pb.items) == b.opts.Size {
				ready = append(ready, item[[]T]{v: pb.items, ref: join(pb.refs)})
				for i, o := range open {
					if o == pb {
						open = append(open[:i], open[i+1:]...)
						break
					}
				}
				if len(open) == 0 && armed {
					timer.Stop()
					armed = false
				}
			}
		}
		clear(taken)
		if len(ready) > 0 && !emit() {
			return
		}
		acks.flush()
	}
}
