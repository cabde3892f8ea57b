package flow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"time"
)

// Config configures a [Pipeline]. The zero value is ready to use.
type Config struct {
	// GracePeriod is how long items already received may keep flowing after Run's context is
	// cancelled. Zero means 30 seconds; a negative value means no grace at all.
	GracePeriod time.Duration
	// Observer receives per-stage events. Nil means none.
	Observer Observer
}

// Options configure a stage.
type Options struct {
	// Concurrency is the number of workers. Zero means 1. With Limit, it is the most.
	Concurrency int
	// Limit, if not nil, is how many of the workers take work at a time; it may change while
	// the pipeline runs. Nil means all of them.
	Limit *Limit
	// MaxDemand is the most items a worker asks for at once. Zero means 10.
	MaxDemand int
	// MinDemand is the outstanding demand at which a worker asks for more. Zero means half
	// of MaxDemand; a negative value means 0 (ask only when all is done).
	MinDemand int
}

func (o Options) normalize(stage string) (Options, error) {
	if o.Concurrency == 0 {
		o.Concurrency = 1
	}
	if o.MaxDemand == 0 {
		o.MaxDemand = 10
	}
	if o.MinDemand == 0 {
		o.MinDemand = o.MaxDemand / 2
	} else if o.MinDemand < 0 {
		o.MinDemand = 0
	}
	switch {
	case o.Concurrency < 0:
		return o, &ConfigError{stage, fmt.Sprintf("Concurrency %d is negative", o.Concurrency)}
	case o.MaxDemand < 0:
		return o, &ConfigError{stage, fmt.Sprintf("MaxDemand %d is negative", o.MaxDemand)}
	case o.MinDemand >= o.MaxDemand:
		return o, &ConfigError{stage, fmt.Sprintf("MinDemand %d is not below MaxDemand %d", o.MinDemand, o.MaxDemand)}
	}
	return o, nil
}

// SourceOptions configure how a source is read.
type SourceOptions struct {
	// Concurrency is the number of Receive calls that may be in flight at once. Zero means 1.
	Concurrency int
}

// A Pipeline is a set of stages and the sources that feed them. Declare it with [From] and
// the stage functions, then call [Pipeline.Run] once.
type Pipeline struct {
	cfg     Config
	mu      sync.Mutex
	stages  []runner
	infos   []StageInfo
	sweeps  []func(*ackBuf)
	streams []unconsumed
	errs    []error
	started bool

	abortOnce sync.Once
	abort     chan struct{} // closed by Abort
}

type runner interface {
	start(rs *runState)
}

type unconsumed interface{ consumed() (string, bool) }

// New returns an empty pipeline.
func New(cfg Config) *Pipeline {
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = 30 * time.Second
	}
	return &Pipeline{cfg: cfg, abort: make(chan struct{})}
}

// Abort cuts a shutdown short: receiving stops (as when Run's context is cancelled), the
// grace period ends now, the handlers' contexts are cancelled and every item still in flight
// is released. It may be called at any time, from any goroutine, more than once; Run still
// returns only when every goroutine it started has ended.
func (p *Pipeline) Abort() {
	p.abortOnce.Do(func() { close(p.abort) })
}

