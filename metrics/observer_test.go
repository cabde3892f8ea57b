package metrics_test

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/internal/leaktest"
	"github.com/palleto/palleto/metrics"
	"github.com/palleto/palleto/metrics/metricstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(leaktest.Main(m)) }

func newObserver(t *testing.T) (*metrics.Observer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	o, err := metrics.NewObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	return o, reg
}

func gather(t *testing.T, g prometheus.Gatherer) metricstest.Families {
	t.Helper()
	f, err := metricstest.Gather(g)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func want(t *testing.T, f metricstest.Families, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := f.Value(name, labels...)
	if !ok {
		t.Errorf("%s%v: missing", name, labels)
		return
	}
	if got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func absent(t *testing.T, f metricstest.Families, name string, labels ...string) {
	t.Helper()
	if v, ok := f.Value(name, labels...); ok {
		t.Errorf("%s%v = %v, want no such series", name, labels, v)
	}
}

func TestObserverCountsItemsByOutcome(t *testing.T) {
	o, reg := newObserver(t)
	boom := errors.New("boom")
	for _, e := range []flow.Event{
		{Stage: "sqs", Worker: 0, Kind: flow.EventReceived, N: 7, Demand: 10},
		{Stage: "sqs", Worker: 1, Kind: flow.EventReceived, N: 2, Demand: 2},
		{Stage: "write", Worker: 0, Kind: flow.EventAsked, N: 4, Demand: 4},
		{Stage: "write", Worker: 0, Kind: flow.EventDone, N: 3},
		{Stage: "write", Worker: 1, Kind: flow.EventDone, N: 2},
		{Stage: "write", Worker: 1, Kind: flow.EventFailed, N: 1, Err: boom},
		{Stage: "write", Worker: 0, Kind: flow.EventReleased, N: 4},
		{Stage: "parse", Worker: 0, Kind: flow.EventAsked, N: 10, Demand: 10},
	} {
		o.Observe(e)
	}
	f := gather(t, reg)
	const items = "palleto_stage_items_total"
	want(t, f, 9, items, "stage", "sqs", "outcome", "received")
	want(t, f, 5, items, "stage", "write", "outcome", "done")
	want(t, f, 1, items, "stage", "write", "outcome", "failed")
	want(t, f, 4, items, "stage", "write", "outcome", "released")
	// A stage shows the series that can move, from its first event on, at zero.
	want(t, f, 0, items, "stage", "parse", "outcome", "done")
	want(t, f, 0, items, "stage", "parse", "outcome", "failed")
	absent(t, f, items, "stage", "write", "outcome", "received")
	absent(t, f, items, "stage", "sqs", "outcome", "done")
	absent(t, f, "palleto_stage_busy_seconds_total", "stage", "sqs")
}

func TestObserverSumsDemandOverWorkers(t *testing.T) {
	o, reg := newObserver(t)
	steps := []struct {
		e    flow.Event
		want map[string]float64 // stage → palleto_stage_demand after e
	}{
		{flow.Event{Stage: "fetch", Worker: 0, Kind: flow.EventAsked, N: 1, Demand: 1}, map[string]float64{"fetch": 1}},
		{flow.Event{Stage: "fetch", Worker: 1, Kind: flow.EventAsked, N: 1, Demand: 1}, map[string]float64{"fetch": 2}},
		{flow.Event{Stage: "fetch", Worker: 2, Kind: flow.EventAsked, N: 1, Demand: 1}, map[string]float64{"fetch": 3}},
		// A worker asking again replaces its own figure; it does not add to it.
		{flow.Event{Stage: "fetch", Worker: 1, Kind: flow.EventAsked, N: 1, Demand: 1}, map[string]float64{"fetch": 3}},
		{flow.Event{Stage: "batch", Worker: 0, Kind: flow.EventAsked, N: 7, Demand: 7}, map[string]float64{"fetch": 3, "batch": 7}},
		{flow.Event{Stage: "batch", Worker: 0, Kind: flow.EventAsked, N: 3, Demand: 3}, map[string]float64{"fetch": 3, "batch": 3}},
		{flow.Event{Stage: "sqs", Worker: 0, Kind: flow.EventReceived, N: 10, Demand: 10}, map[string]float64{"sqs": 10}},
		{flow.Event{Stage: "sqs", Worker: 1, Kind: flow.EventReceived, N: 1, Demand: 4}, map[string]float64{"sqs": 14}},
		{flow.Event{Stage: "sqs", Worker: 0, Kind: flow.EventReceived, N: 6, Demand: 6}, map[string]float64{"sqs": 10, "fetch": 3}},
		// Done and failed items do not change the demand a worker reported.
		{flow.Event{Stage: "fetch", Worker: 0, Kind: flow.EventDone, N: 1}, map[string]float64{"fetch": 3}},
	}
	for i, s := range steps {
		o.Observe(s.e)
		f := gather(t, reg)
		for stage, v := range s.want {
			if got, _ := f.Value("palleto_stage_demand", "stage", stage); got != v {
				t.Errorf("step %d: demand of %s = %v, want %v", i, stage, got, v)
			}
		}
	}
}

func TestObserverSumsBusyTime(t *testing.T) {
	o, reg := newObserver(t)
	ev := func(w int, k flow.EventKind, d time.Duration) flow.Event {
		return flow.Event{Stage: "analyse", Worker: w, Kind: k, N: 1, Busy: d}
	}
	var total time.Duration
	for i, e := range []flow.Event{
		ev(0, flow.EventDone, 2*time.Second),
		// A batch with both outcomes: the runtime gives its time with the Done event only.
		ev(1, flow.EventDone, 3*time.Second),
		ev(1, flow.EventFailed, 0),
		// A batch that only failed.
		ev(0, flow.EventFailed, 1500*time.Millisecond),
		ev(0, flow.EventReleased, 0),
	} {
		o.Observe(e)
		total += e.Busy
		v, _ := gather(t, reg).Value("palleto_stage_busy_seconds_total", "stage", "analyse")
		if v != total.Seconds() {
			t.Fatalf("event %d: busy %vs, want %vs", i, v, total.Seconds())
		}
	}
}

func TestObserverDoesNotAllocate(t *testing.T) {
	o, _ := newObserver(t)
	events := []flow.Event{
		{Stage: "sqs", Worker: 3, Kind: flow.EventReceived, N: 4, Demand: 10},
		{Stage: "write", Worker: 1, Kind: flow.EventAsked, N: 4, Demand: 4},
		{Stage: "write", Worker: 1, Kind: flow.EventDone, N: 4, Busy: time.Millisecond},
		{Stage: "write", Worker: 1, Kind: flow.EventFailed, N: 1, Busy: time.Millisecond},
		{Stage: "write", Worker: 1, Kind: flow.EventReleased, N: 1},
	}
	for _, e := range events {
		o.Observe(e) // first sight of each worker
	}
	for _, e := range events {
		if n := testing.AllocsPerRun(100, func() { o.Observe(e) }); n != 0 {
			t.Errorf("%v event: %v allocations per call", e.Kind, n)
		}
	}
}

func TestObserverConcurrentWorkers(t *testing.T) {
	o, reg := newObserver(t)
	const workers, per = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				stage := "s" + strconv.Itoa(i%3)
				o.Observe(flow.Event{Stage: stage, Worker: w, Kind: flow.EventAsked, N: 2, Demand: 2})
				o.Observe(flow.Event{Stage: stage, Worker: w, Kind: flow.EventDone, N: 1})
			}
		})
	}
	wg.Wait()
	f := gather(t, reg)
	var done float64
	for s := range 3 {
		v, _ := f.Value("palleto_stage_items_total", "stage", "s"+strconv.Itoa(s), "outcome", "done")
		done += v
		want(t, f, 2*workers, "palleto_stage_demand", "stage", "s"+strconv.Itoa(s))
	}
	if done != workers*per {
		t.Fatalf("done %v, want %v", done, workers*per)
	}
}

func TestNewObserverTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.NewObserver(reg); err != nil {
		t.Fatal(err)
	}
	_, err := metrics.NewObserver(reg)
	if _, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); !ok {
		t.Fatalf("second NewObserver: %v, want AlreadyRegisteredError", err)
	}
}

func TestMetricNamesLint(t *testing.T) {
	o, reg := newObserver(t)
	o.Observe(flow.Event{Stage: "sqs", Kind: flow.EventReceived, N: 1, Demand: 1})
	o.Observe(flow.Event{Stage: "write", Kind: flow.EventDone, N: 1, Busy: time.Millisecond})
	if err := reg.Register(metrics.NewSQSCollector(fakeSQS{})); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(metrics.NewJobsCollector(fakeJobs{}.counts)); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func BenchmarkObserve(b *testing.B) {
	reg := prometheus.NewRegistry()
	o, err := metrics.NewObserver(reg)
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		e := flow.Event{Stage: "write", Kind: flow.EventDone, N: 4, Busy: time.Millisecond}
		for pb.Next() {
			o.Observe(e)
		}
	})
}
