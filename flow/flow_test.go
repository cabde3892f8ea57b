package flow_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/flow/flowtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run starts p in the background and returns a function that waits for Run's result.
func run(t *testing.T, ctx context.Context, p *flow.Pipeline) func() error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	return func() error { return <-errc }
}

func statuses[T any](outs []flowtest.Outcome[T]) map[flow.Status]int {
	m := map[flow.Status]int{}
	for _, o := range outs {
		m[o.Status]++
	}
	return m
}

func TestMapSinkAcksEveryMessageOnce(t *testing.T) {
	src := flowtest.NewSource[int]()
	p := flow.New(flow.Config{})
	s := flow.From(p, "src", src, flow.SourceOptions{})
	doubled := flow.Map(s, "double", func(_ context.Context, v int) (int, error) { return 2 * v, nil }, flow.Options{Concurrency: 3})
	var sum atomic.Int64
	flow.Sink(doubled, "sum", func(_ context.Context, v int) error { sum.Add(int64(v)); return nil }, flow.Options{Concurrency: 2, MaxDemand: 4})
	for i := 1; i <= 1000; i++ {
		src.Push(i)
	}
	src.Close()
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got, want := sum.Load(), int64(1000*1001); got != want {
		t.Fatalf("sum = %d, want %d", got, want)
	}
	outs := src.Outcomes()
	if len(outs) != 1000 || statuses(outs)[flow.Succeeded] != 1000 {
		t.Fatalf("outcomes: %d recorded, %v", len(outs), statuses(outs))
	}
	seen := map[int]bool{}
	for _, o := range outs {
		if seen[o.Data] {
			t.Fatalf("message %d acknowledged twice", o.Data)
		}
		seen[o.Data] = true
	}
}

// The lesson of the worker-pool seed: demand that cannot be served is remembered, so that
// items that arrive later go to idle workers at once.
func TestPendingDemandIsServedOnArrival(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := flowtest.NewSource[int]()
		p := flow.New(flow.Config{})
		var mu sync.Mutex
		running := map[int]chan struct{}{}
		flow.Sink(flow.From(p, "queue", src, flow.SourceOptions{}), "worker", func(_ context.Context, v int) error {
			release := make(chan struct{})
			mu.Lock()
			running[v] = release
			mu.Unlock()
			<-release
			mu.Lock()
			delete(running, v)
			mu.Unlock()
			return nil
		}, flow.Options{Concurrency: 3, MaxDemand: 1})
		ctx, cancel := context.WithCancel(t.Context())
		wait := run(t, ctx, p)
		synctest.Wait()

		busy := func() []int {
			mu.Lock()
			defer mu.Unlock()
			var ids []int
			for id := range running {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			return ids
		}
		finish := func(id int) {
			mu.Lock()
			close(running[id])
			mu.Unlock()
		}
		for i := range 10 {
			src.Push(i)
			synctest.Wait()
			if len(busy()) < 3 {
				// A worker is idle: the item must have been taken at once.
				if !slices.Contains(busy(), i) || src.Len() != 0 {
					t.Fatalf("item %d waits while a worker is idle: running %v, queued %d", i, busy(), src.Len())
				}
			}
			if i >= 2 && i%2 == 0 {
				// Free a worker: the oldest queued item must start at once.
				oldest := busy()[0]
				queued := src.Len()
				finish(oldest)
				synctest.Wait()
				if queued > 0 && src.Len() != queued-1 {
					t.Fatalf("a worker became free but the queue stayed at %d", src.Len())
				}
			}
			if got := len(busy()); got > 3 {
				t.Fatalf("%d items running with 3 workers of MaxDemand 1", got)
			}
		}
		for len(busy()) > 0 {
			finish(busy()[0])
			synctest.Wait()
		}
		if got := len(src.Outcomes()); got != 10 {
			t.Fatalf("%d outcomes, want 10", got)
		}
		cancel()
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	})
}

