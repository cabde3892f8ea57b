// Command slowserver replays step 4 of the Palleto seed ("simulate waiting") with the flow
// runtime: a server that has nothing at first, then hands out two events at a time, slowly.
// Three consumers each ask for 10. The demand trace shows demand being remembered and met
// as events trickle in, without the polling loops and restarts the original needed.
//
//	go run ./examples/slowserver
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/palleto/palleto/flow"
)

// slowServer has no events for its first few looks, then two per look, 100 ms apart.
type slowServer struct {
	mu    sync.Mutex
	looks int
	sent  int
	total int
}

func (s *slowServer) Receive(ctx context.Context, n int) ([]flow.Message[string], error) {
	for {
		select { // every look at the server takes a while
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s.mu.Lock()
		s.looks++
		look, left := s.looks, s.total-s.sent
		s.mu.Unlock()
		fmt.Printf("server: look %d, asked for %d events\n", look, n)
		if look > 3 && left > 0 {
			k := min(n, 2, left)
			msgs := make([]flow.Message[string], k)
			for i := range msgs {
				msgs[i] = flow.Message[string]{Data: fmt.Sprintf("hey-%d", s.sent+i)}
			}
			s.mu.Lock()
			s.sent += k
			s.mu.Unlock()
			return msgs, nil
		}
	}
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	srv := &slowServer{total: 24}
	p := flow.New(flow.Config{Observer: flow.LogObserver(log), GracePeriod: time.Second})
	events := flow.From(p, "SQS.Producer", srv, flow.SourceOptions{})
	var mu sync.Mutex
	consumed := 0
	flow.Sink(events, "Consumer", func(_ context.Context, e string) error {
		mu.Lock()
		consumed++
		done := consumed == srv.total
		mu.Unlock()
		fmt.Println("consumed:", strings.ToUpper(e[:1])+e[1:])
		if done {
			cancel() // every event is in: shut down
		}
		return nil
	}, flow.Options{Concurrency: 3, MaxDemand: 10})
	if err := p.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("consumed %d events in %d looks\n", consumed, srv.looks)
}
