package sqs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/internal/awstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(awstest.Main(m)) }

const (
	qURL    = "https://sqs.us-east-1.amazonaws.com/123456789012/work"
	dlqURL  = "https://sqs.us-east-1.amazonaws.com/123456789012/work-dlq"
	fifoURL = "https://sqs.us-east-1.amazonaws.com/123456789012/work.fifo"
)

// start returns a source on f; it is closed when the test ends, and must close cleanly.
func start(t *testing.T, f *fakeSQS, cfg Config) *Source {
	t.Helper()
	if cfg.QueueURL == "" {
		cfg.QueueURL = qURL
	}
	s, err := New(f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// receive collects exactly n messages, asking for what is missing each time.
func receive(t *testing.T, s *Source, n int) []flow.Message[Message] {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
	defer cancel()
	var all []flow.Message[Message]
	for len(all) < n {
		msgs, err := s.Receive(ctx, n-len(all))
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(all), n, err)
		}
		if len(msgs) == 0 || len(msgs) > n-len(all) {
			t.Fatalf("Receive(%d) returned %d messages", n-len(all), len(msgs))
		}
		all = append(all, msgs...)
	}
	return all
}

func ack(msgs []flow.Message[Message], st flow.Status, err error) {
	if len(msgs) == 0 {
		return
	}
	rs := make([]flow.Result, len(msgs))
	for i, m := range msgs {
		rs[i] = flow.Result{Token: m.Token, Status: st, Err: err}
	}
	msgs[0].Acker.Acknowledge(rs)
}

func bodies(msgs []flow.Message[Message]) []string {
	var b []string
	for _, m := range msgs {
		b = append(b, m.Data.Body)
	}
	return b
}

func numbered(prefix string, n int) []string {
	b := make([]string, n)
	for i := range b {
		b[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return b
}

func TestNoRequestWithoutDemand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 5)...)
		s := start(t, f, Config{})
		time.Sleep(time.Minute)
		if n := len(f.callsOf("ReceiveMessage")); n != 0 {
			t.Fatalf("%d receives without demand", n)
		}
		got := receive(t, s, 3)
		if len(got) != 3 {
			t.Fatalf("got %d", len(got))
		}
		ack(got, flow.Succeeded, nil)
		// The demand was served: nothing more is fetched, however long we wait.
		time.Sleep(time.Minute)
		calls := f.callsOf("ReceiveMessage")
		if len(calls) != 1 || calls[0].Max != 3 {
			t.Fatalf("receives %+v, want one for 3 messages", calls)
		}
		if v, _ := f.counts(qURL); v != 2 {
			t.Fatalf("%d messages visible, want the 2 not asked for", v)
		}
	})
}

// waitReceive runs Receive in the background.
type pending struct {
	msgs []flow.Message[Message]
	err  error
	done chan struct{}
}

func receiveAsync(ctx context.Context, s *Source, n int) *pending {
	p := &pending{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.msgs, p.err = s.Receive(ctx, n)
	}()
	return p
}

func TestRequestsFollowDemand(t *testing.T) {
	for _, tc := range []struct {
		demand, limit int
		want          []int32 // MaxNumberOfMessages of the receives in flight
	}{
		{1, 0, []int32{1}},
		{10, 0, []int32{10}},
		{25, 0, []int32{5, 10, 10}},
		{40, 0, []int32{10, 10, 10, 10}},
		{100, 3, []int32{10, 10, 10}},
	} {
		t.Run(fmt.Sprintf("%d/%d", tc.demand, tc.limit), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(qURL)
				s := start(t, f, Config{MaxReceives: tc.limit})
				ctx, cancel := context.WithCancel(t.Context())
				p := receiveAsync(ctx, s, tc.demand)
				synctest.Wait()
				var got []int32
				for _, c := range f.callsOf("ReceiveMessage") {
					got = append(got, c.Max)
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.want) {
					t.Errorf("receives in flight ask for %v, want %v", got, tc.want)
				}
				if f.inFlight() != len(tc.want) {
					t.Errorf("%d receives in flight, want %d", f.inFlight(), len(tc.want))
				}
				cancel()
				<-p.done
			})
		})
	}
}

// TestShortReceivesNarrowReceives checks that after a long poll that brought fewer messages
// than it asked for, receives go one at a time, until one comes back full.
func TestShortReceivesNarrowReceives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		s := start(t, f, Config{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		p := receiveAsync(ctx, s, 40)
		synctest.Wait()
		if got := f.inFlight(); got != 4 {
			t.Fatalf("%d receives in flight for a demand of 40, want 4", got)
		}
		f.put(qURL, numbered("a", 5)...) // one receive takes them: a short answer
		<-p.done
		if len(p.msgs) != 5 || p.err != nil {
			t.Fatalf("got %d messages, %v; want 5", len(p.msgs), p.err)
		}
		ack(p.msgs, flow.Succeeded, nil)
		p = receiveAsync(ctx, s, 40)
		synctest.Wait()
		if got := f.inFlight(); got != 3 {
			t.Fatalf("after a short answer: %d receives in flight, want the 3 still waiting and no more", got)
		}
		f.put(qURL, numbered("b", 30)...) // the three waiting come back full
		<-p.done
		if p.err != nil {
			t.Fatal(p.err)
		}
		ack(p.msgs, flow.Succeeded, nil)
		// Take what the full answers brought beyond that demand; then a new demand of 40
		// finds nothing held and is received 10 by 10 at once again.
		for got := len(p.msgs); got < 30; {
			p = receiveAsync(ctx, s, 40)
			synctest.Wait()
			select {
			case <-p.done:
			default:
				t.Fatalf("%d of the 30 messages handed out; the rest are not held", got)
			}
			ack(p.msgs, flow.Succeeded, nil)
			got += len(p.msgs)
		}
		p = receiveAsync(ctx, s, 40)
		synctest.Wait()
		if got := f.inFlight(); got != 4 {
			t.Errorf("after full answers: %d receives in flight for a demand of 40, want 4", got)
		}
		cancel()
		<-p.done
	})
}