// A worker asks for MaxDemand and asks again only when its outstanding demand falls to
// MinDemand; the source is asked for exactly the outstanding demand.
func TestDemandIsRefilledAtMinDemand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := flowtest.NewSource[int]()
		var mu sync.Mutex
		var asked []int
		p := flow.New(flow.Config{Observer: flow.ObserverFunc(func(e flow.Event) {
			if e.Kind == flow.EventAsked {
				mu.Lock()
				asked = append(asked, e.N)
				mu.Unlock()
			}
		})})
		flow.Sink(flow.From(p, "src", src, flow.SourceOptions{}), "sink",
			func(context.Context, int) error { return nil }, flow.Options{MaxDemand: 10, MinDemand: 5})
		ctx, cancel := context.WithCancel(t.Context())
		wait := run(t, ctx, p)
		for range 4 { // 3, 6, 9, 12 items delivered in total
			src.Push(1, 2, 3)
			synctest.Wait()
		}
		cancel()
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		// 10 asked; after 3 done 7 > 5 outstanding; after 6 done 4 ≤ 5: ask 6 (back to 10);
		// after 9 done 7; after 12 done 4: ask 6.
		if want := []int{10, 6, 6}; !slices.Equal(asked, want) {
			t.Fatalf("asked %v, want %v", asked, want)
		}
		// The source is asked for what is outstanding: 10, then 7 and 4 as items arrive,
		// then the 1 left plus the 6 asked again, and so on.
		if want := []int{10, 7, 4, 7, 4}; !slices.Equal(src.Calls()[:5], want) {
			t.Fatalf("source asked for %v, want %v first", src.Calls(), want)
		}
	})
}

func TestInFlightNeverExceedsDemand(t *testing.T) {
	src := flowtest.NewSource[int]()
	p := flow.New(flow.Config{})
	s := flow.From(p, "src", src, flow.SourceOptions{Concurrency: 2})
	a := flow.Map(s, "a", func(_ context.Context, v int) (int, error) { return v, nil }, flow.Options{Concurrency: 3, MaxDemand: 7})
	b := flow.FlatMap(a, "b", func(_ context.Context, v int) ([]int, error) { return []int{v, v}, nil }, flow.Options{Concurrency: 2, MaxDemand: 5})
	flow.Sink(b, "c", func(context.Context, int) error { return nil }, flow.Options{Concurrency: 4, MaxDemand: 3})
	for i := range 5000 {
		src.Push(i)
	}
	src.Close()
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	const bound = 3*7 + 2*5 + 4*3
	_, highest := src.InFlight()
	if highest > bound || highest == 0 {
		t.Fatalf("in flight reached %d, bound %d", highest, bound)
	}
	for _, n := range src.Calls() {
		if n > bound {
			t.Fatalf("source asked for %d, more than all demand %d", n, bound)
		}
	}
	if got := statuses(src.Outcomes())[flow.Succeeded]; got != 5000 {
		t.Fatalf("%d succeeded, want 5000", got)
	}
}

func TestOriginAckedAfterAllDescendants(t *testing.T) {
	boom := errors.New("boom")
	src := flowtest.NewSource[int]()
	p := flow.New(flow.Config{})
	parts := flow.FlatMap(flow.From(p, "src", src, flow.SourceOptions{}), "split",
		func(_ context.Context, v int) ([]string, error) {
			switch v {
			case 0:
				return nil, nil // nothing to do: done
			case 1:
				return nil, boom
			}
			out := make([]string, v)
			for i := range out {
				out[i] = fmt.Sprintf("%d/%d", v, i)
			}
			return out, nil
		}, flow.Options{Concurrency: 2})
	var handled sync.Map
	flow.Sink(parts, "handle", func(_ context.Context, s string) error {
		handled.Store(s, true)
		if s == "3/1" {
			return fmt.Errorf("part %s: %w", s, boom)
		}
		if s == "4/2" {
			panic("handler bug")
		}
		return nil
	}, flow.Options{Concurrency: 3})
	src.Push(0, 1, 2, 3, 4, 5)
	src.Close()
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := map[int]flowtest.Outcome[int]{}
	for _, o := range src.Outcomes() {
		if _, dup := got[o.Data]; dup {
			t.Fatalf("message %d acknowledged twice", o.Data)
		}
		got[o.Data] = o
	}
	want := map[int]flow.Status{0: flow.Succeeded, 1: flow.Failed, 2: flow.Succeeded, 3: flow.Failed, 4: flow.Failed, 5: flow.Succeeded}
	for id, st := range want {
		if got[id].Status != st {
			t.Errorf("message %d: %v (%v), want %v", id, got[id].Status, got[id].Err, st)
		}
	}
	if !errors.Is(got[3].Err, boom) || !errors.Is(got[1].Err, boom) {
		t.Errorf("errors not carried to the origin: %v, %v", got[1].Err, got[3].Err)
	}
	var pe *flow.PanicError
	if !errors.As(got[4].Err, &pe) || pe.Stage != "handle" || pe.Value != "handler bug" {
		t.Errorf("panic not reported as a PanicError of its stage: %v", got[4].Err)
	}
	// The failures did not stop the other parts: every part of 3 and 4 was handled.
	for _, s := range []string{"3/0", "3/2", "4/0", "4/1", "4/3"} {
		if _, ok := handled.Load(s); !ok {
			t.Errorf("part %s was not handled", s)
		}
	}
}

