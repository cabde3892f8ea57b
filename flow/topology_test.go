package flow_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/flow/flowtest"
)

// Topology lists the declared stages with their inputs and the options they run with,
// defaults applied.
func TestTopology(t *testing.T) {
	p := flow.New(flow.Config{})
	src := flow.From(p, "src", flowtest.NewSource[int](), flow.SourceOptions{Concurrency: 2})
	m := flow.Map(src, "double", func(_ context.Context, v int) (int, error) { return 2 * v, nil }, flow.Options{Concurrency: 3, MaxDemand: 4})
	b := flow.Batch(m, "batch", flow.BatchOptions[int]{Size: 5, Timeout: time.Second})
	flow.Sink(b, "write", func(context.Context, []int) error { return nil }, flow.Options{})
	got := p.Topology()
	want := []flow.StageInfo{
		{Name: "src", Kind: flow.KindSource, Workers: 2},
		{Name: "double", Kind: flow.KindStage, Input: "src", Workers: 3, MaxDemand: 4},
		{Name: "batch", Kind: flow.KindBatch, Input: "double", Workers: 1, MaxDemand: 10},
		{Name: "write", Kind: flow.KindSink, Input: "batch", Workers: 1, MaxDemand: 10},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Topology() =\n%+v\nwant\n%+v", got, want)
	}
}

// A stage worker reports the items it takes before it handles them, so that taken minus
// finished is what the stage holds: here the one item its handler blocks on.
func TestTakenBeforeDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := flowtest.NewSource[int]()
		var mu sync.Mutex
		held := 0
		p := flow.New(flow.Config{Observer: flow.ObserverFunc(func(e flow.Event) {
			if e.Stage != "sink" {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch e.Kind {
			case flow.EventTaken:
				held += e.N
			case flow.EventDone, flow.EventFailed, flow.EventReleased:
				held -= e.N
			}
		})})
		release := make(chan struct{})
		flow.Sink(flow.From(p, "src", src, flow.SourceOptions{}), "sink", func(ctx context.Context, v int) error {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}, flow.Options{MaxDemand: 1})
		done := make(chan error, 1)
		go func() { done <- p.Run(t.Context()) }()
		src.Push(1)
		synctest.Wait()
		mu.Lock()
		if held != 1 {
			t.Errorf("while the handler runs the stage holds %d, want 1", held)
		}
		mu.Unlock()
		close(release)
		src.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if held != 0 {
			t.Errorf("after the run the stage holds %d, want 0", held)
		}
	})
}