// TestCloseReleasesWhatReceivesInFlightBring checks that a shutdown while an answer is on its
// way (SQS has handed out its messages) waits for it and makes its messages visible again,
// rather than abort the receive and leave them invisible until their visibility timeout.
func TestCloseReleasesWhatReceivesInFlightBring(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.transit = 100 * time.Millisecond
		f.put(qURL, numbered("m", 10)...)
		s, err := New(f, Config{QueueURL: qURL, VisibilityTimeout: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		p := receiveAsync(ctx, s, 10)
		time.Sleep(10 * time.Millisecond) // the receive's messages are handed out, its answer on its way
		cancel()                          // the pipeline stops asking
		<-p.done
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if visible, invisible := f.counts(qURL); visible != 10 || invisible != 0 {
			t.Errorf("after Close: %d visible, %d invisible; want the 10 visible again", visible, invisible)
		}
	})
}

func TestManyCallersDoNotMultiplyRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		s := start(t, f, Config{})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var ps []*pending
		demand := 0
		// Callers arrive one by one, each letting the loop run before the next.
		for i := range 30 {
			n := 1 + i%3
			demand += n
			ps = append(ps, receiveAsync(ctx, s, n))
			synctest.Wait()
			want := (demand + 9) / 10
			if got := f.inFlight(); got > want {
				t.Fatalf("demand %d: %d receives in flight, more than %d", demand, got, want)
			}
			var asked int32
			for _, c := range f.callsOf("ReceiveMessage") {
				asked += c.Max
			}
			if int(asked) > demand {
				t.Fatalf("demand %d: receives ask for %d messages", demand, asked)
			}
		}
		// Messages arrive: every caller is served, none with more than it asked for, and the
		// source hands out no more than the total demand.
		f.put(qURL, numbered("m", 100)...)
		total := 0
		for i, p := range ps {
			<-p.done
			if p.err != nil {
				t.Fatalf("caller %d: %v", i, p.err)
			}
			if n := 1 + i%3; len(p.msgs) < 1 || len(p.msgs) > n {
				t.Fatalf("caller %d asked for %d, got %d", i, n, len(p.msgs))
			}
			total += len(p.msgs)
			ack(p.msgs, flow.Succeeded, nil)
		}
		synctest.Wait()
		st := s.Stats()
		if int(st.Received) > demand {
			t.Fatalf("received %d messages for a demand of %d", st.Received, demand)
		}
		if int(st.Received) != total+st.Held {
			t.Fatalf("received %d, handed out %d, held %d", st.Received, total, st.Held)
		}
	})
}

func TestHeldMessagesServedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.maxPerReceive = 1
		s := start(t, f, Config{})
		f.put(qURL, numbered("m", 3)...)
		// 15 asked: a receive for 10 and one for 5, each answered with one message. The
		// first answer serves the call; the second is held for the next one.
		msgs, err := s.Receive(t.Context(), 15)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("got %d, %v", len(msgs), err)
		}
		synctest.Wait()
		if st := s.Stats(); st.Held != 1 || st.Requests.ReceiveMessage != 2 {
			t.Fatalf("stats %+v", st)
		}
		more, err := s.Receive(t.Context(), 10)
		if err != nil || len(more) != 1 {
			t.Fatalf("got %d, %v; want the one held", len(more), err)
		}
		if n := len(f.callsOf("ReceiveMessage")); n != 2 {
			t.Fatalf("held messages cost %d receives", n-2)
		}
		ack(append(msgs, more...), flow.Succeeded, nil)
	})
}

func TestEmptyQueuePollingRate(t *testing.T) {
	t.Run("ShortPolling", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(qURL)
			s := start(t, f, Config{WaitTime: -1})
			s.rand = func() float64 { return 0 } // the top of every range
			ctx, cancel := context.WithCancel(t.Context())
			p := receiveAsync(ctx, s, 50)
			time.Sleep(time.Minute)
			cancel()
			<-p.done
			calls := f.callsOf("ReceiveMessage")
			// 5 receives for the demand of 50, then one at a time, pausing 100ms, 200ms, …
			// up to 2s.
			if len(calls) < 5 {
				t.Fatalf("%d receives", len(calls))
			}
			var gaps []time.Duration
			for i := 5; i < len(calls); i++ {
				gaps = append(gaps, calls[i].At.Sub(calls[i-1].At))
			}
			for i, g := range gaps {
				if g > 2*time.Second {
					t.Fatalf("gap %d is %v, more than the 2s cap", i, g)
				}
				if i > 0 && g < gaps[i-1] {
					t.Fatalf("gaps shrink: %v", gaps)
				}
			}
			if gaps[len(gaps)-1] != 2*time.Second {
				t.Fatalf("gaps never reach the cap: %v", gaps)
			}
			if len(calls) > 5+60/2+5 {
				t.Fatalf("%d receives in a minute on an empty queue", len(calls))
			}
			if f.maxRecv > 5 {
				t.Fatalf("%d receives in flight", f.maxRecv)
			}
			// Every receive but those cut short by the cancel came back empty.
			if st := s.Stats(); st.EmptyReceives < int64(len(calls))-5 || st.EmptyReceives > int64(len(calls)) {
				t.Fatalf("EmptyReceives %d of %d receives", st.EmptyReceives, len(calls))
			}
		})
	})
	t.Run("FullJitter", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(qURL)
			s := start(t, f, Config{WaitTime: -1, PollBackoff: 100 * time.Millisecond, MaxPollBackoff: time.Second})
			ctx, cancel := context.WithCancel(t.Context())
			p := receiveAsync(ctx, s, 1)
			time.Sleep(10 * time.Minute)
			cancel()
			<-p.done
			calls := f.callsOf("ReceiveMessage")
			distinct := map[time.Duration]bool{}
			for i := 1; i < len(calls); i++ {
				g := calls[i].At.Sub(calls[i-1].At)
				if g > time.Second {
					t.Fatalf("gap %v beyond the cap", g)
				}
				distinct[g] = true
			}
			// Jittered pauses average half the cap: about 1200 receives in 10 minutes.
			if len(calls) < 600 || len(calls) > 3000 {
				t.Fatalf("%d receives in 10 minutes, want about 1200", len(calls))
			}
			if len(distinct) < 100 {
				t.Fatalf("only %d distinct pauses: no jitter", len(distinct))
			}
		})
	})
	t.Run("LongPolling", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(qURL)
			s := start(t, f, Config{})
			ctx, cancel := context.WithCancel(t.Context())
			p := receiveAsync(ctx, s, 30)
			time.Sleep(10 * time.Minute)
			cancel()
			<-p.done
			calls := f.callsOf("ReceiveMessage")
			for _, c := range calls {
				if c.Wait != 20 {
					t.Fatalf("WaitTimeSeconds %d, want 20", c.Wait)
				}
			}
			// 3 at first, then one 20s poll at a time.
			if len(calls) < 20 || len(calls) > 3+30 {
				t.Fatalf("%d receives in 10 minutes", len(calls))
			}
		})
	})
}