// countingAcker records how outcomes arrive: how many calls, how many results.
type countingAcker struct {
	mu      sync.Mutex
	calls   int
	results []flow.Result
}

func (a *countingAcker) Acknowledge(rs []flow.Result) {
	a.mu.Lock()
	a.calls++
	a.results = append(a.results, rs...)
	a.mu.Unlock()
}

// onceSource hands out what batch makes for the first demand, then waits for the end.
func onceSource[T any](batch func(n int) []flow.Message[T]) flow.Source[T] {
	sent := false
	return flow.SourceFunc[T](func(ctx context.Context, n int) ([]flow.Message[T], error) {
		if sent {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		sent = true
		return batch(n), nil
	})
}

// Everything runs in a synctest bubble: once every goroutine is blocked, the source waiting
// for the end, the sink has handled both batches and their outcomes are acknowledged.
func TestAcksAreGroupedPerAcknowledger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a1, a2 := &countingAcker{}, &countingAcker{}
		src := onceSource(func(n int) []flow.Message[int] {
			msgs := make([]flow.Message[int], n)
			for i := range msgs {
				ack := flow.Acknowledger(a1)
				if i%2 == 1 {
					ack = a2
				}
				msgs[i] = flow.Message[int]{Data: i, Acker: ack, Token: i}
			}
			return msgs
		})
		p := flow.New(flow.Config{})
		batches := flow.Batch(flow.From(p, "src", src, flow.SourceOptions{}), "batch", flow.BatchOptions[int]{Size: 20})
		flow.Sink(batches, "sink", func(context.Context, []int) error { return nil }, flow.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		wait := run(t, ctx, p)
		synctest.Wait()
		for i, a := range []*countingAcker{a1, a2} {
			// 40 asked (twice the batch size), alternating acknowledgers: two batches of 20 that
			// the sink takes together, so each acknowledger hears once about its 20.
			a.mu.Lock()
			calls, n := a.calls, len(a.results)
			a.mu.Unlock()
			if calls != 1 || n != 20 {
				t.Errorf("acknowledger %d: %d calls with %d results, want 1 call with 20", i+1, calls, n)
			}
		}
		cancel()
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestBatchBySizeTimeoutAndKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := flowtest.NewSource[int]()
		p := flow.New(flow.Config{})
		batches := flow.Batch(flow.From(p, "src", src, flow.SourceOptions{}), "batch", flow.BatchOptions[int]{
			Size: 3, Timeout: time.Second, Key: func(v int) string { return fmt.Sprint(v % 2) },
		})
		var mu sync.Mutex
		var got [][]int
		var at []time.Duration
		start := time.Now()
		flow.Sink(batches, "sink", func(_ context.Context, b []int) error {
			mu.Lock()
			got = append(got, b)
			at = append(at, time.Since(start))
			mu.Unlock()
			if b[0] == 1 {
				return errors.New("bad batch")
			}
			return nil
		}, flow.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		wait := run(t, ctx, p)
		src.Push(1, 2, 3, 4, 5) // odd: 1 3 5 full at once; even: 2 4 waits
		synctest.Wait()
		mu.Lock()
		if len(got) != 1 || !slices.Equal(got[0], []int{1, 3, 5}) {
			t.Fatalf("after a full batch: %v", got)
		}
		mu.Unlock()
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if len(got) != 1 {
			t.Fatalf("partial batch emitted before its timeout: %v", got)
		}
		mu.Unlock()
		time.Sleep(time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if len(got) != 2 || !slices.Equal(got[1], []int{2, 4}) || at[1] != time.Second {
			t.Fatalf("partial batch after its timeout: %v at %v", got, at)
		}
		mu.Unlock()
		cancel()
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		byData := map[int]flow.Status{}
		for _, o := range src.Outcomes() {
			byData[o.Data] = o.Status
		}
		want := map[int]flow.Status{1: flow.Failed, 3: flow.Failed, 5: flow.Failed, 2: flow.Succeeded, 4: flow.Succeeded}
		if fmt.Sprint(byData) != fmt.Sprint(want) {
			t.Fatalf("outcomes %v, want %v", byData, want)
		}
	})
}

func TestBatchFlushesWhenInputEnds(t *testing.T) {
	src := flowtest.NewSource[int]()
	p := flow.New(flow.Config{})
	var got [][]int
	flow.Sink(flow.Batch(flow.From(p, "src", src, flow.SourceOptions{}), "batch", flow.BatchOptions[int]{Size: 4, Timeout: time.Hour}),
		"sink", func(_ context.Context, b []int) error { got = append(got, b); return nil }, flow.Options{})
	src.Push(1, 2, 3, 4, 5, 6)
	src.Close()
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[[1 2 3 4] [5 6]]" {
		t.Fatalf("batches %v", got)
	}
}

