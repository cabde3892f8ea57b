package sqs

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/flow/flowtest"
	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/local"
)

// Integration tests, each on the embedded backend and on moto_server (see awstest). Receives that an integration test aborts leave a
// long poll running inside moto, which takes messages that arrive meanwhile; tests that
// abort receives and then look at the queue use short polling (WaitTime -1) for that reason.

var queueSeq atomic.Int64

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// newQueue creates a queue named after the test.
func newQueue(t *testing.T, c *awssqs.Client, o moto.QueueOptions) moto.Queue {
	t.Helper()
	name := unsafeName.ReplaceAllString(t.Name(), "-")
	name = fmt.Sprintf("%.60s-%d", name, queueSeq.Add(1))
	q, err := moto.CreateQueue(t.Context(), c, name, o)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// sendAll sends messages with SendMessageBatch; group, if not nil, names each one's FIFO group.
func sendAll(ctx context.Context, c *awssqs.Client, url string, bodies []string, group func(i int) string, attrs map[string]types.MessageAttributeValue) error {
	for i := 0; i < len(bodies); i += 10 {
		var entries []types.SendMessageBatchRequestEntry
		for j := i; j < min(i+10, len(bodies)); j++ {
			e := types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(bodies[j]), MessageAttributes: attrs}
			if group != nil {
				e.MessageGroupId = aws.String(group(j))
			}
			entries = append(entries, e)
		}
		out, err := c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			return err
		}
		if len(out.Failed) > 0 {
			return fmt.Errorf("send: %d entries failed: %s", len(out.Failed), aws.ToString(out.Failed[0].Message))
		}
	}
	return nil
}

// queueCounts returns the queue's visible, in-flight and delayed message counts.
func queueCounts(t *testing.T, c *awssqs.Client, url string) [3]int {
	t.Helper()
	n, err := countMessages(t.Context(), c, url)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func countMessages(ctx context.Context, c *awssqs.Client, url string) ([3]int, error) {
	n, err := QueueCounts(ctx, c, url)
	return [3]int{n.Visible, n.InFlight, n.Delayed}, err
}

func newSource(t *testing.T, c API, cfg Config) *Source {
	t.Helper()
	s, err := New(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// run runs a pipeline of src into a sink with fn, and returns Run's error.
func run(ctx context.Context, src *Source, grace time.Duration, workers int, fn func(context.Context, Message) error) error {
	p := flow.New(flow.Config{GracePeriod: grace})
	s := flow.From(p, "sqs", flow.Source[Message](src), flow.SourceOptions{})
	flow.Sink(s, "work", fn, flow.Options{Concurrency: workers, MaxDemand: 10})
	return p.Run(ctx)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	awstest.Each(t, func(t *testing.T, b awstest.Backend) {
		c := b.SQS()
		flowtest.TestSource(t, func(t *testing.T) flowtest.Harness[Message] {
			q := newQueue(t, c, moto.QueueOptions{})
			src := newSource(t, c, Config{QueueURL: q.URL})
			var n atomic.Int64
			return flowtest.Harness[Message]{
				Source: src,
				Put: func(ctx context.Context, k int) error {
					bodies := make([]string, k)
					for i := range bodies {
						bodies[i] = "m" + strconv.FormatInt(n.Add(1), 10)
					}
					return sendAll(ctx, c, q.URL, bodies, nil, nil)
				},
				ID:    func(m Message) string { return m.Body },
				Quiet: time.Second,
			}
		})
	})
}

// TestConformanceFIFO runs the suite on a FIFO queue, one message group per message (a group
// is handed out one message at a time, which the suite does not expect).
func TestConformanceFIFO(t *testing.T) {
	t.Parallel()
	awstest.Each(t, func(t *testing.T, b awstest.Backend) {
		c := b.SQS()
		flowtest.TestSource(t, func(t *testing.T) flowtest.Harness[Message] {
			q := newQueue(t, c, moto.QueueOptions{FIFO: true})
			src := newSource(t, c, Config{QueueURL: q.URL})
			var n atomic.Int64
			return flowtest.Harness[Message]{
				Source: src,
				Put: func(ctx context.Context, k int) error {
					bodies := make([]string, k)
					for i := range bodies {
						bodies[i] = "m" + strconv.FormatInt(n.Add(1), 10)
					}
					return sendAll(ctx, c, q.URL, bodies, func(i int) string { return bodies[i] }, nil)
				},
				ID:    func(m Message) string { return m.Body },
				Quiet: time.Second,
			}
		})
	})
}

func TestCheckMoto(t *testing.T) {
	t.Parallel()
	awstest.Each(t, func(t *testing.T, b awstest.Backend) {
		srv := b
		c := srv.SQS()
		q := newQueue(t, c, moto.QueueOptions{})
		if err := newSource(t, c, Config{QueueURL: q.URL}).Check(t.Context()); err != nil {
			t.Fatal(err)
		}
		err := newSource(t, c, Config{QueueURL: q.URL + "-missing"}).Check(t.Context())
		if !errors.Is(err, ErrQueueNotFound) {
			t.Fatalf("missing queue: %v", err)
		}
		t.Logf("missing queue: %v", err)
		// Nothing listens on port 1.
		down := awssqs.NewFromConfig(moto.Config("http://127.0.0.1:1"))
		err = newSource(t, down, Config{QueueURL: "http://127.0.0.1:1/123456789012/q"}).Check(t.Context())
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("unreachable endpoint: %v", err)
		}
		t.Logf("unreachable: %v", err)
	})
}

func TestRedriveToDeadLetterQueue(t *testing.T) {
	t.Parallel()
	awstest.Each(t, func(t *testing.T, b awstest.Backend) {
		c := b.SQS()
		q := newQueue(t, c, moto.QueueOptions{MaxReceiveCount: 3})
		if err := sendAll(t.Context(), c, q.URL, []string{"poison", "a", "b", "c"}, nil, nil); err != nil {
			t.Fatal(err)
		}
		src := newSource(t, c, Config{QueueURL: q.URL, WaitTime: -1, Retry: backoff.Immediate()})
		var mu sync.Mutex
		attempts := map[string]int{}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			errc <- run(ctx, src, time.Second, 2, func(_ context.Context, m Message) error {
				mu.Lock()
				defer mu.Unlock()
				attempts[m.Body]++
				if m.Body == "poison" {
					return errors.New("cannot handle")
				}
				return nil
			})
		}()
		// Wait for the poison message in the dead-letter queue.
		var moved []types.Message
		for len(moved) == 0 && ctx.Err() == nil {
			out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(q.DeadLetter.URL), WaitTimeSeconds: 1})
			if err == nil {
				moved = out.Messages
			}
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if len(moved) != 1 || aws.ToString(moved[0].Body) != "poison" {
			t.Fatalf("dead-letter queue: %+v", moved)
		}
		mu.Lock()
		defer mu.Unlock()
		if attempts["poison"] != 3 || attempts["a"] != 1 || attempts["b"] != 1 || attempts["c"] != 1 {
			t.Fatalf("attempts %v", attempts)
		}
		if n := queueCounts(t, c, q.URL); n != [3]int{} {
			t.Fatalf("queue still holds %v", n)
		}
	})
}

