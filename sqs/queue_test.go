package sqs

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
)

func TestQueueCounts(t *testing.T) {
	f := newFake(qURL)
	f.put(qURL, "a", "b", "c")
	if _, err := f.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(qURL), MaxNumberOfMessages: 1, VisibilityTimeout: 30}); err != nil {
		t.Fatal(err)
	}
	c, err := QueueCounts(t.Context(), f, qURL)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Counts{Visible: 2, InFlight: 1}); c != want || c.Total() != 3 {
		t.Fatalf("counts %+v, want %+v", c, want)
	}
	if _, err := QueueCounts(t.Context(), f, qURL+"-missing"); !errors.Is(err, ErrQueueNotFound) {
		t.Fatalf("missing queue: %v", err)
	}
	for _, bad := range []map[string]string{
		{"ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesNotVisible": "x", "ApproximateNumberOfMessagesDelayed": "0"},
		{"ApproximateNumberOfMessages": "1", "ApproximateNumberOfMessagesNotVisible": "0"},
		{"ApproximateNumberOfMessages": "-1", "ApproximateNumberOfMessagesNotVisible": "0", "ApproximateNumberOfMessagesDelayed": "0"},
	} {
		if _, err := QueueCounts(t.Context(), attrsAPI{f, bad}, qURL); err == nil || !strings.Contains(err.Error(), "sqs: counts of "+qURL) {
			t.Errorf("attributes %v: %v, want an error naming the queue", bad, err)
		}
	}
}

// attrsAPI answers GetQueueAttributes with attrs.
type attrsAPI struct {
	*fakeSQS
	attrs map[string]string
}

func (a attrsAPI) GetQueueAttributes(context.Context, *awssqs.GetQueueAttributesInput, ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error) {
	return &awssqs.GetQueueAttributesOutput{Attributes: a.attrs}, nil
}

func TestRedrivePolicy(t *testing.T) {
	f := newFake(qURL, dlqURL)
	if rp, err := RedrivePolicy(t.Context(), f, qURL); rp != (Redrive{}) || err != nil {
		t.Fatalf("no redrive policy: %+v, %v; want none", rp, err)
	}
	for _, policy := range []string{
		`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:work-dlq","maxReceiveCount":3}`,
		`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:work-dlq","maxReceiveCount":"3"}`, // as some tools set it
	} {
		f.queues[qURL].redrive = policy
		if rp, err := RedrivePolicy(t.Context(), f, qURL); rp != (Redrive{DeadLetterQueueURL: dlqURL, MaxReceiveCount: 3}) || err != nil {
			t.Fatalf("policy %s: %+v, %v; want %q after 3 receives", policy, rp, err, dlqURL)
		}
	}
	f.queues[qURL].redrive = `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:gone","maxReceiveCount":3}`
	if rp, err := RedrivePolicy(t.Context(), f, qURL); rp != (Redrive{}) || !errors.Is(err, ErrQueueNotFound) {
		t.Fatalf("missing dead-letter queue: %+v, %v", rp, err)
	}
	for policy, want := range map[string]string{
		`{"deadLetterTargetArn":"arn:aws:sns:us-east-1:123456789012:topic"}`: "names no dead-letter queue",
		`not json`: "names no dead-letter queue",
		`{}`:       "names no dead-letter queue",
		`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:work-dlq"}`:                       "has no maxReceiveCount of 1 or more",
		`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:work-dlq","maxReceiveCount":0}`:   "has no maxReceiveCount of 1 or more",
		`{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:work-dlq","maxReceiveCount":"x"}`: "has no maxReceiveCount of 1 or more",
	} {
		f.queues[qURL].redrive = policy
		rp, err := RedrivePolicy(t.Context(), f, qURL)
		if rp != (Redrive{}) || err == nil || !strings.Contains(err.Error(), "the redrive policy of "+qURL+" "+want) {
			t.Errorf("policy %s: %+v, %v; want an error naming the queue", policy, rp, err)
		}
	}
}