// In a synctest bubble a handler's pause lets every other worker run until it blocks: a
// second worker given the same key meanwhile would be seen, every time, not by chance.
func TestPartitionKeepsOrderPerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type ev struct {
			key string
			seq int
		}
		src := flowtest.NewSource[ev]()
		p := flow.New(flow.Config{})
		parted := flow.Partition(flow.From(p, "src", src, flow.SourceOptions{}), "by-key", func(e ev) string { return e.key }, flow.Options{MaxDemand: 50})
		var mu sync.Mutex
		last := map[string]int{}
		active := map[string]bool{}
		var bad []string
		flow.Sink(parted, "apply", func(_ context.Context, e ev) error {
			mu.Lock()
			if active[e.key] {
				bad = append(bad, fmt.Sprintf("%s handled twice at once", e.key))
			}
			if e.seq != last[e.key]+1 {
				bad = append(bad, fmt.Sprintf("%s: %d after %d", e.key, e.seq, last[e.key]))
			}
			active[e.key] = true
			mu.Unlock()
			time.Sleep(time.Microsecond)
			mu.Lock()
			last[e.key] = e.seq
			active[e.key] = false
			mu.Unlock()
			return nil
		}, flow.Options{Concurrency: 4, MaxDemand: 5})
		for i := 1; i <= 200; i++ {
			for _, k := range []string{"a", "b", "c", "d", "e", "f", "g"} {
				src.Push(ev{k, i})
			}
		}
		src.Close()
		if err := p.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		if len(bad) > 0 {
			t.Fatalf("%d ordering violations, first: %s", len(bad), bad[0])
		}
		for k, n := range last {
			if n != 200 {
				t.Errorf("key %s ended at %d, want 200", k, n)
			}
		}
	})
}
func TestBroadcastGivesEveryItemToEachBranch(t *testing.T) {
	src := flowtest.NewSource[int]()
	p := flow.New(flow.Config{})
	branches := flow.Broadcast(flow.From(p, "src", src, flow.SourceOptions{}), "fan", 2, flow.Options{})
	var left, right atomic.Int64
	flow.Sink(branches[0], "left", func(_ context.Context, v int) error { left.Add(int64(v)); return nil }, flow.Options{})
	flow.Sink(branches[1], "right", func(_ context.Context, v int) error {
		right.Add(int64(v))
		if v == 7 {
			return errors.New("right rejects 7")
		}
		return nil
	}, flow.Options{Concurrency: 2})
	for i := 1; i <= 100; i++ {
		src.Push(i)
	}
	src.Close()
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if left.Load() != 5050 || right.Load() != 5050 {
		t.Fatalf("left %d right %d, want 5050 each", left.Load(), right.Load())
	}
	outs := src.Outcomes()
	if len(outs) != 100 {
		t.Fatalf("%d outcomes, want 100", len(outs))
	}
	for _, o := range outs {
		if want := map[bool]flow.Status{true: flow.Failed, false: flow.Succeeded}[o.Data == 7]; o.Status != want {
			t.Errorf("message %d: %v, want %v", o.Data, o.Status, want)
		}
	}
}

