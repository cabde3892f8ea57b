package admin

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palleto/palleto/flow"
)

// Stages counts a pipeline's events per stage, for the dashboard's topology. It implements
// [flow.Observer]: pass it in flow.Config.Observer (with flow.Observers to keep others).
// Observe takes no lock and does not allocate once a stage has reported.
type Stages struct {
	topo []flow.StageInfo
	// counters is copied on write: a stage that is not in the topology appears on its first
	// event; the others are there from the start.
	counters atomic.Pointer[map[string]*stageCounters]
	mu       sync.Mutex
}

type stageCounters struct {
	info                                          flow.StageInfo
	received, taken, done, failed, released, busy atomic.Int64
	demand                                        []atomic.Int64 // per worker, as last reported
	extraDemand                                   atomic.Int64   // workers beyond the topology's count
}

// NewStages returns the counters of a pipeline with the given topology
// ([flow.Pipeline.Topology]); stages missing from it are added as they report.
func NewStages(topology []flow.StageInfo) *Stages {
	s := &Stages{topo: topology}
	m := make(map[string]*stageCounters, len(topology))
	for _, info := range topology {
		m[info.Name] = newCounters(info)
	}
	s.counters.Store(&m)
	return s
}

func newCounters(info flow.StageInfo) *stageCounters {
	return &stageCounters{info: info, demand: make([]atomic.Int64, max(info.Workers, 1))}
}

// SetTopology describes the stages as the pipeline declared them ([flow.Pipeline.Topology]);
// call it before the pipeline runs. It is for an observer made before its pipeline.
func (s *Stages) SetTopology(topology []flow.StageInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := maps.Clone(*s.counters.Load())
	for _, info := range topology {
		m[info.Name] = newCounters(info)
	}
	s.counters.Store(&m)
	s.topo = append([]flow.StageInfo(nil), topology...)
	for name, c := range m {
		if !slices.ContainsFunc(topology, func(i flow.StageInfo) bool { return i.Name == name }) {
			s.topo = append(s.topo, c.info)
		}
	}
}

// Observe records one event. It is safe for concurrent use.
func (s *Stages) Observe(e flow.Event) {
	c := s.stage(e.Stage)
	n := int64(e.N)
	switch e.Kind {
	case flow.EventAsked:
		c.setDemand(e.Worker, e.Demand)
	case flow.EventReceived:
		c.received.Add(n)
		c.setDemand(e.Worker, e.Demand)
	case flow.EventTaken:
		c.taken.Add(n)
		c.setDemand(e.Worker, e.Demand)
	case flow.EventDone:
		c.done.Add(n)
		c.busy.Add(int64(e.Busy))
	case flow.EventFailed:
		c.failed.Add(n)
		c.busy.Add(int64(e.Busy))
	case flow.EventReleased:
		c.released.Add(n)
	}
}

func (c *stageCounters) setDemand(worker, d int) {
	if worker >= 0 && worker < len(c.demand) {
		c.demand[worker].Store(int64(d))
		return
	}
	c.extraDemand.Store(int64(d))
}

func (s *Stages) stage(name string) *stageCounters {
	if c, ok := (*s.counters.Load())[name]; ok {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.counters.Load()
	if c, ok := old[name]; ok {
		return c
	}
	c := newCounters(flow.StageInfo{Name: name, Workers: 1})
	next := maps.Clone(old)
	next[name] = c
	s.counters.Store(&next)
	s.topo = append(s.topo, c.info)
	return c
}

// StageCounts is a stage's description and its counts since the pipeline started.
type StageCounts struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Input     string `json:"input,omitempty"`
	Workers   int    `json:"workers"`
	MaxDemand int    `json:"max_demand"`

	Received int64   `json:"received"` // sources: items received
	Done     int64   `json:"done"`
	Failed   int64   `json:"failed"`
	Released int64   `json:"released"`
	Busy     float64 `json:"busy_seconds"` // time the workers spent in the handler
	// Demand is the demand the workers last reported: for a stage, asked for and not yet
	// taken; for a source, what its receives were asked to serve.
	Demand int `json:"demand"`
	// InFlight is the items the stage's workers took and have not finished.
	InFlight int64 `json:"in_flight"`
}

// Snapshot returns every stage's counts, in the topology's order.
func (s *Stages) Snapshot() []StageCounts {
	s.mu.Lock()
	topo := append([]flow.StageInfo(nil), s.topo...)
	s.mu.Unlock()
	m := *s.counters.Load()
	out := make([]StageCounts, 0, len(topo))
	for _, info := range topo {
		c := m[info.Name]
		if c == nil {
			continue
		}
		sc := StageCounts{
			Name: info.Name, Kind: info.Kind, Input: info.Input, Workers: info.Workers, MaxDemand: info.MaxDemand,
			Received: c.received.Load(), Done: c.done.Load(), Failed: c.failed.Load(), Released: c.released.Load(),
			Busy: time.Duration(c.busy.Load()).Seconds(),
		}
		d := c.extraDemand.Load()
		for i := range c.demand {
			d += c.demand[i].Load()
		}
		sc.Demand = int(d)
		if info.Kind != flow.KindSource {
			sc.InFlight = max(0, c.taken.Load()-sc.Done-sc.Failed-sc.Released)
		}
		out = append(out, sc)
	}
	return out
}
