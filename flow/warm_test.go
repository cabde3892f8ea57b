package flow_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/flow/flowtest"
)

// Items go to the worker that began waiting last, so a stage keeps only as many workers busy
// as its load needs: one item at a time is always the same worker's, two at a time the same
// two workers', however many the stage has.
func TestTheLastIdleWorkerTakesTheItem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := flowtest.NewSource[int]()
		var mu sync.Mutex
		took := map[int]int{} // worker → items taken
		p := flow.New(flow.Config{Observer: flow.ObserverFunc(func(e flow.Event) {
			if e.Stage == "work" && e.Kind == flow.EventTaken {
				mu.Lock()
				took[e.Worker] += e.N
				mu.Unlock()
			}
		})})
		flow.Sink(flow.From(p, "queue", src, flow.SourceOptions{}), "work",
			func(context.Context, int) error { return nil }, flow.Options{Concurrency: 16, MaxDemand: 1})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- p.Run(ctx) }()
		synctest.Wait()

		workers := func() map[int]int {
			mu.Lock()
			defer mu.Unlock()
			m := map[int]int{}
			for w, n := range took {
				m[w] = n
			}
			clear(took)
			return m
		}
		for i := range 50 {
			src.Push(i)
			synctest.Wait()
		}
		if got := workers(); len(got) != 1 {
			t.Errorf("50 items one at a time went to %d workers of 16 (%v), want all to one", len(got), got)
		}
		for i := range 50 {
			src.Push(2*i, 2*i+1)
			synctest.Wait()
		}
		if got := workers(); len(got) > 2 {
			t.Errorf("50 pairs of items went to %d workers of 16 (%v), want at most 2", len(got), got)
		}
		src.Close()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if outs := src.Outcomes(); len(outs) != 150 || statuses(outs)[flow.Succeeded] != 150 {
			t.Fatalf("outcomes: %d recorded, %v", len(outs), statuses(outs))
		}
	})
}
