package app

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

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/object"
	"github.com/palleto/palleto/sqs"
)

// ackRecorder is a message source that hands out its batches, one receive at a time (none
// when it has none), then waits for the end; it records the outcomes it is given.
type ackRecorder struct {
	mu      sync.Mutex
	batches [][]sqs.Message
	results []flow.Result
	// maxReceive is the queue's maxReceiveCount, 0 for no redrive policy.
	maxReceive int
}

func (a *ackRecorder) LastDelivery(n int) bool { return a.maxReceive > 0 && n >= a.maxReceive }

func (a *ackRecorder) Receive(ctx context.Context, n int) ([]flow.Message[sqs.Message], error) {
	a.mu.Lock()
	if len(a.batches) == 0 {
		a.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	b := a.batches[0][:min(n, len(a.batches[0]))]
	a.batches[0] = a.batches[0][len(b):]
	if len(a.batches[0]) == 0 {
		a.batches = a.batches[1:]
	}
	a.mu.Unlock()
	msgs := make([]flow.Message[sqs.Message], len(b))
	for i, m := range b {
		msgs[i] = flow.Message[sqs.Message]{Data: m, Token: m.ID}
	}
	return msgs, nil
}

func (a *ackRecorder) Acknowledge(rs []flow.Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.results = append(a.results, rs...)
}

// syncBuffer is a log destination that tests can read while the handler writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWorkCutOffAtMaxWorkTime: a download that never ends is cancelled exactly
// --max-work-time after its message was received, not before; the message is then released
// (visible again at once, no failure counted, intake not paused) with one warning naming the
// message, the key and the limit.
func TestWorkCutOffAtMaxWorkTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 10 * time.Minute
		var logs syncBuffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		stalled := object.GetterFunc(func(ctx context.Context, _ *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
			<-ctx.Done()
			return nil, ctx.Err() // what the SDK returns: a timeout, which alone would pass for S3's fault
		})
		st := &stages{s3: stalled, memLimit: 1 << 20, onMissing: OnMissingFail, log: log, maxWork: limit}
		received := time.Now()
		body := `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",` +
			`"s3":{"bucket":{"name":"b"},"object":{"key":"slow.gz","size":3,"eTag":"e","sequencer":"01"}}}]}`
		jobs, err := st.parseMessage(t.Context(), sqs.Message{ID: "m1", Body: body, ReceivedAt: received})
		if err != nil || len(jobs) != 1 {
			t.Fatalf("parseMessage = %v, %v", jobs, err)
		}
		time.Sleep(2 * time.Minute) // the object waited for a download slot: the time counts

		type fetchResult struct {
			at  time.Duration
			err error
		}
		done := make(chan fetchResult, 1)
		go func() {
			_, err := st.fetch(t.Context(), jobs[0])
			done <- fetchResult{time.Since(received), err}
		}()
		time.Sleep(limit - 2*time.Minute - time.Nanosecond)
		synctest.Wait()
		select {
		case r := <-done:
			t.Fatalf("download ended %v after the receipt, before the limit: %v", r.at, r.err)
		default:
		}
		r := <-done
		var over *overtime
		if r.at != limit || !errors.As(r.err, &over) {
			t.Fatalf("download ended %v after the receipt with %v; want %v, cut off by --max-work-time", r.at, r.err, limit)
		}

		src := &ackRecorder{}
		g := newGate(log, time.Hour, func(error) {})
		led := newLedger(src, g, true)
		var failures int
		led.outcome = func(_ *ticket, r flow.Result) {
			if r.Status == flow.Failed {
				failures++
			}
		}
		led.Acknowledge([]flow.Result{{Token: &ticket{msg: flow.Message[sqs.Message]{Data: sqs.Message{ID: "m1", ReceiveCount: 1}, Token: "source's"}}, Status: flow.Failed, Err: r.err}})
		if len(src.results) != 1 || src.results[0].Status != flow.Released || src.results[0].Err != nil || src.results[0].Token != "source's" {
			t.Fatalf("the source was told %+v; want the message released", src.results)
		}
		if n, paused := g.Pauses(); n != 0 || paused || failures != 0 {
			t.Errorf("pauses %d, paused %v, failures logged %d; want none", n, paused, failures)
		}
		if tl := led.tally(); tl.Released != 1 || tl.Failed() != 0 {
			t.Errorf("tally %+v; want 1 released", tl)
		}
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "message_id=m1") ||
			!strings.Contains(lines[0], "key=slow.gz") || !strings.Contains(lines[0], "limit=10m0s") {
			t.Errorf("log:\n%s\nwant one warning naming message m1, key slow.gz and the limit 10m0s", logs.String())
		}
	})
}

// TestMaxWorkTimeSetsTheHeartbeat: the SQS source keeps a message hidden for --max-work-time
// and a margin, within SQS's 12 h.
func TestMaxWorkTimeSetsTheHeartbeat(t *testing.T) {
	for _, c := range []struct{ work, want time.Duration }{
		{0, time.Hour + workMargin},
		{5 * time.Minute, 5*time.Minute + workMargin},
		{12 * time.Hour, 12 * time.Hour},
	} {
		cfg := Config{QueueURL: "http://q", MaxWorkTime: c.work}
		cfg.setDefaults()
		if got := cfg.sqsConfig().MaxExtension; got != c.want {
			t.Errorf("MaxWorkTime %v: MaxExtension %v, want %v", c.work, got, c.want)
		}
	}
	if err := (Config{QueueURL: "http://q", MaxWorkTime: 13 * time.Hour}).Validate(); err == nil || !strings.Contains(err.Error(), "max-work-time") {
		t.Errorf("MaxWorkTime 13h: %v, want an error naming --max-work-time", err)
	}
}
