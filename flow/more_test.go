package flow_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/flow/flowtest"
)

// With concurrency K on a source, at most K receives are in flight, and together they never
// ask for more than the outstanding demand.
func TestConcurrentReceivesShareTheDemand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const k, workers, maxDemand = 3, 4, 5
		var mu sync.Mutex
		inFlight, asked, maxInFlight, maxAsked, calls := 0, 0, 0, 0, 0
		src := flow.SourceFunc[int](func(ctx context.Context, n int) ([]flow.Message[int], error) {
			mu.Lock()
			calls++
			inFlight++
			asked += n
			maxInFlight = max(maxInFlight, inFlight)
			maxAsked = max(maxAsked, asked)
			mu.Unlock()
			defer func() {
				mu.Lock()
				inFlight--
				asked -= n
				mu.Unlock()
			}()
			// Slow, partial answers: one item after a while, so that demand stays open and
			// several receives overlap.
			select {
			case <-time.After(10 * time.Millisecond):
				return []flow.Message[int]{{Data: n}}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
		p := flow.New(flow.Config{})
		flow.Sink(flow.From(p, "src", src, flow.SourceOptions{Concurrency: k}), "sink",
			func(context.Context, int) error { time.Sleep(25 * time.Millisecond); return nil },
			flow.Options{Concurrency: workers, MaxDemand: maxDemand})
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
		if maxInFlight > k || maxInFlight < 2 {
			t.Errorf("%d receives in flight at most, want 2..%d", maxInFlight, k)
		}
		if maxAsked > workers*maxDemand {
			t.Errorf("receives in flight asked for %d together, more than the demand %d", maxAsked, workers*maxDemand)
		}
		if calls < 10 {
			t.Errorf("only %d receives: the test did not exercise the source", calls)
		}
	})
}

func TestLogObserverTracesDemand(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src := flowtest.NewSource[int]()
	p := flow.New(flow.Config{Observer: flow.LogObserver(logger)})
	flow.Sink(flow.From(p, "sqs", src, flow.SourceOptions{}), "consumer", func(context.Context, int) error { return nil }, flow.Options{MaxDemand: 10})
	src.Push(1, 2, 3)
	src.Close()
	if err := p.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	log := buf.String()
	for _, want := range []string{`msg="handling demand of 10" stage=consumer`, `msg="received 3" stage=sqs`, `msg="done 3" stage=consumer`} {
		if !strings.Contains(log, want) {
			t.Errorf("trace lacks %q:\n%s", want, log)
		}
	}
	buf.Reset()
	quiet := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	src2 := flowtest.NewSource[int]()
	p2 := flow.New(flow.Config{Observer: flow.LogObserver(quiet)})
	// A failure is the handler's to log: the runtime's count of it is trace too.
	flow.Sink(flow.From(p2, "sqs", src2, flow.SourceOptions{}), "consumer", func(_ context.Context, v int) error {
		if v == 2 {
			return errors.New("no good")
		}
		return nil
	}, flow.Options{})
	src2.Push(1, 2)
	src2.Close()
	if err := p2.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("runtime trace logged above debug level: %s", buf.String())
	}
}