func (p *Pipeline) configError(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

// A Stream is the output of a source or a stage, to be consumed by exactly one stage (use
// [Broadcast] to give every item to several).
type Stream[T any] struct {
	p    *Pipeline
	name string
	// attach creates the link that the consuming stage takes from, with one part per
	// consumer worker when partitioned.
	attach func(consumers int) *link[T]
	used   bool
}

func (s *Stream[T]) consumed() (string, bool) { return s.name, s.used }

func newStream[T any](p *Pipeline, name string, attach func(int) *link[T]) *Stream[T] {
	s := &Stream[T]{p: p, name: name, attach: attach}
	p.mu.Lock()
	p.streams = append(p.streams, s)
	p.mu.Unlock()
	return s
}

// plainStream is a stream whose producer pushes into one shared link.
func plainStream[T any](p *Pipeline, name string) (*Stream[T], *link[T]) {
	l := newLink[T](1)
	p.addSweep(l)
	return newStream(p, name, func(int) *link[T] { return l }), l
}

func (p *Pipeline) addSweep(l interface{ sweep(*ackBuf) }) {
	p.mu.Lock()
	p.sweeps = append(p.sweeps, l.sweep)
	p.mu.Unlock()
}

func (l *link[T]) sweep(acks *ackBuf) {
	for _, p := range l.parts {
		for _, it := range p.drain() {
			it.ref.complete(Released, nil, acks)
		}
	}
}

// input claims s for a consuming stage.
func (s *Stream[T]) input(stage string, consumers int) *link[T] {
	if s.used {
		s.p.configError(&ConfigError{stage, fmt.Sprintf("stream %q is already consumed by another stage; use Broadcast", s.name)})
		return newLink[T](consumers)
	}
	s.used = true
	return s.attach(consumers)
}

func (p *Pipeline) add(r runner, info StageInfo) {
	p.mu.Lock()
	p.stages = append(p.stages, r)
	p.infos = append(p.infos, info)
	p.mu.Unlock()
}

// Kinds of stages in a [StageInfo].
const (
	KindSource    = "source"
	KindStage     = "stage" // Map, FlatMap, Filter
	KindSink      = "sink"
	KindBatch     = "batch"
	KindPartition = "partition"
	KindBroadcast = "broadcast"
)

// StageInfo describes one declared stage, as [Pipeline.Topology] lists it.
type StageInfo struct {
	Name  string
	Kind  string // KindSource, KindStage, …
	Input string // the stream it consumes (the producing stage's name); "" for a source
	// Workers is the number of goroutines: a stage's Concurrency, a source's receive
	// concurrency, 1 for the one-goroutine stages.
	Workers   int
	MaxDemand int // per worker; 0 for a source
}

// Topology lists the stages declared so far, in the order they were declared, with the
// options they run with (defaults applied). The names are those that [Event]s carry.
func (p *Pipeline) Topology() []StageInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]StageInfo(nil), p.infos...)
}

// runState is what stage goroutines share during a run.
type runState struct {
	// stop ends receiving: cancelled with Run's context or on a fatal source error.
	stop context.Context
	// work is handed to handlers: cancelled when the grace period after stop ends.
	work context.Context
	wg   sync.WaitGroup
	obs  Observer

	failOnce sync.Once
	failErr  error
	cancel   context.CancelFunc
}

func (rs *runState) fail(err error) {
	rs.failOnce.Do(func() { rs.failErr = err })
	rs.cancel()
}

func (rs *runState) observe(e Event) {
	if rs.obs != nil {
		rs.obs.Observe(e)
	}
}

// Run starts every stage and blocks until the pipeline ends: when all sources have returned
// io.EOF and every item has finished, or when ctx is cancelled and the shutdown described in
// the package documentation is over. It returns nil in both cases, the first fatal source
// error (after the same shutdown) if a source failed, or a configuration error at once.
func (p *Pipeline) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return ErrRunning
	}
	p.started = true
	errs := p.errs
	for _, s := range p.streams {
		if name, used := s.consumed(); !used {
			errs = append(errs, &ConfigError{name, fmt.Sprintf("stream %q is not consumed by any stage", name)})
		}
	}
	stages := p.stages
	p.mu.Unlock()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if len(stages) == 0 {
		return errors.New("flow: pipeline has no stages")
	}

	stop, cancelStop := context.WithCancel(ctx)
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	rs := &runState{stop: stop, work: work, obs: p.cfg.Observer, cancel: cancelStop}
	for _, s := range stages {
		s.start(rs)
	}

	// The watchdog ends the grace period. It is owned by Run and ends before Run returns.
	finished := make(chan struct{})
	watchdog := make(chan struct{})
	go func() {
		defer close(watchdog)
		select {
		case <-stop.Done():
		case <-p.abort:
			cancelStop()
		case <-finished:
			return
		}
		if p.cfg.GracePeriod < 0 {
			cancelWork()
			return
		}
		t := time.NewTimer(p.cfg.GracePeriod)
		defer t.Stop()
		select {
		case <-t.C:
			cancelWork()
		case <-p.abort:
			cancelWork()
		case <-finished:
		}
	}()
	rs.wg.Wait()
	close(finished)
	<-watchdog
	cancelWork()
	cancelStop()

	var acks ackBuf
	for _, sweep := range p.sweeps {
		sweep(&acks)
	}
	acks.flush()
	return rs.failErr
}