// Shutdown: new receives stop at once; in-flight items get the grace period; what is left
// after it is released; Run returns when every goroutine has ended.
func TestShutdownReleasesWhatIsLeftAfterGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := flowtest.NewSource[int]()
		p := flow.New(flow.Config{GracePeriod: 5 * time.Second})
		mapped := flow.Map(flow.From(p, "src", src, flow.SourceOptions{}), "map",
			func(_ context.Context, v int) (int, error) { return v, nil }, flow.Options{MaxDemand: 4})
		flow.Sink(mapped, "slow", func(ctx context.Context, v int) error {
			d := time.Second
			if v == 1 {
				d = time.Hour // outlives the grace period
			}
			select {
			case <-time.After(d):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, flow.Options{Concurrency: 2, MaxDemand: 2})
		src.Push(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)
		ctx, cancel := context.WithCancel(t.Context())
		wait := run(t, ctx, p)
		synctest.Wait()
		received := len(src.Calls())
		queued := src.Len()
		cancel()
		start := time.Now()
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != 5*time.Second {
			t.Fatalf("shutdown took %v, want the 5s grace period", took)
		}
		if len(src.Calls()) != received {
			t.Fatalf("source was asked again after cancel")
		}
		st := statuses(src.Outcomes())
		inflight := 20 - queued
		if st[flow.Released] == 0 || st[flow.Succeeded] == 0 || st[flow.Failed] != 0 {
			t.Fatalf("outcomes %v", st)
		}
		if st[flow.Released]+st[flow.Succeeded] != inflight {
			t.Fatalf("outcomes %v for %d in flight", st, inflight)
		}
		if now, _ := src.InFlight(); now != 0 {
			t.Fatalf("%d messages neither acknowledged nor released", now)
		}
		if got := src.Len(); got != 20-st[flow.Succeeded] {
			t.Fatalf("%d messages back in the queue, want %d", got, 20-st[flow.Succeeded])
		}
	})
}