// TestSourceRedrivePolicyAfterCheck checks that the source's redrive policy comes from the
// attributes its start-up check read, without a request of its own, and that before a check
// it asks SQS.
func TestSourceRedrivePolicyAfterCheck(t *testing.T) {
	f := newFake(qURL, dlqURL)
	f.queues[qURL].redrive = `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:work-dlq","maxReceiveCount":4}`
	want := Redrive{DeadLetterQueueURL: dlqURL, MaxReceiveCount: 4}
	src := newSource(t, f, Config{QueueURL: qURL})
	if rp, err := src.RedrivePolicy(t.Context()); rp != want || err != nil {
		t.Fatalf("before Check: %+v, %v; want %+v", rp, err, want)
	}
	if n := len(f.callsOf("GetQueueAttributes")); n != 1 {
		t.Fatalf("before Check: %d GetQueueAttributes, want 1", n)
	}
	if err := src.Check(t.Context()); err != nil {
		t.Fatal(err)
	}
	if rp, err := src.RedrivePolicy(t.Context()); rp != want || err != nil {
		t.Fatalf("after Check: %+v, %v; want %+v", rp, err, want)
	}
	if n := len(f.callsOf("GetQueueAttributes")); n != 2 {
		t.Errorf("%d GetQueueAttributes in all, want 2 (one before Check, Check's own)", n)
	}
}

func TestSend(t *testing.T) {
	f := newFake(qURL)
	bodies := numbered("job", 25)
	if err := Send(t.Context(), f, qURL, bodies...); err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for _, c := range f.callsOf("SendMessageBatch") {
		sizes = append(sizes, len(c.Entries))
	}
	if !slices.Equal(sizes, []int{10, 10, 5}) {
		t.Fatalf("batches of %v, want 10, 10, 5", sizes)
	}
	var got []string
	for _, m := range f.queues[qURL].msgs {
		got = append(got, m.body)
		if m.group != "" {
			t.Errorf("message group %q on a standard queue", m.group)
		}
	}
	if !slices.Equal(got, bodies) {
		t.Fatalf("queue holds %v, want %v", got, bodies)
	}
}

// On a FIFO queue each message's group is its body, and each message has a deduplication id
// of its own, even when two bodies are the same.
func TestSendFIFO(t *testing.T) {
	f := newFake(fifoURL)
	if err := Send(t.Context(), f, fifoURL, "a", "b", "a"); err != nil {
		t.Fatal(err)
	}
	calls := f.callsOf("SendMessageBatch")
	if len(calls) != 1 || len(calls[0].Entries) != 3 {
		t.Fatalf("calls %+v", calls)
	}
	dedup := map[string]bool{}
	for i, e := range calls[0].Entries {
		if want := []string{"a", "b", "a"}[i]; e.Group != want {
			t.Errorf("entry %d: group %q, want %q", i, e.Group, want)
		}
		if e.Dedup == "" || dedup[e.Dedup] {
			t.Errorf("entry %d: deduplication id %q, not one of its own", i, e.Dedup)
		}
		dedup[e.Dedup] = true
	}
}

// Entries that SQS fails on its side are sent again, alone, after the pauses of sendPause;
// the others are sent once.
func TestSendRetriesFailedEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(fifoURL)
		f.sendFault = func(n int, body string) (types.BatchResultErrorEntry, bool) {
			return types.BatchResultErrorEntry{Code: aws.String("InternalError"), Message: aws.String("try again")}, body == "b" && n <= 2
		}
		if err := send(t.Context(), f, fifoURL, []string{"a", "b", "c"}, func() float64 { return 0 }); err != nil {
			t.Fatal(err)
		}
		calls := f.callsOf("SendMessageBatch")
		if len(calls) != 3 || len(calls[0].Entries) != 2 || len(calls[1].Entries) != 0 || len(calls[2].Entries) != 1 {
			t.Fatalf("calls %+v, want a and c accepted at once, b at the third try", calls)
		}
		for i, want := range []time.Duration{sendPause.Step(1), sendPause.Step(2)} {
			if d := calls[i+1].At.Sub(calls[i].At); d != want {
				t.Errorf("try %d %v after the one before, want %v", i+2, d, want)
			}
		}
		// The retried entry keeps its deduplication id: the try that SQS failed may have
		// been stored after all.
		if d := f.sendDedups["b"]; len(d) != 3 || d[0] == "" || d[1] != d[0] || d[2] != d[0] || calls[2].Entries[0].Group != "b" {
			t.Fatalf("deduplication ids of b's tries %q, last %+v", d, calls[2].Entries)
		}
		if got := len(f.queues[fifoURL].msgs); got != 3 {
			t.Fatalf("%d messages in the queue, want 3", got)
		}
	})
}

func TestSendGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.sendFault = func(n int, body string) (types.BatchResultErrorEntry, bool) {
			return types.BatchResultErrorEntry{Code: aws.String("InternalError"), Message: aws.String("down")}, body == "b"
		}
		err := Send(t.Context(), f, qURL, "a", "b")
		if err == nil || !strings.Contains(err.Error(), "1 messages not accepted after 4 tries (InternalError: down)") {
			t.Fatalf("Send: %v", err)
		}
		if f.sendTries["a"] != 1 || f.sendTries["b"] != sendAttempts {
			t.Fatalf("tries %v", f.sendTries)
		}
	})
}

func TestSendRefusedEntry(t *testing.T) {
	f := newFake(qURL)
	f.sendFault = func(n int, body string) (types.BatchResultErrorEntry, bool) {
		return types.BatchResultErrorEntry{Code: aws.String("InvalidMessageContents"), Message: aws.String("bad character"), SenderFault: true}, body == "b\x00"
	}
	err := Send(t.Context(), f, qURL, "a", "b\x00")
	if err == nil || !strings.Contains(err.Error(), `send "b\x00" to `+qURL+": InvalidMessageContents: bad character") {
		t.Fatalf("Send: %v", err)
	}
	if f.sendTries["b\x00"] != 1 {
		t.Fatalf("tries %v: a refused entry was sent again", f.sendTries)
	}
}

func TestSendCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(qURL)
		f.sendFault = func(int, string) (types.BatchResultErrorEntry, bool) {
			return types.BatchResultErrorEntry{Code: aws.String("InternalError")}, true
		}
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := send(ctx, f, qURL, []string{"a"}, func() float64 { return 0 }); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("send: %v", err)
		}
	})
}

// TestQueueHelpersMoto runs QueueCounts, RedrivePolicy and Send against the embedded
// backend and moto_server.
func TestQueueHelpersMoto(t *testing.T) {
	t.Parallel()
	awstest.Each(t, func(t *testing.T, b awstest.Backend) {
		c := b.SQS()
		q := newQueue(t, c, moto.QueueOptions{MaxReceiveCount: 3})
		rp, err := RedrivePolicy(t.Context(), c, q.URL)
		if err != nil || rp != (Redrive{DeadLetterQueueURL: q.DeadLetter.URL, MaxReceiveCount: 3}) {
			t.Fatalf("RedrivePolicy: %+v, %v; want %q after 3 receives", rp, err, q.DeadLetter.URL)
		}
		if rp, err := RedrivePolicy(t.Context(), c, q.DeadLetter.URL); rp != (Redrive{}) || err != nil {
			t.Fatalf("RedrivePolicy of a queue without a redrive policy: %+v, %v", rp, err)
		}
		if err := Send(t.Context(), c, q.URL, numbered("job", 15)...); err != nil {
			t.Fatal(err)
		}
		n, err := QueueCounts(t.Context(), c, q.URL)
		if err != nil || n != (Counts{Visible: 15}) {
			t.Fatalf("QueueCounts: %+v, %v; want 15 visible", n, err)
		}

		fq := newQueue(t, c, moto.QueueOptions{FIFO: true})
		if err := Send(t.Context(), c, fq.URL, "a", "b", "a"); err != nil {
			t.Fatal(err)
		}
		src := newSource(t, c, Config{QueueURL: fq.URL, WaitTime: -1, Retry: backoff.Immediate()})
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		groups := map[string]string{}
		for len(groups) < 2 {
			msgs, err := src.Receive(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				groups[m.Data.Body] = m.Data.GroupID
			}
			ack(msgs, flow.Succeeded, nil)
		}
		if groups["a"] != "a" || groups["b"] != "b" {
			t.Fatalf("groups %v, want each message in the group of its body", groups)
		}
	})
}
