package app

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/sqs"
)

// TestLogsClearTheLiveLine: on a terminal, a log record is written on a line of its own,
// never glued to the live status line, which is drawn again below it.
func TestLogsClearTheLiveLine(t *testing.T) {
	var term bytes.Buffer
	s := &StatusLine{W: &term, Terminal: true}
	log := slog.New(slog.NewTextHandler(s.Logs(), &slog.HandlerOptions{ReplaceAttr: noTime}))
	log.Warn("before any status")
	s.mu.Lock()
	term.WriteString("\r\033[Kreceived 3") // as print draws it
	s.live = "received 3"
	s.mu.Unlock()
	log.Warn("object not found")
	want := "level=WARN msg=\"before any status\"\n" +
		"\r\033[Kreceived 3" +
		"\r\033[Klevel=WARN msg=\"object not found\"\nreceived 3"
	if got := term.String(); got != want {
		t.Errorf("terminal got %q\nwant %q", got, want)
	}

	var plain bytes.Buffer
	p := &StatusLine{W: &plain}
	if p.Logs() != &plain {
		t.Error("without a terminal, Logs is not W itself")
	}
}

func noTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

type inFlightStats sqs.Stats

func (s inFlightStats) Stats() sqs.Stats { return sqs.Stats(s) }

// TestStatusCountsMessagesNotDeliveries: a message SQS delivers twice counts once among the
// messages of a drain run, which keeps them; a run that does not keep them says deliveries.
func TestStatusCountsMessagesNotDeliveries(t *testing.T) {
	for _, keep := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			src := &ackRecorder{batches: [][]sqs.Message{
				{{ID: "m1", ReceiveCount: 1}, {ID: "m2", ReceiveCount: 1}},
				{{ID: "m1", ReceiveCount: 2}}, // m1 again: its visibility ran out while it was worked on
			}}
			led := newLedger(src, newGate(slog.New(slog.DiscardHandler), DefaultMaxFaultTime, func(error) {}), keep)
			tl := &tally{messages: led.messages}
			hold := make(chan struct{})
			p := flow.New(flow.Config{Observer: tl})
			flow.Sink(flow.From(p, "sqs", led, flow.SourceOptions{}), "write", func(ctx context.Context, m sqs.Message) error {
				select {
				case <-hold:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}, flow.Options{Concurrency: 3, MaxDemand: 1})
			ctx, cancel := context.WithCancel(t.Context())
			ran := make(chan error, 1)
			go func() { ran <- p.Run(ctx) }()
			synctest.Wait()

			line := statusText(tl, inFlightStats{InFlight: 3}, time.Second)
			want := "messages 2 (3 deliveries)  in flight 3"
			if !keep {
				want = "deliveries 3  in flight 3"
			}
			if !strings.HasPrefix(line, want) {
				t.Errorf("keep %v: status %q, want it to begin %q", keep, line, want)
			}
			close(hold)
			synctest.Wait()
			cancel()
			if err := <-ran; err != nil {
				t.Fatal(err)
			}
			if !keep {
				return
			}
			if d := led.tally(); d.Total() != 2 || d.Succeeded != 2 {
				t.Errorf("the summary's distinct messages: %+v, want 2, both succeeded", d)
			}
		})
	}
}

// The summary of a run that does not keep its messages says deliveries; a drain run's says
// the distinct messages, and the deliveries they took.
func TestSummarySaysDeliveries(t *testing.T) {
	for _, c := range []struct {
		sum  Summary
		want string
	}{
		{Summary{Messages: 6}, "Summary: 6 deliveries received, "},
		{Summary{Messages: 6, Distinct: Tally{Succeeded: 2}}, "Summary: 2 messages (2 succeeded) in 6 deliveries, "},
	} {
		if got := c.sum.String(); !strings.HasPrefix(got, c.want) {
			t.Errorf("%+v: %q, want it to begin %q", c.sum, got, c.want)
		}
	}
}