func TestPermanentFailureMoto(t *testing.T) {
	t.Parallel()
	awstest.Each(t, func(t *testing.T, b awstest.Backend) {
		c := b.SQS()
		q := newQueue(t, c, moto.QueueOptions{})
		dlq := newQueue(t, c, moto.QueueOptions{})
		attrs := map[string]types.MessageAttributeValue{"origin": {DataType: aws.String("String"), StringValue: aws.String("upload-7")}}
		if err := sendAll(t.Context(), c, q.URL, []string{"bad", "good"}, nil, attrs); err != nil {
			t.Fatal(err)
		}
		src := newSource(t, c, Config{QueueURL: q.URL, DeadLetterQueueURL: dlq.URL, Drain: true})
		if err := src.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		attempts := map[string]int{}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		// Drained, the pipeline ends by itself.
		err := run(ctx, src, time.Second, 2, func(_ context.Context, m Message) error {
			mu.Lock()
			attempts[m.Body]++
			mu.Unlock()
			if m.Body == "bad" {
				return fmt.Errorf("decode: %w", Permanent(errors.New("not an S3 event")))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if attempts["bad"] != 1 || attempts["good"] != 1 {
			t.Fatalf("attempts %v", attempts)
		}
		out, err := c.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{
			QueueUrl: aws.String(dlq.URL), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) != 1 || aws.ToString(out.Messages[0].Body) != "bad" ||
			aws.ToString(out.Messages[0].MessageAttributes["origin"].StringValue) != "upload-7" {
			t.Fatalf("dead-letter queue: %+v", out.Messages)
		}
		if n := queueCounts(t, c, q.URL); n != [3]int{} {
			t.Fatalf("queue still holds %v", n)
		}
		if st := src.Stats(); st.DeadLettered != 1 || st.Deleted != 2 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestHeartbeatMoto runs in real time: a message with a 3-second visibility timeout takes 10
// seconds of work, and nobody else may see it meanwhile.
func TestHeartbeatMoto(t *testing.T) {
	t.Parallel()
	awstest.Each(t, func(t *testing.T, b awstest.Backend) {
		c := b.SQS()
		q := newQueue(t, c, moto.QueueOptions{VisibilityTimeout: 3 * time.Second})
		if err := sendAll(t.Context(), c, q.URL, []string{"slow"}, nil, nil); err != nil {
			t.Fatal(err)
		}
		src := newSource(t, c, Config{QueueURL: q.URL, VisibilityTimeout: 3 * time.Second, Drain: true})
		var seen []Message
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		err := run(ctx, src, time.Second, 1, func(ctx context.Context, m Message) error {
			seen = append(seen, m)
			end := time.Now().Add(10 * time.Second)
			for time.Now().Before(end) {
				n, err := countMessages(ctx, c, q.URL)
				if err != nil {
					return err
				}
				if n[0] != 0 || n[1] != 1 {
					return fmt.Errorf("during the work the queue counts %v", n)
				}
				time.Sleep(500 * time.Millisecond)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != 1 || seen[0].ReceiveCount != 1 {
			t.Fatalf("processed %+v", seen)
		}
		st := src.Stats()
		if st.Extended < 5 || st.Deleted != 1 || st.Failed != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestShutdownReleasesMoto(t *testing.T) {
	t.Parallel()
	awstest.Each(t, func(t *testing.T, b awstest.Backend) {
		c := b.SQS()
		q := newQueue(t, c, moto.QueueOptions{})
		bodies := numbered("m", 20)
		if err := sendAll(t.Context(), c, q.URL, bodies, nil, nil); err != nil {
			t.Fatal(err)
		}
		// A failure would hide its message for an hour: only a release makes it visible at once.
		src, err := New(c, Config{QueueURL: q.URL, WaitTime: -1, Retry: backoff.Fixed(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		started := make(chan struct{}, 20)
		errc := make(chan error, 1)
		go func() {
			errc <- run(ctx, src, -1, 2, func(ctx context.Context, m Message) error {
				started <- struct{}{}
				<-ctx.Done()
				return ctx.Err()
			})
		}()
		<-started
		<-started
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		closeCtx, cancelClose := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancelClose()
		if err := src.Close(closeCtx); err != nil {
			t.Fatal(err)
		}
		st := src.Stats()
		if st.Received != 20 && st.Received+int64(queueCounts(t, c, q.URL)[0]) != 20 {
			t.Fatalf("stats %+v", st)
		}
		if st.Released != st.Received || st.Failed != 0 {
			t.Fatalf("stats %+v", st)
		}
		// Every message can be received again at once.
		got := map[string]bool{}
		for i := 0; i < 20 && len(got) < 20; i++ {
			out, err := c.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10})
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out.Messages {
				got[aws.ToString(m.Body)] = true
			}
		}
		if len(got) != 20 {
			t.Fatalf("%d of 20 messages receivable after shutdown", len(got))
		}
	})
}

func TestFIFOOrderMoto(t *testing.T) {
	t.Parallel()
	awstest.Each(t, func(t *testing.T, b awstest.Backend) {
		c := b.SQS()
		q := newQueue(t, c, moto.QueueOptions{FIFO: true})
		const groups, per = 4, 8
		var bodies []string
		for i := range per {
			for g := range groups {
				bodies = append(bodies, fmt.Sprintf("g%d/%d", g, i))
			}
		}
		if err := sendAll(t.Context(), c, q.URL, bodies, func(i int) string { return "g" + strconv.Itoa(i%groups) }, nil); err != nil {
			t.Fatal(err)
		}
		// One receive at a time: moto's ReceiveMessage is not atomic, so two concurrent receives
		// can split one group between them (the later messages in the answer that comes back
		// first), which SQS's group lock rules out. The source's ordering rests on that lock.
		src := newSource(t, c, Config{QueueURL: q.URL, Drain: true, Retry: backoff.Immediate(), MaxReceives: 1})
		var (
			mu        sync.Mutex
			busy      = map[string]bool{}
			started   = map[string][]int{}
			succeeded = map[string][]int{}
			overlap   []string
		)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		err := run(ctx, src, time.Second, 4, func(_ context.Context, m Message) error {
			g, i := m.GroupID, int(m.Body[len(m.Body)-1]-'0')
			mu.Lock()
			if busy[g] {
				overlap = append(overlap, m.Body)
			}
			busy[g] = true
			started[g] = append(started[g], i)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // let the other workers run meanwhile
			mu.Lock()
			defer mu.Unlock()
			busy[g] = false
			if i == 3 && m.ReceiveCount == 1 {
				return errors.New("first attempt of 3 fails")
			}
			succeeded[g] = append(succeeded[g], i)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(overlap) > 0 {
			t.Fatalf("messages handled while another of their group was: %v", overlap)
		}
		for g := range groups {
			id := "g" + strconv.Itoa(g)
			if want := []int{0, 1, 2, 3, 4, 5, 6, 7}; !slices.Equal(succeeded[id], want) {
				t.Errorf("group %s succeeded in order %v", id, succeeded[id])
			}
			if want := []int{0, 1, 2, 3, 3, 4, 5, 6, 7}; !slices.Equal(started[id], want) {
				t.Errorf("group %s started in order %v", id, started[id])
			}
		}
		if n := queueCounts(t, c, q.URL); n != [3]int{} {
			t.Fatalf("queue still holds %v", n)
		}
	})
}

// TestReliability runs 2,000 messages through a pipeline while a tenth of the source's
// requests fail: server errors, throttling, connections dropped before the request, answers
// cut off after moto acted. Every message must be processed and deleted; SQS's at-least-once
// delivery allows duplicates, which are counted.
//
// moto slows down as a queue grows (each request costs time in proportion to the messages it
// holds), so the messages are fed as the pipeline consumes them, a few hundred ahead.
func TestReliability(t *testing.T) {
	t.Parallel()
	awstest.Each(t, func(t *testing.T, b awstest.Backend) {
		srv := b
		direct := srv.SQS()
		q := newQueue(t, direct, moto.QueueOptions{})
		const total, ahead = 2000, 300
		bodies := make([]string, total)
		for i := range bodies {
			bodies[i] = fmt.Sprintf("m%04d", i)
		}
		proxy := local.StartProxyT(t, local.ProxyConfig{Target: srv.URL, Seed: 7, Faults: local.Faults{
			Error500: 0.02, Error503: 0.02, Throttle: 0.02, Drop: 0.02, Truncate: 0.02,
		}})
		faulty := awssqs.NewFromConfig(moto.Config(proxy.URL()))
		// A receive whose answer is cut off hides its messages for the visibility timeout: keep
		// it short so that they come back soon.
		src := newSource(t, faulty, Config{QueueURL: q.URL, VisibilityTimeout: 5 * time.Second})

		var (
			mu        sync.Mutex
			processed = map[string]int{}
			progress  = make(chan struct{}, 1)
			all       = make(chan struct{})
		)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		began := time.Now()
		errc := make(chan error, 1)
		go func() {
			errc <- run(ctx, src, time.Second, 8, func(_ context.Context, m Message) error {
				mu.Lock()
				defer mu.Unlock()
				processed[m.Body]++
				switch len(processed) {
				case total:
					if processed[m.Body] == 1 {
						close(all)
					}
				}
				select {
				case progress <- struct{}{}:
				default:
				}
				return nil
			})
		}()
		for sent := 0; sent < total; {
			mu.Lock()
			done := len(processed)
			mu.Unlock()
			if sent-done >= ahead {
				select {
				case <-progress:
				case <-ctx.Done():
					t.Fatalf("%d sent, %d processed: %v", sent, done, ctx.Err())
				}
				continue
			}
			n := min(100, total-sent)
			if err := sendAll(ctx, direct, q.URL, bodies[sent:sent+n], nil, nil); err != nil {
				t.Fatal(err)
			}
			sent += n
		}
		select {
		case <-all:
		case <-ctx.Done():
		}
		cancel()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		closeCtx, cancelClose := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancelClose()
		if err := src.Close(closeCtx); err != nil {
			t.Fatal(err)
		}
		elapsed := time.Since(began)

		mu.Lock()
		defer mu.Unlock()
		dups := 0
		for _, b := range bodies {
			switch n := processed[b]; {
			case n == 0:
				t.Errorf("%s never processed", b)
			case n > 1:
				dups += n - 1
			}
		}
		if len(processed) != total {
			t.Fatalf("%d distinct messages processed, want %d", len(processed), total)
		}
		if n := queueCounts(t, direct, q.URL); n != [3]int{} {
			t.Errorf("queue still holds %v (visible, in flight, delayed)", n)
		}
		st := src.Stats()
		faults := proxy.Total()
		t.Logf("%d messages in %v, %d duplicates; source %+v; proxy %+v", total, elapsed.Round(time.Millisecond), dups, st, faults)
		if faults.Truncated == 0 || faults.Dropped == 0 || faults.Throttled == 0 || faults.Error500 == 0 || faults.Error503 == 0 {
			t.Errorf("not every kind of fault happened: %+v", faults)
		}
	})
}
