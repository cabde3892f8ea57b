package flow

import (
	"context"
	"errors"
	"runtime/debug"
	"sync"
	"time"
)

// Map declares a stage that turns each item into one new item. An error fails the item.
func Map[T, U any](in *Stream[T], name string, fn func(context.Context, T) (U, error), opts Options) *Stream[U] {
	return addStage(in, name, opts, true, func(ctx context.Context, w *worker[T, U], it item[T]) {
		v, err := fn(ctx, it.v)
		if err != nil {
			w.finish(it.ref, err)
			return
		}
		w.emit(v, it.ref)
	})
}

// FlatMap declares a stage that turns each item into any number of new items. The source
// message behind the item is acknowledged once all of them have finished; none means the
// item is done.
func FlatMap[T, U any](in *Stream[T], name string, fn func(context.Context, T) ([]U, error), opts Options) *Stream[U] {
	return addStage(in, name, opts, true, func(ctx context.Context, w *worker[T, U], it item[T]) {
		vs, err := fn(ctx, it.v)
		switch {
		case err != nil:
			w.finish(it.ref, err)
		case len(vs) == 0:
			w.finish(it.ref, nil)
		case len(vs) == 1:
			w.emit(vs[0], it.ref)
		default:
			ref := it.ref.split(len(vs))
			for _, v := range vs {
				w.emit(v, ref)
			}
		}
	})
}

// Filter declares a stage that passes on the items for which keep returns true. The others
// are done.
func Filter[T any](in *Stream[T], name string, keep func(T) bool, opts Options) *Stream[T] {
	return addStage(in, name, opts, true, func(ctx context.Context, w *worker[T, T], it item[T]) {
		switch {
		case keep(it.v):
			w.emit(it.v, it.ref)
		default:
			w.finish(it.ref, nil)
		}
	})
}

// Sink declares the last stage of a branch: each item for which fn returns nil is done, the
// others have failed.
func Sink[T any](in *Stream[T], name string, fn func(context.Context, T) error, opts Options) {
	addStage(in, name, opts, false, func(ctx context.Context, w *worker[T, struct{}], it item[T]) {
		w.finish(it.ref, fn(ctx, it.v))
	})
}

// call1 runs a handler, turning a panic into a *PanicError. Stages that run their handler
// over a whole batch use worker.processFrom's guard instead, one per batch.
func call1[T, U any](stage string, ctx context.Context, fn func(context.Context, T) (U, error), v T) (out U, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Stage: stage, Value: r, Stack: debug.Stack()}
		}
	}()
	return fn(ctx, v)
}

type stage[T, U any] struct {
	name    string
	opts    Options
	in      *link[T]
	out     *link[U] // nil for a sink
	process func(context.Context, *worker[T, U], item[T])
}

func addStage[T, U any](in *Stream[T], name string, opts Options, hasOut bool, process func(context.Context, *worker[T, U], item[T])) *Stream[U] {
	p := in.p
	opts, err := opts.normalize(name)
	if err != nil {
		p.configError(err)
	}
	st := &stage[T, U]{name: name, opts: opts, process: process}
	st.in = in.input(name, opts.Concurrency)
	if opts.Limit != nil && len(st.in.parts) > 1 {
		// A worker kept out by the limit would leave its partition's items waiting.
		p.configError(&ConfigError{name, "Limit cannot apply to a partitioned input"})
	}
	var s *Stream[U]
	if hasOut {
		s, st.out = plainStream[U](p, name)
	}
	kind := KindStage
	if !hasOut {
		kind = KindSink
	}
	p.add(st, StageInfo{Name: name, Kind: kind, Input: in.name, Workers: opts.Concurrency, MaxDemand: opts.MaxDemand})
	return s
}

func (st *stage[T, U]) start(rs *runState) {
	var wg sync.WaitGroup
	wg.Add(st.opts.Concurrency)
	rs.wg.Add(1)
	for i := range st.opts.Concurrency {
		w := &worker[T, U]{stage: st, rs: rs, id: i, in: st.in.parts[i%len(st.in.parts)]}
		if st.out != nil {
			w.out = st.out.parts[0]
		}
		go func() {
			defer wg.Done()
			w.run()
		}()
	}
	go func() {
		defer rs.wg.Done()
		wg.Wait()
		if st.out != nil {
			st.out.close()
		}
	}()
}

// worker is one goroutine of a stage. It asks for demand, takes what arrives, runs the
// handler over it, and pushes the results downstream before asking again, so that it never
// holds more than MaxDemand items.
type worker[T, U any] struct {
	stage *stage[T, U]
	rs    *runState
	id    int
	in    *part[T]
	out   *part[U]

	batch    []item[T]
	results  []item[U]
	acks     ackBuf
	failed   int // in the current batch
	released int // in the current batch
	firstErr error
}