func TestTestMessage(t *testing.T) {
	src := flowtest.NewSource[string]()
	p := flow.New(flow.Config{})
	flow.Sink(flow.From(p, "src", src, flow.SourceOptions{}), "check", func(_ context.Context, s string) error {
		if s == "" {
			return errors.New("empty")
		}
		return nil
	}, flow.Options{})
	ctx, cancel := context.WithCancel(t.Context())
	wait := run(t, ctx, p)
	good, err := src.Test(ctx, "hello")
	if err != nil || good.Status != flow.Succeeded {
		t.Fatalf("Test(hello) = %v, %v", good, err)
	}
	bad, err := src.Test(ctx, "")
	if err != nil || bad.Status != flow.Failed || bad.Err == nil {
		t.Fatalf("Test(\"\") = %v, %v", bad, err)
	}
	cancel()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestSourceErrorStopsThePipeline(t *testing.T) {
	broken := errors.New("access denied")
	calls := 0
	src := flow.SourceFunc[int](func(ctx context.Context, n int) ([]flow.Message[int], error) {
		calls++
		if calls == 3 {
			return nil, broken
		}
		return []flow.Message[int]{{Data: calls}}, nil
	})
	p := flow.New(flow.Config{})
	var handled atomic.Int64
	flow.Sink(flow.From(p, "src", src, flow.SourceOptions{}), "sink", func(context.Context, int) error { handled.Add(1); return nil }, flow.Options{})
	err := p.Run(t.Context())
	if !errors.Is(err, broken) {
		t.Fatalf("Run = %v, want the source's error", err)
	}
	if handled.Load() != 2 {
		t.Fatalf("%d items handled, want the 2 received before the error", handled.Load())
	}
}

func TestSourceThatOverdeliversIsStopped(t *testing.T) {
	a := &countingAcker{}
	src := flow.SourceFunc[int](func(ctx context.Context, n int) ([]flow.Message[int], error) {
		msgs := make([]flow.Message[int], n+2)
		for i := range msgs {
			msgs[i] = flow.Message[int]{Data: i, Acker: a, Token: i}
		}
		return msgs, nil
	})
	p := flow.New(flow.Config{})
	flow.Sink(flow.From(p, "src", src, flow.SourceOptions{}), "sink", func(context.Context, int) error { return nil }, flow.Options{MaxDemand: 4})
	if err := p.Run(t.Context()); err == nil {
		t.Fatal("Run accepted a source that returns more than asked for")
	}
	released := 0
	for _, r := range a.results {
		if r.Status == flow.Released {
			released++
		}
	}
	if released != 2 || len(a.results) != 6 {
		t.Fatalf("results %v: want the 2 extra released and the 4 asked for handled", a.results)
	}
}

func TestConfigErrors(t *testing.T) {
	src := flowtest.NewSource[int]()
	noop := func(context.Context, int) error { return nil }
	cases := map[string]func(p *flow.Pipeline){
		"consumed twice": func(p *flow.Pipeline) {
			s := flow.From(p, "src", src, flow.SourceOptions{})
			flow.Sink(s, "a", noop, flow.Options{})
			flow.Sink(s, "b", noop, flow.Options{})
		},
		"not consumed": func(p *flow.Pipeline) {
			flow.From(p, "src", src, flow.SourceOptions{})
		},
		"min not below max": func(p *flow.Pipeline) {
			flow.Sink(flow.From(p, "src", src, flow.SourceOptions{}), "a", noop, flow.Options{MaxDemand: 4, MinDemand: 4})
		},
		"negative batch size": func(p *flow.Pipeline) {
			b := flow.Batch(flow.From(p, "src", src, flow.SourceOptions{}), "b", flow.BatchOptions[int]{Size: -1})
			flow.Sink(b, "s", func(context.Context, []int) error { return nil }, flow.Options{})
		},
		// A relay is one goroutine: options it cannot honour are refused, not ignored.
		"partition with concurrency": func(p *flow.Pipeline) {
			in := flow.From(p, "src", src, flow.SourceOptions{})
			part := flow.Partition(in, "by key", func(v int) string { return fmt.Sprint(v) }, flow.Options{Concurrency: 4})
			flow.Sink(part, "s", noop, flow.Options{Concurrency: 4})
		},
		"broadcast with concurrency": func(p *flow.Pipeline) {
			for i, s := range flow.Broadcast(flow.From(p, "src", src, flow.SourceOptions{}), "copy", 2, flow.Options{Concurrency: 2}) {
				flow.Sink(s, fmt.Sprint("s", i), noop, flow.Options{})
			}
		},
		"broadcast with a limit": func(p *flow.Pipeline) {
			for i, s := range flow.Broadcast(flow.From(p, "src", src, flow.SourceOptions{}), "copy", 2, flow.Options{Limit: flow.NewLimit(1)}) {
				flow.Sink(s, fmt.Sprint("s", i), noop, flow.Options{})
			}
		},
	}
	// Each is a *flow.ConfigError naming the stage at fault, and says why.
	stages := map[string]string{
		"consumed twice":             "b",
		"not consumed":               "src",
		"min not below max":          "a",
		"negative batch size":        "b",
		"partition with concurrency": "by key",
		"broadcast with concurrency": "copy",
		"broadcast with a limit":     "copy",
	}
	reasons := map[string]string{
		"consumed twice":             `stage "b": stream "src" is already consumed`,
		"not consumed":               `stream "src" is not consumed by any stage`,
		"min not below max":          `stage "a": MinDemand 4 is not below MaxDemand 4`,
		"negative batch size":        `stage "b": Size -1`,
		"partition with concurrency": `stage "by key": Concurrency 4: one goroutine routes`,
		"broadcast with concurrency": `stage "copy": Concurrency 2: one goroutine routes`,
		"broadcast with a limit":     `stage "copy": a Limit needs workers`,
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			p := flow.New(flow.Config{})
			build(p)
			err := p.Run(t.Context())
			if err == nil || !strings.Contains(err.Error(), reasons[name]) {
				t.Fatalf("Run = %v, want an error saying %q", err, reasons[name])
			}
			if ce, ok := errors.AsType[*flow.ConfigError](err); !ok || ce.Stage != stages[name] {
				t.Fatalf("Run = %v (%T), want a *flow.ConfigError for stage %q", err, err, stages[name])
			}
		})
	}
	p := flow.New(flow.Config{})
	flow.Sink(flow.From(p, "src", src, flow.SourceOptions{}), "a", noop, flow.Options{})
	src.Close()
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Run(t.Context()); !errors.Is(err, flow.ErrRunning) {
		t.Fatalf("second Run = %v, want ErrRunning", err)
	}
}

