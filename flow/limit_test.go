package flow_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/flow/flowtest"
)

// A Limit keeps the workers above it out: they ask for nothing, so the source is asked for
// no more than the admitted workers' demand, and raising the limit lets more work at once.
func TestLimitFollowsChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := flowtest.NewSource[int]()
		for i := range 40 {
			src.Push(i)
		}
		src.Close()
		lim := flow.NewLimit(1)
		var mu sync.Mutex
		busy, maxBusy := 0, 0
		p := flow.New(flow.Config{})
		flow.Sink(flow.From(p, "src", src, flow.SourceOptions{}), "work", func(context.Context, int) error {
			mu.Lock()
			busy++
			maxBusy = max(maxBusy, busy)
			mu.Unlock()
			time.Sleep(10 * time.Millisecond)
			mu.Lock()
			busy--
			mu.Unlock()
			return nil
		}, flow.Options{Concurrency: 4, MaxDemand: 1, Limit: lim})
		done := make(chan error, 1)
		go func() { done <- p.Run(t.Context()) }()

		time.Sleep(55 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if maxBusy != 1 {
			t.Errorf("limit 1: %d handlers at once, want 1", maxBusy)
		}
		mu.Unlock()
		for _, n := range src.Calls() {
			if n > 1 {
				t.Errorf("limit 1 with MaxDemand 1: the source was asked for %d", n)
			}
		}

		lim.Set(3)
		time.Sleep(55 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if maxBusy != 3 {
			t.Errorf("limit 3: %d handlers at once at most, want 3", maxBusy)
		}
		maxBusy = 0
		mu.Unlock()

		lim.Set(2)
		time.Sleep(25 * time.Millisecond) // those above the new limit finish what they hold
		synctest.Wait()
		mu.Lock()
		maxBusy = busy
		mu.Unlock()
		time.Sleep(55 * time.Millisecond)
		synctest.Wait()
		mu.Lock()
		if maxBusy > 2 {
			t.Errorf("limit lowered to 2: %d handlers at once", maxBusy)
		}
		mu.Unlock()

		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := len(src.Outcomes()); got != 40 {
			t.Errorf("%d outcomes, want 40", got)
		}
	})
}

// Workers kept out by the limit end with the pipeline: Run returns (goleak checks the rest).
func TestLimitedWorkersEndWithTheInput(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := flowtest.NewSource[int]()
		src.Push(1, 2, 3)
		src.Close()
		p := flow.New(flow.Config{})
		flow.Sink(flow.From(p, "src", src, flow.SourceOptions{}), "work",
			func(context.Context, int) error { return nil },
			flow.Options{Concurrency: 8, MaxDemand: 1, Limit: flow.NewLimit(2)})
		if err := p.Run(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := len(src.Outcomes()); got != 3 {
			t.Errorf("%d outcomes, want 3", got)
		}
	})
}

func TestLimitRefusesPartitions(t *testing.T) {
	p := flow.New(flow.Config{})
	src := flowtest.NewSource[int]()
	parts := flow.Partition(flow.From(p, "src", src, flow.SourceOptions{}), "byKey", func(int) string { return "" }, flow.Options{})
	flow.Sink(parts, "work", func(context.Context, int) error { return nil },
		flow.Options{Concurrency: 2, Limit: flow.NewLimit(1)})
	if err := p.Run(t.Context()); err == nil {
		t.Error("Run with a Limit on a partitioned input: no error")
	}
}