// TestBackoffPolicies checks the policies the source takes from its Config; their delays are
// tested in package backoff.
func TestBackoffPolicies(t *testing.T) {
	c := Config{QueueURL: qURL}.withDefaults()
	if *c.Retry != *backoff.Default() {
		t.Errorf("default retry %+v, want %+v", *c.Retry, *backoff.Default())
	}
	s := start(t, newFake(qURL), Config{PollBackoff: 300 * time.Millisecond, MaxPollBackoff: 5 * time.Second})
	if want := (backoff.Policy{Base: 300 * time.Millisecond, Max: 5 * time.Second, Jitter: 1}); s.pause != want {
		t.Errorf("pause %+v, want %+v", s.pause, want)
	}
	if err := (Config{QueueURL: qURL, Retry: &backoff.Policy{Base: time.Minute}}).Validate(); err == nil {
		t.Error("a retry policy whose Max is below its Base is valid")
	}
}

// TestCancelLeavesLongPollsToClose checks that a Receive whose caller gives up returns at
// once without aborting the long polls in flight (an aborted receive can lose the messages
// SQS handed to it), and that Close ends those still waiting after closeReceiveWait, not at
// the end of their long poll.
func TestCancelLeavesLongPollsToClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		s := start(t, f, Config{})
		ctx, cancel := context.WithCancel(t.Context())
		p := receiveAsync(ctx, s, 15)
		synctest.Wait()
		if f.inFlight() != 2 {
			t.Fatalf("%d receives in flight", f.inFlight())
		}
		began := time.Now()
		cancel()
		<-p.done
		synctest.Wait()
		if !errors.Is(p.err, context.Canceled) || !time.Now().Equal(began) {
			t.Fatalf("err = %v after %v, want context.Canceled at once", p.err, time.Since(began))
		}
		if f.inFlight() != 2 {
			t.Fatalf("%d receives in flight after the cancel, want the 2 long polls going on", f.inFlight())
		}
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		for _, c := range f.callsOf("ReceiveMessage") {
			if got := c.Ended.Sub(began); got != closeReceiveWait {
				t.Fatalf("a long poll ended %v after the cancel, want %v (Close's wait)", got, closeReceiveWait)
			}
		}
		if st := s.Stats(); st.Requests.Failed != 0 || st.Demand != 0 {
			t.Fatalf("an abort counted as a failure or demand left: %+v", st)
		}
	})
}

func TestReceiveErrors(t *testing.T) {
	transient := []error{
		&types.RequestThrottled{Message: aws.String("slow down")},
		&smithy.OperationError{ServiceID: "SQS", OperationName: "ReceiveMessage", Err: &smithy.GenericAPIError{Code: "ThrottlingException"}},
		responseError(503),
		responseError(500),
		&smithy.DeserializationError{Err: io.ErrUnexpectedEOF},
		fmt.Errorf("read: %w", io.ErrUnexpectedEOF),
	}
	for i, terr := range transient {
		t.Run(fmt.Sprintf("transient%d", i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(qURL)
				f.put(qURL, "a")
				f.receiveErr = func(n int) error {
					if n <= 3 {
						return terr
					}
					return nil
				}
				s := start(t, f, Config{})
				msgs := receive(t, s, 1)
				ack(msgs, flow.Succeeded, nil)
				if st := s.Stats(); st.Requests.Failed != 3 || st.Requests.ReceiveMessage != 4 {
					t.Fatalf("stats %+v", st.Requests)
				}
			})
		})
	}
	fatal := []struct {
		err  error
		kind error
	}{
		{&smithy.OperationError{ServiceID: "SQS", OperationName: "ReceiveMessage", Err: &types.QueueDoesNotExist{Message: aws.String("The specified queue does not exist.")}}, ErrQueueNotFound},
		{&smithy.GenericAPIError{Code: "AccessDenied", Message: "not yours"}, ErrAccessDenied},
		{&smithy.GenericAPIError{Code: "InvalidClientTokenId"}, ErrAccessDenied},
		{&types.KmsAccessDenied{}, ErrAccessDenied},
		{responseError(403), ErrAccessDenied},
		{&types.InvalidAddress{Message: aws.String("The address is not valid")}, ErrBadRequest},
		{responseError(400), ErrBadRequest},
	}
	for i, tc := range fatal {
		t.Run(fmt.Sprintf("fatal%d", i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFake(qURL)
				f.receiveErr = func(int) error { return tc.err }
				s := start(t, f, Config{})
				_, err := s.Receive(t.Context(), 5)
				if !errors.Is(err, tc.kind) {
					t.Fatalf("err = %v, want %v", err, tc.kind)
				}
				var se *Error
				if !errors.As(err, &se) || se.Action != "ReceiveMessage" || se.Queue != qURL {
					t.Fatalf("err = %#v", err)
				}
				if !errors.Is(err, tc.err) {
					t.Fatalf("%v does not wrap the SDK's error", err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error is not one line: %q", err)
				}
				// The source stays stopped.
				if _, err2 := s.Receive(t.Context(), 1); !errors.Is(err2, tc.kind) {
					t.Fatalf("second Receive: %v", err2)
				}
				time.Sleep(time.Minute)
				if n := len(f.callsOf("ReceiveMessage")); n != 1 {
					t.Fatalf("%d receives after a fatal error", n)
				}
			})
		})
	}
}

func TestDeleteBatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 25)...)
		s := start(t, f, Config{})
		msgs := receive(t, s, 25)
		acked := time.Now()
		// Acknowledged in groups of 3, as workers would.
		for i := 0; i < len(msgs); i += 3 {
			ack(msgs[i:min(i+3, len(msgs))], flow.Succeeded, nil)
		}
		synctest.Wait()
		calls := f.callsOf("DeleteMessageBatch")
		if len(calls) != 2 || len(calls[0].Entries) != 10 || len(calls[1].Entries) != 10 {
			t.Fatalf("full batches not sent at once: %+v", calls)
		}
		time.Sleep(time.Second)
		calls = f.callsOf("DeleteMessageBatch")
		if len(calls) != 3 || len(calls[2].Entries) != 5 {
			t.Fatalf("deletes %+v", calls)
		}
		if d := calls[2].At.Sub(acked); d != 100*time.Millisecond {
			t.Fatalf("partial batch sent after %v, want the 100ms flush interval", d)
		}
		if v, i := f.counts(qURL); v+i != 0 {
			t.Fatalf("%d visible, %d in flight left", v, i)
		}
		if st := s.Stats(); st.Deleted != 25 || st.InFlight != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestDeleteEntryFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		ids := f.put(qURL, numbered("m", 10)...)
		// The service fails two entries twice; the source retries them alone.
		tries := map[string]int{}
		f.entryFault = func(id string) bool {
			if id == ids[3] || id == ids[7] {
				tries[id]++
				return tries[id] <= 2
			}
			return false
		}
		s := start(t, f, Config{})
		msgs := receive(t, s, 10)
		ack(msgs, flow.Succeeded, nil)
		time.Sleep(time.Minute)
		calls := f.callsOf("DeleteMessageBatch")
		if len(calls) != 3 || len(calls[0].Entries) != 8 || len(calls[2].Entries) != 2 {
			t.Fatalf("deletes %+v", calls)
		}
		if v, i := f.counts(qURL); v+i != 0 {
			t.Fatalf("%d visible, %d in flight left", v, i)
		}
		if st := s.Stats(); st.Deleted != 10 || st.Invalid != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestDeleteInvalidHandleReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, "a", "b")
		var logs strings.Builder
		var mu sync.Mutex
		s := start(t, f, Config{Logger: newLogger(&mu, &logs)})
		msgs := receive(t, s, 2)
		// Someone else deleted "a" meanwhile: its handle is no longer valid.
		f.mu.Lock()
		f.queues[qURL].msgs[0].deleted = true
		f.mu.Unlock()
		ack(msgs, flow.Succeeded, nil)
		time.Sleep(time.Second)
		st := s.Stats()
		if st.Invalid != 1 || st.Deleted != 1 {
			t.Fatalf("stats %+v", st)
		}
		if n := len(f.callsOf("DeleteMessageBatch")); n != 1 {
			t.Fatalf("an invalid handle was retried: %d deletes", n)
		}
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(logs.String(), "ReceiptHandleIsInvalid") {
			t.Fatalf("not reported:\n%s", logs.String())
		}
	})
}

func TestDeleteRequestRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 4)...)
		f.deleteErr = func(n int) error {
			if n <= 2 {
				return responseError(503)
			}
			return nil
		}
		s := start(t, f, Config{})
		ack(receive(t, s, 4), flow.Succeeded, nil)
		time.Sleep(time.Minute)
		if v, i := f.counts(qURL); v+i != 0 {
			t.Fatalf("%d visible, %d in flight left", v, i)
		}
		if st := s.Stats(); st.Deleted != 4 || st.Requests.DeleteMessageBatch != 3 || st.Requests.Failed != 2 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestNoDeleteLostAtClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 3)...)
		s, err := New(f, Config{QueueURL: qURL, FlushInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		ack(receive(t, s, 3), flow.Succeeded, nil)
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if v, i := f.counts(qURL); v+i != 0 {
			t.Fatalf("%d visible, %d in flight left after Close", v, i)
		}
		if _, err := s.Receive(t.Context(), 1); !errors.Is(err, ErrClosed) {
			t.Fatalf("Receive after Close: %v", err)
		}
	})
}

func TestCloseRespectsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 3)...)
		s, err := New(f, Config{QueueURL: qURL})
		if err != nil {
			t.Fatal(err)
		}
		ack(receive(t, s, 3), flow.Succeeded, nil)
		f.mu.Lock()
		f.blockBatch = make(chan struct{}) // SQS does not answer
		f.mu.Unlock()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		began := time.Now()
		err = s.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: %v", err)
		}
		if d := time.Since(began); d != 5*time.Second {
			t.Fatalf("Close took %v", d)
		}
		if !strings.Contains(err.Error(), "3 deletes") {
			t.Fatalf("Close does not say what was lost: %v", err)
		}
	})
}

func TestFailureRetryDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, "a")
		s := start(t, f, Config{Retry: &backoff.Policy{Base: 10 * time.Second, Max: time.Hour}})
		for want := 1; want <= 3; want++ {
			msgs := receive(t, s, 1)
			if got := msgs[0].Data.ReceiveCount; got != want {
				t.Fatalf("receive count %d, want %d", got, want)
			}
			failedAt := time.Now()
			ack(msgs, flow.Failed, errors.New("boom"))
			time.Sleep(time.Second)
			calls := f.callsOf("ChangeMessageVisibilityBatch")
			last := calls[len(calls)-1]
			if last.Entries[0].Timeout != int32(10<<(want-1)) {
				t.Fatalf("failure %d: visibility %ds, want %d", want, last.Entries[0].Timeout, 10<<(want-1))
			}
			if d := last.At.Sub(failedAt); d != 100*time.Millisecond {
				t.Fatalf("change sent %v after the failure", d)
			}
			if v, _ := f.counts(qURL); v != 0 {
				t.Fatal("failed message visible before its delay")
			}
		}
		ack(receive(t, s, 1), flow.Succeeded, nil)
		time.Sleep(time.Second)
		if st := s.Stats(); st.Failed != 3 || st.Deleted != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestLastDeliveryFailureNotDelayed checks that a message that fails on the last delivery
// that the queue's redrive policy allows is made visible at once, so that the next receive
// has SQS move it to the dead-letter queue, while earlier failures wait for the retry delay.
func TestLastDeliveryFailureNotDelayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.queues[qURL].redrive = `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":2}`
		f.put(qURL, "a")
		s := start(t, f, Config{Retry: &backoff.Policy{Base: 10 * time.Second, Max: time.Hour}})
		if err := s.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
		for delivery, want := range []int32{10, 0} {
			msgs := receive(t, s, 1)
			ack(msgs, flow.Failed, errors.New("boom"))
			time.Sleep(time.Second)
			calls := f.callsOf("ChangeMessageVisibilityBatch")
			if got := calls[len(calls)-1].Entries[0].Timeout; got != want {
				t.Fatalf("failure on delivery %d of 2: visibility %ds, want %d", delivery+1, got, want)
			}
		}
	})
}