// A million items through a three-stage pipeline, under -race in CI.
func TestMillionItems(t *testing.T) {
	const n = 1_000_000
	var acked atomic.Int64
	p := flow.New(flow.Config{})
	s := flow.From(p, "src", countingSource(n, &acked), flow.SourceOptions{})
	a := flow.Map(s, "inc", func(_ context.Context, v int) (int, error) { return v + 1, nil }, flow.Options{Concurrency: 2, MaxDemand: 1000})
	b := flow.Filter(a, "all", func(v int) bool { return v > 0 }, flow.Options{Concurrency: 2, MaxDemand: 1000})
	var sum atomic.Int64
	flow.Sink(b, "sum", func(_ context.Context, v int) error { sum.Add(int64(v)); return nil }, flow.Options{Concurrency: 2, MaxDemand: 1000})
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if acked.Load() != n || sum.Load() != int64(n)*(n+1)/2 {
		t.Fatalf("acked %d, sum %d", acked.Load(), sum.Load())
	}
}

// countingSource hands out the integers 0..n-1, then io.EOF, and counts acknowledgements.
func countingSource(n int, acked *atomic.Int64) flow.Source[int] {
	ack := ackCounter{acked}
	next := 0
	return flow.SourceFunc[int](func(ctx context.Context, want int) ([]flow.Message[int], error) {
		if next == n {
			return nil, io.EOF
		}
		k := min(want, n-next)
		msgs := make([]flow.Message[int], k)
		for i := range msgs {
			msgs[i] = flow.Message[int]{Data: next, Acker: ack}
			next++
		}
		return msgs, nil
	})
}

type ackCounter struct{ n *atomic.Int64 }

func (a ackCounter) Acknowledge(rs []flow.Result) { a.n.Add(int64(len(rs))) }

// Panics in the middle of a batch fail their own items only: the batch goes on after each,
// in order, in both a map stage and a sink.
func TestPanicsMidBatch(t *testing.T) {
	src := flowtest.NewSource[int]()
	p := flow.New(flow.Config{})
	s := flow.From(p, "src", src, flow.SourceOptions{})
	m := flow.Map(s, "map", func(_ context.Context, v int) (int, error) {
		if v == 2 || v == 5 {
			panic(fmt.Sprint("map ", v))
		}
		return v, nil
	}, flow.Options{Concurrency: 1, MaxDemand: 10})
	var sunk []int
	flow.Sink(m, "sink", func(_ context.Context, v int) error {
		sunk = append(sunk, v)
		if v == 7 {
			panic("sink 7")
		}
		return nil
	}, flow.Options{Concurrency: 1, MaxDemand: 10})
	src.Push(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	src.Close()
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 3, 4, 6, 7, 8, 9}; !slices.Equal(sunk, want) {
		t.Fatalf("sink saw %v, want %v", sunk, want)
	}
	got := map[int]flowtest.Outcome[int]{}
	for _, o := range src.Outcomes() {
		got[o.Data] = o
	}
	for v := range 10 {
		o := got[v]
		var pe *flow.PanicError
		switch v {
		case 2, 5, 7:
			stage, value := "map", fmt.Sprint("map ", v)
			if v == 7 {
				stage, value = "sink", "sink 7"
			}
			if o.Status != flow.Failed || !errors.As(o.Err, &pe) || pe.Stage != stage || pe.Value != value {
				t.Errorf("item %d: %v %v, want a panic of %s", v, o.Status, o.Err, stage)
			}
		default:
			if o.Status != flow.Succeeded {
				t.Errorf("item %d: %v %v", v, o.Status, o.Err)
			}
		}
	}
}