// From declares a source stage that receives from src.
func From[T any](p *Pipeline, name string, src Source[T], opts SourceOptions) *Stream[T] {
	if opts.Concurrency == 0 {
		opts.Concurrency = 1
	}
	if opts.Concurrency < 0 {
		p.configError(&ConfigError{name, "Concurrency is negative"})
	}
	s, out := plainStream[T](p, name)
	p.add(&sourceStage[T]{name: name, src: src, opts: opts, out: out.parts[0], link: out},
		StageInfo{Name: name, Kind: KindSource, Workers: opts.Concurrency})
	return s
}

type sourceStage[T any] struct {
	name string
	src  Source[T]
	opts SourceOptions
	out  *part[T]
	link *link[T]
}

func (s *sourceStage[T]) start(rs *runState) {
	var wg sync.WaitGroup
	wg.Add(s.opts.Concurrency)
	rs.wg.Add(1)
	for i := range s.opts.Concurrency {
		go func() {
			defer wg.Done()
			s.receive(rs, i)
		}()
	}
	go func() {
		defer rs.wg.Done()
		wg.Wait()
		s.link.close()
	}()
}

func (s *sourceStage[T]) receive(rs *runState, worker int) {
	var buf []item[T]
	var acks ackBuf
	var ackerType reflect.Type // the last acknowledger type found comparable
	for {
		n, err := s.out.reserve(rs.stop)
		if err != nil {
			return
		}
		msgs, err := s.src.Receive(rs.stop, n)
		if len(msgs) > n {
			// A source that hands out more than asked breaks the in-flight bound: keep
			// what was asked for, release the rest at once, and stop.
			for _, m := range msgs[n:] {
				ackRef{acker: m.Acker, token: m.Token}.complete(Released, nil, &acks)
			}
			acks.flush()
			msgs = msgs[:n]
			if err == nil {
				err = fmt.Errorf("flow: source %q returned %d items for a demand of %d", s.name, len(msgs), n)
			}
		}
		buf = buf[:0]
		for _, m := range msgs {
			if m.Acker != nil {
				if t := reflect.TypeOf(m.Acker); t != ackerType {
					if !t.Comparable() {
						s.refuse(rs, msgs, t)
						return
					}
					ackerType = t
				}
			}
			buf = append(buf, item[T]{v: m.Data, ref: ackRef{acker: m.Acker, token: m.Token}})
		}
		buf = s.out.deliver(buf, n-len(msgs))
		if len(msgs) > 0 {
			rs.observe(Event{Stage: s.name, Worker: worker, Kind: EventReceived, N: len(msgs), Demand: n})
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return
		case rs.stop.Err() != nil:
			return // shutting down: the error is the cancelled receive
		default:
			rs.fail(fmt.Errorf("flow: source %q: %w", s.name, err))
			return
		}
	}
}

// refuse releases msgs one by one and fails the run: one of them has an acknowledger of
// type t, which cannot be compared with ==, so its outcomes cannot be grouped.
func (s *sourceStage[T]) refuse(rs *runState, msgs []Message[T], t reflect.Type) {
	for _, m := range msgs {
		if m.Acker != nil {
			m.Acker.Acknowledge([]Result{{Token: m.Token, Status: Released}})
		}
	}
	rs.fail(fmt.Errorf("flow: source %q: acknowledger type %s is not comparable (use a pointer)", s.name, t))
}