// A message that comes more often than the redrive policy that Check read allows says that
// the policy has changed (here it is removed): from then on failures wait their retry delay,
// so that a poison message is not redelivered at once without end.
func TestRedrivePolicyChangedWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.queues[qURL].redrive = `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":2}`
		f.put(qURL, "a", "b")
		retry := &backoff.Policy{Base: 10 * time.Second, Max: time.Hour}
		s := start(t, f, Config{Retry: retry})
		if err := s.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.queues[qURL].redrive = "" // removed after the check; the fake never dead-letters
		fail := func(body string) int32 {
			t.Helper()
			for {
				msgs := receive(t, s, 1)
				if msgs[0].Data.Body != body {
					ack(msgs, flow.Succeeded, nil)
					continue
				}
				ack(msgs, flow.Failed, errors.New("boom"))
				time.Sleep(time.Second)
				calls := f.callsOf("ChangeMessageVisibilityBatch")
				return calls[len(calls)-1].Entries[0].Timeout
			}
		}
		want := func(delivery int) int32 { return int32(retry.Delay(delivery) / time.Second) }
		for delivery, w := range []int32{want(1), 0, want(3), want(4)} {
			if got := fail("a"); got != w {
				t.Fatalf("failure on delivery %d, policy of 2 removed: visibility %ds, want %d", delivery+1, got, w)
			}
		}
	})
}

func TestPermanentFailureToDeadLetterQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL, dlqURL)
		attrs := map[string]types.MessageAttributeValue{"kind": {DataType: aws.String("String"), StringValue: aws.String("bad")}}
		f.putWithAttrs(qURL, "poison", attrs)
		f.put(qURL, "fine")
		s := start(t, f, Config{DeadLetterQueueURL: dlqURL})
		msgs := receive(t, s, 2)
		sort.Slice(msgs, func(i, j int) bool { return msgs[i].Data.Body > msgs[j].Data.Body })
		ack(msgs[:1], flow.Failed, fmt.Errorf("parse: %w", Permanent(errors.New("not json"))))
		ack(msgs[1:], flow.Failed, errors.New("try again"))
		time.Sleep(time.Second)
		sends := f.callsOf("SendMessage")
		if len(sends) != 1 || sends[0].Queue != dlqURL || sends[0].Body != "poison" {
			t.Fatalf("sends %+v", sends)
		}
		if v := sends[0].Send.MessageAttributes["kind"]; aws.ToString(v.StringValue) != "bad" {
			t.Fatalf("attributes not kept: %+v", sends[0].Send.MessageAttributes)
		}
		dels := f.callsOf("DeleteMessageBatch")
		if len(dels) != 1 || len(dels[0].Entries) != 1 || dels[0].Entries[0].ID != msgs[0].Data.ID {
			t.Fatalf("deletes %+v", dels)
		}
		if st := s.Stats(); st.DeadLettered != 1 || st.Failed != 2 {
			t.Fatalf("stats %+v", st)
		}
		if v, i := f.counts(dlqURL); v != 1 || i != 0 {
			t.Fatalf("dead-letter queue holds %d+%d", v, i)
		}
	})
}

func TestHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, "slow", "quick")
		s := start(t, f, Config{VisibilityTimeout: 30 * time.Second})
		msgs := receive(t, s, 2)
		received := time.Now()
		sort.Slice(msgs, func(i, j int) bool { return msgs[i].Data.Body > msgs[j].Data.Body })
		slow, quick := msgs[0], msgs[1]

		time.Sleep(10 * time.Second)
		ack([]flow.Message[Message]{quick}, flow.Succeeded, nil)
		quickDone := time.Now()
		time.Sleep(5 * time.Minute)
		// The slow message was never visible to others.
		if v, _ := f.counts(qURL); v != 0 {
			t.Fatal("message in processing became visible")
		}
		ack([]flow.Message[Message]{slow}, flow.Succeeded, nil)
		slowDone := time.Now()
		time.Sleep(5 * time.Minute)

		var times []time.Time
		for _, c := range f.callsOf("ChangeMessageVisibilityBatch") {
			for _, e := range c.Entries {
				if e.Timeout != 30 {
					t.Fatalf("extended by %ds", e.Timeout)
				}
				switch e.ID {
				case quick.Data.ID:
					if c.At.After(quickDone) {
						t.Fatalf("extension of an acknowledged message at %v", c.At.Sub(quickDone))
					}
				case slow.Data.ID:
					times = append(times, c.At)
				}
			}
		}
		if len(times) < 10 {
			t.Fatalf("%d extensions in 5 minutes", len(times))
		}
		prev := received
		for _, at := range times {
			if at.Sub(prev) >= 15*time.Second {
				t.Fatalf("extension %v after the previous one: not before half the timeout", at.Sub(prev))
			}
			prev = at
		}
		if prev.After(slowDone) {
			t.Fatal("extension after the message was acknowledged")
		}
		if st := s.Stats(); st.Extended < int64(len(times)) {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestHeartbeatStopsAtMaxExtension(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, "stuck")
		s := start(t, f, Config{VisibilityTimeout: 30 * time.Second, MaxExtension: 2 * time.Minute})
		msgs := receive(t, s, 1)
		received := time.Now()
		if at := msgs[0].Data.ReceivedAt; !at.Equal(received) {
			t.Fatalf("ReceivedAt %v, want the receipt %v: MaxExtension is counted from it", at, received)
		}
		time.Sleep(3 * time.Minute)
		var last time.Time
		for _, c := range f.callsOf("ChangeMessageVisibilityBatch") {
			for _, e := range c.Entries {
				until := c.At.Add(time.Duration(e.Timeout) * time.Second)
				if until.Sub(received) > 2*time.Minute+time.Second {
					t.Fatalf("extended until %v after receipt", until.Sub(received))
				}
				last = c.At
			}
		}
		if last.Sub(received) < 90*time.Second {
			t.Fatalf("last extension %v after receipt", last.Sub(received))
		}
		// The message is now visible to others: the heartbeat let it go.
		if v, _ := f.counts(qURL); v != 1 {
			t.Fatal("message still hidden after MaxExtension")
		}
		ack(msgs, flow.Released, nil)
	})
}

func TestReleaseOnShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 25)...)
		s, err := New(f, Config{QueueURL: qURL})
		if err != nil {
			t.Fatal(err)
		}
		// One message handed out; the answers for the rest of a demand of 25 arrive later
		// and are held.
		msgs, err := s.Receive(t.Context(), 25)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		st := s.Stats()
		if st.Held == 0 {
			t.Fatalf("nothing held: %+v", st)
		}
		// The pipeline releases what it did not finish: visible at once, no flush interval.
		released := time.Now()
		ack(msgs, flow.Released, nil)
		synctest.Wait()
		calls := f.callsOf("ChangeMessageVisibilityBatch")
		if len(calls) == 0 || !calls[0].At.Equal(released) {
			t.Fatalf("release not sent at once: %+v", calls)
		}
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		if v, i := f.counts(qURL); v != 25 || i != 0 {
			t.Fatalf("after Close: %d visible, %d in flight", v, i)
		}
		for _, c := range f.callsOf("ChangeMessageVisibilityBatch") {
			if len(c.Entries) > 10 {
				t.Fatalf("batch of %d", len(c.Entries))
			}
			for _, e := range c.Entries {
				if e.Timeout != 0 {
					t.Fatalf("released with visibility %d", e.Timeout)
				}
			}
		}
		if st := s.Stats(); st.Released != 25 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestAttributes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(fifoURL)
		sent := time.Now()
		f.putWithAttrs(fifoURL, "g1:hello", map[string]types.MessageAttributeValue{
			"trace": {DataType: aws.String("String"), StringValue: aws.String("abc")},
		})
		s := start(t, f, Config{QueueURL: fifoURL, Retry: backoff.Immediate()})
		time.Sleep(time.Second)
		m := receive(t, s, 1)[0]
		ack([]flow.Message[Message]{m}, flow.Failed, errors.New("again"))
		m = receive(t, s, 1)[0]
		d := m.Data
		if d.Body != "g1:hello" || d.ID == "" || d.ReceiveCount != 2 || d.GroupID != "g1" ||
			!d.SentAt.Equal(sent.Truncate(time.Millisecond)) || d.FirstReceivedAt.Sub(sent) != time.Second ||
			d.SequenceNumber == "" || d.DeduplicationID == "" ||
			aws.ToString(d.MessageAttributes["trace"].StringValue) != "abc" || d.Attributes["ApproximateReceiveCount"] != "2" {
			t.Fatalf("message %+v", d)
		}
		ack([]flow.Message[Message]{m}, flow.Succeeded, nil)
	})
}

func TestFIFOGroupsOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(fifoURL)
		f.put(fifoURL, "a:1", "a:2", "b:1", "a:3", "b:2")
		s := start(t, f, Config{QueueURL: fifoURL, Retry: backoff.Fixed(10 * time.Second)})
		first, err := s.Receive(t.Context(), 10)
		if got := bodies(first); err != nil || !slices.Equal(got, []string{"a:1", "b:1"}) {
			t.Fatalf("first: %v %v", got, err)
		}
		if st := s.Stats(); st.Held != 3 {
			t.Fatalf("held %d, want a:2 a:3 b:2", st.Held)
		}
		// a:1 succeeds: a:2 is next, without asking SQS.
		before := len(f.callsOf("ReceiveMessage"))
		ack(first[:1], flow.Succeeded, nil)
		next, err := s.Receive(t.Context(), 5)
		if err != nil || !slices.Equal(bodies(next), []string{"a:2"}) {
			t.Fatalf("after a:1: %v %v", bodies(next), err)
		}
		if n := len(f.callsOf("ReceiveMessage")); n != before {
			t.Fatalf("%d receives for a held message", n-before)
		}
		// a:2 fails: a:3 is made visible again, and SQS delivers a:2 again before it.
		ack(next, flow.Failed, errors.New("boom"))
		time.Sleep(time.Second)
		if st := s.Stats(); st.Held != 1 {
			t.Fatalf("held %d, want b:2 only", st.Held)
		}
		var order []string
		ack(first[1:], flow.Succeeded, nil) // b:1
		for len(order) < 3 {
			msgs := receive(t, s, 1)
			order = append(order, bodies(msgs)...)
			ack(msgs, flow.Succeeded, nil)
		}
		if !slices.Equal(order, []string{"b:2", "a:2", "a:3"}) {
			t.Fatalf("order %v", order)
		}
	})
}

func TestDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 3)...)
		s := start(t, f, Config{Drain: true})
		msgs := receive(t, s, 3)
		// While the source holds messages, an empty receive is not the end.
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		_, err := s.Receive(ctx, 10)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Receive while holding messages: %v", err)
		}
		if n := len(f.callsOf("GetQueueAttributes")); n != 0 {
			t.Fatalf("%d drain checks while holding messages", n)
		}
		for _, c := range f.callsOf("ReceiveMessage") {
			if c.Wait > 1 {
				t.Fatalf("wait %ds while draining", c.Wait)
			}
		}
		// Another consumer holds a message: not drained either.
		f.put(qURL, "theirs")
		f.mu.Lock()
		f.queues[qURL].msgs[3].visibleAt = time.Now().Add(time.Minute)
		f.mu.Unlock()
		ack(msgs, flow.Succeeded, nil)
		began := time.Now()
		p := receiveAsync(t.Context(), s, 10)
		<-p.done
		if p.err != nil || !slices.Equal(bodies(p.msgs), []string{"theirs"}) {
			t.Fatalf("got %v, %v; want the other consumer's message once it came back", bodies(p.msgs), p.err)
		}
		if time.Since(began) < 50*time.Second {
			t.Fatalf("returned after %v", time.Since(began))
		}
		ack(p.msgs, flow.Succeeded, nil)
		began = time.Now()
		_, err = s.Receive(t.Context(), 10)
		if err != io.EOF {
			t.Fatalf("drained queue: %v", err)
		}
		if d := time.Since(began); d > 5*time.Second {
			t.Fatalf("EOF after %v", d)
		}
		if _, err := s.Receive(t.Context(), 1); err != io.EOF {
			t.Fatalf("again: %v", err)
		}
	})
}

// TestDrainWaitsForWhatItMadeVisibleAgain: a message that failed is hidden for the retry
// delay and is due back then. Counts of zero meanwhile (SQS's counts are approximate; moto can
// miss a message that turns visible as it counts) do not end the drain: the message is
// received again.
func TestDrainWaitsForWhatItMadeVisibleAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, "m")
		s := start(t, f, Config{Drain: true, Retry: &backoff.Policy{Base: 2 * time.Second, Max: 2 * time.Second}})
		msgs := receive(t, s, 1)
		f.mu.Lock()
		f.blindCounts = true
		f.mu.Unlock()
		ack(msgs, flow.Failed, errors.New("boom"))
		p := receiveAsync(t.Context(), s, 10)
		<-p.done
		if p.err != nil || !slices.Equal(bodies(p.msgs), []string{"m"}) {
			t.Fatalf("got %v, %v; want the failed message again once it came back", bodies(p.msgs), p.err)
		}
		if n := len(f.callsOf("GetQueueAttributes")); n == 0 {
			t.Fatal("no drain check while the message was hidden: the test proves nothing")
		}
		ack(p.msgs, flow.Succeeded, nil)
		if _, err := s.Receive(t.Context(), 10); err != io.EOF {
			t.Fatalf("drained queue: %v", err)
		}
	})
}

