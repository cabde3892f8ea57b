// Package metrics exports Palleto's runtime facts as Prometheus metrics: the per-stage events
// of a flow pipeline ([Observer]), the counters of an SQS source ([SQSCollector]) and the
// counts of a job queue ([JobsCollector]).
//
// Everything is registered with a registry the caller passes in; nothing touches
// prometheus.DefaultRegisterer. [Handler] serves a registry as GET /metrics.
//
// # Stage metrics
//
//	palleto_stage_items_total{stage, outcome}  counter  items by outcome: received (sources
//	                                                    only), done, failed, released
//	palleto_stage_busy_seconds_total{stage}    counter  time the stage's workers spent in
//	                                                    its handler
//	palleto_stage_demand{stage}                gauge    demand of the stage's workers, as
//	                                                    they last reported it
//	palleto_stage_item_seconds{stage}          histogram handling time of an item (a
//	                                                    batch's handler time over its items)
//
// The demand gauge is the sum over the stage's workers of the demand each reported in its
// latest event: for a stage worker, what it had outstanding right after it last asked
// upstream; for a source worker, the demand its last receive was asked to serve. Workers do not report as their demand is consumed, so the gauge
// is an upper bound between two asks.
package metrics

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/flow"
)

// Outcome label values of palleto_stage_items_total.
const (
	OutcomeReceived = "received"
	OutcomeDone     = "done"
	OutcomeFailed   = "failed"
	OutcomeReleased = "released"
)

// An Observer turns a pipeline's events into the stage metrics. It implements
// [flow.Observer]; create it with [NewObserver]. Observe does not allocate once a worker has
// reported for the first time.
type Observer struct {
	items  *prometheus.CounterVec
	busy   *prometheus.CounterVec
	demand *prometheus.GaugeVec
	handle *prometheus.HistogramVec

	// workers is copied on write, so that Observe reads it without a lock: new workers
	// appear only while a pipeline starts.
	workers atomic.Pointer[map[workerKey]*workerState]
	mu      sync.Mutex // serialises writers of workers and stages
	stages  map[string]*stageMetrics
}

type workerKey struct {
	stage  string
	worker int
}

// stageMetrics holds a stage's metric children, so that Observe does not look labels up.
// Children a stage's kind never moves are nil.
type stageMetrics struct {
	received, done, failed, released prometheus.Counter
	busy                             prometheus.Counter
	demand                           prometheus.Gauge
	handle                           prometheus.Observer
}

type workerState struct {
	stage  *stageMetrics
	demand atomic.Int64
}

// NewObserver registers the stage metrics with reg and returns the Observer that feeds them.
// Pass it to flow.Config.Observer (with flow.Observers to keep other observers).
func NewObserver(reg prometheus.Registerer) (*Observer, error) {
	o := &Observer{
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palleto_stage_items_total",
			Help: "Items of a pipeline stage by outcome: received (sources only), done, failed, released unfinished at shutdown.",
		}, []string{"stage", "outcome"}),
		busy: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "palleto_stage_busy_seconds_total",
			Help: "Time the stage's workers spent in its handler.",
		}, []string{"stage"}),
		demand: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "palleto_stage_demand",
			Help: "Demand of the stage's workers, summed, as each last reported it (when it asked upstream, or a source when it received).",
		}, []string{"stage"}),
		handle: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "palleto_stage_item_seconds",
			Help:    "Time a stage's handler took for one item (a batch's time divided among its items).",
			Buckets: DurationBuckets,
		}, []string{"stage"}),
		stages: map[string]*stageMetrics{},
	}
	if err := register(reg, o.items, o.busy, o.demand, o.handle); err != nil {
		return nil, err
	}
	o.workers.Store(&map[workerKey]*workerState{})
	return o, nil
}

// Observe records one event. It is safe for concurrent use.
func (o *Observer) Observe(e flow.Event) {
	w := o.worker(e)
	st := w.stage
	switch e.Kind {
	case flow.EventAsked:
		w.setDemand(e.Demand)
	case flow.EventReceived:
		o.add(st.received, e.Stage, OutcomeReceived, float64(e.N))
		w.setDemand(e.Demand)
	case flow.EventDone:
		o.add(st.done, e.Stage, OutcomeDone, float64(e.N))
		o.addBusy(st, e.Stage, e.Busy)
		o.observeHandle(st, e)
	case flow.EventFailed:
		// A batch's time comes once: on its Done event, or on its Failed event if none.
		o.add(st.failed, e.Stage, OutcomeFailed, float64(e.N))
		o.addBusy(st, e.Stage, e.Busy)
		o.observeHandle(st, e)
	case flow.EventReleased:
		o.add(st.released, e.Stage, OutcomeReleased, float64(e.N))
	}
}

// add adds v to c, or to the child that a stage of an unexpected kind did not get at once.
func (o *Observer) add(c prometheus.Counter, stage, outcome string, v float64) {
	if c == nil {
		c = o.items.WithLabelValues(stage, outcome)
	}
	c.Add(v)
}

func (o *Observer) addBusy(st *stageMetrics, stage string, d time.Duration) {
	c := st.busy
	if c == nil {
		c = o.busy.WithLabelValues(stage)
	}
	c.Add(d.Seconds())
}

// observeHandle records the handling time of a batch's items, once per batch: its time
// divided among them.
func (o *Observer) observeHandle(st *stageMetrics, e flow.Event) {
	if e.Busy <= 0 || e.N <= 0 {
		return
	}
	h := st.handle
	if h == nil {
		h = o.handle.WithLabelValues(e.Stage)
	}
	h.Observe((e.Busy / time.Duration(e.N)).Seconds())
}

func (w *workerState) setDemand(d int) {
	if old := w.demand.Swap(int64(d)); old != int64(d) {
		w.stage.demand.Add(float64(int64(d) - old))
	}
}

// worker returns the state of e's worker, made on its first event. A stage whose first
// event is Received is a source: it gets the received counter; any other stage gets the
// done, failed and released counters and the busy time. So a stage shows only the series
// that can move.
func (o *Observer) worker(e flow.Event) *workerState {
	k := workerKey{e.Stage, e.Worker}
	if w, ok := (*o.workers.Load())[k]; ok {
		return w
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	old := *o.workers.Load()
	if w, ok := old[k]; ok {
		return w
	}
	st, ok := o.stages[e.Stage]
	if !ok {
		st = &stageMetrics{demand: o.demand.WithLabelValues(e.Stage)}
		if e.Kind == flow.EventReceived {
			st.received = o.items.WithLabelValues(e.Stage, OutcomeReceived)
		} else {
			st.done = o.items.WithLabelValues(e.Stage, OutcomeDone)
			st.failed = o.items.WithLabelValues(e.Stage, OutcomeFailed)
			st.released = o.items.WithLabelValues(e.Stage, OutcomeReleased)
			st.busy = o.busy.WithLabelValues(e.Stage)
			st.handle = o.handle.WithLabelValues(e.Stage)
		}
		o.stages[e.Stage] = st
	}
	w := &workerState{stage: st}
	next := maps.Clone(old)
	next[k] = w
	o.workers.Store(&next)
	return w
}

// RegisterLimit registers a gauge of a stage's flow.Limit with reg: palleto_stage_limit,
// the number of the stage's workers allowed to work now (for the fetch stage, the downloads
// in flight that the run chose).
func RegisterLimit(reg prometheus.Registerer, stage string, l *flow.Limit) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "palleto_stage_limit",
		Help:        "Workers of a stage allowed to work now, as chosen at run time.",
		ConstLabels: prometheus.Labels{"stage": stage},
	}, func() float64 { return float64(l.N()) }))
}