// A batch's handler time is reported once, on its Done event, or on its Failed event when
// nothing in it succeeded: summed over the events, it is the time the handlers ran.
func TestBusyReportedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := flowtest.NewSource[int]()
		var mu sync.Mutex
		var busy time.Duration
		var kinds []flow.EventKind
		p := flow.New(flow.Config{Observer: flow.ObserverFunc(func(e flow.Event) {
			if e.Stage != "sink" || (e.Kind != flow.EventDone && e.Kind != flow.EventFailed) {
				return
			}
			mu.Lock()
			busy += e.Busy
			kinds = append(kinds, e.Kind)
			mu.Unlock()
		})})
		s := flow.From(p, "src", src, flow.SourceOptions{})
		flow.Sink(s, "sink", func(_ context.Context, v int) error {
			time.Sleep(time.Second)
			if v%2 == 1 || v >= 4 {
				return errors.New("odd or late")
			}
			return nil
		}, flow.Options{Concurrency: 1, MaxDemand: 4})
		src.Push(0, 1, 2, 3) // a batch with both outcomes
		wait := run(t, t.Context(), p)
		synctest.Wait()
		src.Push(5, 7) // a batch that only fails
		src.Close()
		if err := wait(); err != nil {
			t.Fatal(err)
		}
		if want := []flow.EventKind{flow.EventDone, flow.EventFailed, flow.EventFailed}; !slices.Equal(kinds, want) {
			t.Fatalf("events %v, want %v", kinds, want)
		}
		if busy != 6*time.Second {
			t.Fatalf("busy %v summed over the events, want 6s", busy)
		}
	})
}

// funcAcker cannot be compared with ==: a func field.
type funcAcker struct{ f func([]flow.Result) }

func (a funcAcker) Acknowledge(rs []flow.Result) { a.f(rs) }

// An acknowledger that cannot be compared ends the run with an error that says so, and the
// messages that carried it are released, instead of a panic when outcomes are grouped.
func TestNonComparableAcknowledger(t *testing.T) {
	var mu sync.Mutex
	var released int
	acker := funcAcker{f: func(rs []flow.Result) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			if r.Status == flow.Released {
				released++
			}
		}
	}}
	src := onceSource(func(int) []flow.Message[int] {
		return []flow.Message[int]{{Data: 1, Acker: acker}, {Data: 2, Acker: acker}}
	})
	p := flow.New(flow.Config{})
	s := flow.From(p, "src", src, flow.SourceOptions{})
	flow.Sink(s, "sink", func(context.Context, int) error { return nil }, flow.Options{MaxDemand: 2})
	err := p.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "not comparable") {
		t.Fatalf("Run = %v, want an error about the acknowledger", err)
	}
	if released != 2 {
		t.Fatalf("%d messages released, want 2", released)
	}
}

// Abort during the grace period ends it at once: the handlers' contexts are cancelled and
// what is in flight is released. Abort before any cancel also stops receiving.
func TestAbortCutsTheGracePeriodShort(t *testing.T) {
	for _, cancelFirst := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			src := flowtest.NewSource[int]()
			p := flow.New(flow.Config{GracePeriod: time.Hour})
			flow.Sink(flow.From(p, "src", src, flow.SourceOptions{}), "slow", func(ctx context.Context, v int) error {
				select {
				case <-time.After(24 * time.Hour):
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}, flow.Options{Concurrency: 2, MaxDemand: 2})
			src.Push(0, 1, 2, 3, 4, 5)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			wait := run(t, ctx, p)
			synctest.Wait()
			if cancelFirst {
				cancel()
				time.Sleep(time.Second)
			}
			start := time.Now()
			p.Abort()
			p.Abort() // harmless
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took != 0 {
				t.Fatalf("Run returned %v after Abort, want at once", took)
			}
			st := statuses(src.Outcomes())
			if st[flow.Succeeded] != 0 || st[flow.Failed] != 0 || st[flow.Released] == 0 {
				t.Fatalf("outcomes %v, want only releases", st)
			}
			if now, _ := src.InFlight(); now != 0 {
				t.Fatalf("%d messages neither acknowledged nor released", now)
			}
		})
	}
}