func (w *worker[T, U]) emit(v U, ref ackRef) {
	w.results = append(w.results, item[U]{v: v, ref: ref})
}

// finish records the end of an item: done when err is nil, failed otherwise, and released
// when the handler gave up because the grace period ended.
func (w *worker[T, U]) finish(ref ackRef, err error) {
	switch {
	case err == nil:
		ref.complete(Succeeded, nil, &w.acks)
	case w.rs.work.Err() != nil && errors.Is(err, context.Canceled):
		w.released++
		ref.complete(Released, nil, &w.acks)
	default:
		w.failed++
		if w.firstErr == nil {
			w.firstErr = err
		}
		ref.complete(Failed, err, &w.acks)
	}
}

func (w *worker[T, U]) run() {
	st, rs := w.stage, w.rs
	max, min := st.opts.MaxDemand, st.opts.MinDemand
	outstanding := 0 // asked for and not yet taken
	t := newTaker()
	for {
		if outstanding == 0 && st.opts.Limit != nil && !w.admitted(st.opts.Limit) {
			return // the input closed, or the grace period is over, while this worker was idle
		}
		if outstanding <= min {
			w.in.ask(max - outstanding)
			rs.observe(Event{Stage: st.name, Worker: w.id, Kind: EventAsked, N: max - outstanding, Demand: max})
			outstanding = max
		}
		var err error
		w.batch, err = w.in.take(rs.work, nil, t, w.batch[:0], outstanding)
		if err != nil {
			return // closed and drained, or the grace period is over
		}
		outstanding -= len(w.batch)

		var began time.Time
		if rs.obs != nil {
			rs.observe(Event{Stage: st.name, Worker: w.id, Kind: EventTaken, N: len(w.batch), Demand: outstanding})
			began = time.Now()
		}
		for i := 0; i < len(w.batch); {
			i = w.processFrom(i)
		}
		clear(w.batch)
		if rs.obs != nil {
			w.report(len(w.batch), time.Since(began))
		}
		w.failed, w.released, w.firstErr = 0, 0, nil
		if len(w.results) > 0 {
			spare, moved, n, err := w.out.pushOwned(rs.work, w.results)
			if err != nil {
				for _, it := range w.results[n:] {
					it.ref.complete(Released, nil, &w.acks)
				}
				rs.observe(Event{Stage: st.name, Worker: w.id, Kind: EventReleased, N: len(w.results) - n})
			}
			if !moved {
				clear(w.results) // still ours: drop what it points to
			}
			w.results = spare[:0]
		}
		w.acks.flush()
	}
}

// admitted waits until the limit admits this worker. A worker kept out holds nothing: it
// has no outstanding demand, and took none of the items waiting in its input. False means
// the input closed or the work context ended meanwhile.
func (w *worker[T, U]) admitted(l *Limit) bool {
	for {
		ok, changed := l.admits(w.id)
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-w.in.done:
			return false
		case <-w.rs.work.Done():
			return false
		}
	}
}

// processFrom runs the handler over w.batch[i:] and returns the index after the last item
// handled: len(w.batch), or the one after an item whose handler panicked, which fails with a
// *PanicError. One guard per batch rather than one per item keeps the common case cheap.
func (w *worker[T, U]) processFrom(i int) (next int) {
	work := w.rs.work
	defer func() {
		if r := recover(); r != nil {
			w.finish(w.batch[i].ref, &PanicError{Stage: w.stage.name, Value: r, Stack: debug.Stack()})
			next = i + 1
		}
	}()
	for ; i < len(w.batch); i++ {
		it := w.batch[i]
		if work.Err() != nil {
			it.ref.complete(Released, nil, &w.acks)
			w.released++
			continue
		}
		w.stage.process(work, w, it)
	}
	return i
}

func (w *worker[T, U]) report(n int, busy time.Duration) {
	e := Event{Stage: w.stage.name, Worker: w.id}
	if done := n - w.failed - w.released; done > 0 {
		e.Kind, e.N, e.Busy = EventDone, done, busy
		w.rs.observe(e)
	}
	if w.failed > 0 {
		if e.Kind == EventDone {
			busy = 0 // reported with the batch's Done event already
		}
		e.Kind, e.N, e.Busy, e.Err = EventFailed, w.failed, busy, w.firstErr
		w.rs.observe(e)
	}
	if w.released > 0 {
		e.Kind, e.N, e.Busy, e.Err = EventReleased, w.released, 0, nil
		w.rs.observe(e)
	}
}