// checkedDrain starts a draining source on a queue of n messages, and checks it: Check reads
// the backlog.
func checkedDrain(t *testing.T, n int) (*fakeSQS, *Source) {
	t.Helper()
	f := newFake(qURL)
	f.put(qURL, numbered("m", n)...)
	s := start(t, f, Config{Drain: true})
	if err := s.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	return f, s
}

// TestDrainReceivesFollowTheBacklog checks that under Drain, no more receives are in flight
// than the backlog that Check counted still needs (at least one), and that an answer beyond
// that count lifts the bound.
func TestDrainReceivesFollowTheBacklog(t *testing.T) {
	t.Run("Counted", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f, s := checkedDrain(t, 25)
			p := receiveAsync(t.Context(), s, 100)
			synctest.Wait()
			if got := len(f.callsOf("ReceiveMessage")); got != 3 {
				t.Fatalf("%d receives for a demand of 100 and a backlog of 25, want 3", got)
			}
			<-p.done
			msgs := append(p.msgs, receive(t, s, 25-len(p.msgs))...)
			p = receiveAsync(t.Context(), s, 100) // the pipeline's next demand
			synctest.Wait()
			if got := len(f.callsOf("ReceiveMessage")); got != 4 {
				t.Fatalf("%d receives once the backlog was taken, want 4: one waits on the empty queue", got)
			}
			ack(msgs, flow.Succeeded, nil)
			<-p.done
			if p.err != io.EOF {
				t.Fatalf("Receive after the last delete: %v, %v; want io.EOF", bodies(p.msgs), p.err)
			}
		})
	})
	t.Run("CountShort", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f, s := checkedDrain(t, 5)
			f.put(qURL, numbered("late", 45)...) // sent after the count
			msgs := receive(t, s, 10)
			if got := len(f.callsOf("ReceiveMessage")); got != 1 {
				t.Fatalf("%d receives for a backlog counted at 5, want 1", got)
			}
			p := receiveAsync(t.Context(), s, 40)
			synctest.Wait()
			if got := len(f.callsOf("ReceiveMessage")); got != 5 {
				t.Fatalf("%d receives after an answer beyond the count, want 1 + 4 for a demand of 40", got)
			}
			<-p.done
			ack(append(msgs, p.msgs...), flow.Succeeded, nil)
		})
	})
}

// A drain ends with the last delete, not when the receive that waits on the empty queue
// ends its long poll.
func TestDrainEndsWithTheLastDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 3)...)
		s := start(t, f, Config{Drain: true})
		msgs := receive(t, s, 3)
		p := receiveAsync(t.Context(), s, 10) // the pipeline's next demand: a receive waits
		synctest.Wait()
		acked := time.Now()
		ack(msgs, flow.Succeeded, nil)
		<-p.done
		if p.err != io.EOF {
			t.Fatalf("Receive after the last delete: %v, %v; want io.EOF", bodies(p.msgs), p.err)
		}
		// With nothing else handed out, the deletes go at once (no flush interval), then
		// the drain check runs.
		if d := time.Since(acked); d > 0 {
			t.Errorf("io.EOF %v after the last message was acknowledged, want at once", d)
		}
		if v, i := f.counts(qURL); v+i != 0 {
			t.Errorf("%d visible and %d in flight left", v, i)
		}
	})
}

func TestRedeliveredWhileHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, "a")
		s := start(t, f, Config{VisibilityTimeout: 10 * time.Second, MaxExtension: -1})
		msgs := receive(t, s, 1)
		// Its visibility runs out (no heartbeat); the next receive gets it again.
		time.Sleep(11 * time.Second)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if more, err := s.Receive(ctx, 1); err == nil {
			t.Fatalf("handed out twice: %v", bodies(more))
		}
		if st := s.Stats(); st.Redelivered == 0 {
			t.Fatalf("stats %+v", st)
		}
		// The newest receipt handle is the one deleted.
		ack(msgs, flow.Succeeded, nil)
		time.Sleep(time.Second)
		if v, i := f.counts(qURL); v+i != 0 {
			for _, c := range f.calls {
				t.Logf("%+v", c)
			}
			t.Fatalf("not deleted: %d %d %+v", v, i, f.msg(qURL, msgs[0].Data.ID))
		}
	})
}

func TestCloseEndsWaitingReceive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		s, err := New(f, Config{QueueURL: qURL})
		if err != nil {
			t.Fatal(err)
		}
		p := receiveAsync(t.Context(), s, 3)
		synctest.Wait()
		if err := s.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		<-p.done
		if !errors.Is(p.err, ErrClosed) {
			t.Fatalf("waiting Receive: %v", p.err)
		}
	})
}

func TestCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		s := start(t, f, Config{})
		if err := s.Check(t.Context()); err != nil {
			t.Fatal(err)
		}
		s2 := start(t, f, Config{DeadLetterQueueURL: dlqURL})
		err := s2.Check(t.Context())
		var se *Error
		if !errors.Is(err, ErrQueueNotFound) || !errors.As(err, &se) || se.Queue != dlqURL {
			t.Fatalf("missing dead-letter queue: %v", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{}, "QueueURL"},
		{Config{QueueURL: "work"}, "QueueURL"},
		{Config{QueueURL: qURL, WaitTime: 21 * time.Second}, "WaitTime"},
		{Config{QueueURL: qURL, VisibilityTimeout: 13 * time.Hour}, "VisibilityTimeout"},
		{Config{QueueURL: qURL, MaxReceives: -1}, "MaxReceives"},
		{Config{QueueURL: qURL, PollBackoff: time.Minute, MaxPollBackoff: time.Second}, "PollBackoff"},
		{Config{QueueURL: fifoURL, DeadLetterQueueURL: dlqURL}, "DeadLetterQueueURL"},
		{Config{QueueURL: qURL, DeadLetterQueueURL: qURL}, "DeadLetterQueueURL"},
		{Config{QueueURL: qURL}, ""},
		{Config{QueueURL: fifoURL, WaitTime: -1, MaxExtension: -1}, ""},
	} {
		err := tc.cfg.Validate()
		var ce *ConfigError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.field != "" && (!errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrInvalidConfig)):
			t.Errorf("%+v: err = %v, want one about %s", tc.cfg, err, tc.field)
		}
	}
	d := Config{QueueURL: qURL, WaitTime: -1, VisibilityTimeout: 1500 * time.Millisecond}.withDefaults()
	if d.WaitTime != 0 || d.VisibilityTimeout != 2*time.Second || d.MaxReceives != 10 || d.FlushInterval != 100*time.Millisecond {
		t.Errorf("defaults %+v", d)
	}
}

func TestDemandTrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 3)...)
		var logs strings.Builder
		var mu sync.Mutex
		s := start(t, f, Config{Logger: newLogger(&mu, &logs)})
		msgs, err := s.Receive(t.Context(), 10)
		if err != nil || len(msgs) != 3 {
			t.Fatalf("got %d, %v", len(msgs), err)
		}
		ack(msgs, flow.Succeeded, nil)
		// The source writes its lines after it lets go of its lock, which may be after
		// Receive returned: wait until it has nothing left to do.
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, want := range []string{`level=DEBUG msg="handling demand of 10"`, `level=DEBUG msg="received 3"`} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("no %s in\n%s", want, logs.String())
			}
		}
	})
}

func TestReleaseOfVisibleMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, "a")
		s := start(t, f, Config{VisibilityTimeout: 10 * time.Second, MaxExtension: -1})
		msgs := receive(t, s, 1)
		time.Sleep(11 * time.Second) // no heartbeat: visible again
		ack(msgs, flow.Released, nil)
		time.Sleep(time.Second)
		if st := s.Stats(); st.Released != 1 || st.Invalid != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestBatchRequestLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 35)...)
		s := start(t, f, Config{MaxBatchRequests: 1})
		msgs := receive(t, s, 35)
		f.mu.Lock()
		block := make(chan struct{})
		f.blockBatch = block
		f.mu.Unlock()
		ack(msgs, flow.Succeeded, nil)
		// One delete waits for SQS; the others wait for it, without the loop spinning.
		time.Sleep(time.Minute)
		if n := len(f.callsOf("DeleteMessageBatch")); n != 0 {
			t.Fatalf("%d deletes answered while SQS was blocked", n)
		}
		f.mu.Lock()
		f.blockBatch = nil
		f.mu.Unlock()
		close(block)
		time.Sleep(time.Second)
		calls := f.callsOf("DeleteMessageBatch")
		if len(calls) != 4 {
			t.Fatalf("%d deletes, want 4", len(calls))
		}
		if v, i := f.counts(qURL); v+i != 0 {
			t.Fatalf("%d visible, %d in flight left", v, i)
		}
	})
}

// Handled messages waiting for their delete pause receiving once there are more than the
// delete requests can take in two rounds, so deletes that lag never let them pile up.
func TestDeleteBacklogPausesReceives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.put(qURL, numbered("m", 100)...)
		s := start(t, f, Config{MaxBatchRequests: 1, WaitTime: -1})
		f.mu.Lock()
		block := make(chan struct{})
		f.blockBatch = block
		f.mu.Unlock()
		handled := 0
		for handled < 60 {
			// Well within the 30 s visibility of the messages whose delete is blocked.
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			msgs, err := s.Receive(ctx, 10)
			cancel()
			if err != nil {
				break // receiving paused: the backlog is full
			}
			ack(msgs, flow.Succeeded, nil)
			handled += len(msgs)
			synctest.Wait()
		}
		// One delete of 10 is blocked in SQS; at most 2×1×10 more may wait for it.
		if handled > 10+20 {
			t.Fatalf("%d messages handled while deletes were blocked: receiving did not pause", handled)
		}
		if handled < 20 {
			t.Fatalf("only %d handled: receiving paused too early", handled)
		}
		f.mu.Lock()
		f.blockBatch = nil
		f.mu.Unlock()
		close(block)
		rest := receive(t, s, 100-handled)
		ack(rest, flow.Succeeded, nil)
		time.Sleep(time.Second)
		if v, i := f.counts(qURL); v+i != 0 {
			t.Fatalf("%d visible, %d in flight left", v, i)
		}
	})
}

func TestFIFOHeldMessagesKeptHidden(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(fifoURL)
		f.put(fifoURL, "a:1", "a:2", "a:3")
		s := start(t, f, Config{QueueURL: fifoURL, VisibilityTimeout: 30 * time.Second})
		msgs, err := s.Receive(t.Context(), 10)
		if err != nil || !slices.Equal(bodies(msgs), []string{"a:1"}) {
			t.Fatalf("got %v, %v", bodies(msgs), err)
		}
		time.Sleep(5 * time.Minute)
		if v, i := f.counts(fifoURL); v != 0 || i != 3 {
			t.Fatalf("after 5 minutes: %d visible, %d hidden", v, i)
		}
		extended := map[string]int{}
		for _, c := range f.callsOf("ChangeMessageVisibilityBatch") {
			for _, e := range c.Entries {
				extended[e.ID]++
			}
		}
		if len(extended) != 3 {
			t.Fatalf("extended %v, want all three", extended)
		}
		for _, want := range []string{"a:2", "a:3"} {
			ack(msgs, flow.Succeeded, nil)
			msgs = receive(t, s, 1)
			if got := msgs[0].Data.Body; got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		}
		ack(msgs, flow.Succeeded, nil)
	})
}

// A FIFO receive carries an attempt id of its own, so that the SDK's retry of a request whose
// answer was lost gets the same messages back; a standard queue's receive has none.
func TestFIFOReceiveAttemptIDs(t *testing.T) {
	for _, url := range []string{fifoURL, qURL} {
		synctest.Test(t, func(t *testing.T) {
			f := newFake(url)
			f.put(url, "a:1", "b:1", "c:1")
			s := start(t, f, Config{QueueURL: url})
			for range 3 {
				ack(receive(t, s, 1), flow.Succeeded, nil)
			}
			seen := map[string]bool{}
			for _, c := range f.callsOf("ReceiveMessage") {
				switch {
				case url == qURL && c.Attempt != "":
					t.Fatalf("standard queue: attempt id %q", c.Attempt)
				case url == fifoURL && (c.Attempt == "" || seen[c.Attempt]):
					t.Fatalf("FIFO receive with attempt id %q (seen before: %v)", c.Attempt, seen[c.Attempt])
				}
				seen[c.Attempt] = true
			}
			if url == fifoURL && len(seen) < 2 {
				t.Fatalf("%d distinct attempt ids in %d receives", len(seen), len(f.callsOf("ReceiveMessage")))
			}
		})
	}
}
