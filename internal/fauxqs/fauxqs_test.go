package fauxqs_test

import (
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/goleak"

	"github.com/palleto/palleto/internal/fauxqs"
	"github.com/palleto/palleto/internal/moto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestBatches(t *testing.T) {
	s := fauxqs.StartT(t)
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL = %q", s.URL())
	}
	ctx := t.Context()
	c := s.SQS()
	q, err := moto.CreateQueue(ctx, c, "bench", moto.QueueOptions{VisibilityTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := 0; i < n; i += 10 {
		var entries []sqstypes.SendMessageBatchRequestEntry
		for j := i; j < i+10; j++ {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(j)), MessageBody: aws.String(fmt.Sprint("m", j))})
		}
		out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries})
		if err != nil || len(out.Failed) != 0 || len(out.Successful) != 10 {
			t.Fatalf("SendMessageBatch = %+v, %v", out, err)
		}
	}
	got := map[string]bool{}
	for len(got) < n {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 {
			t.Fatalf("queue empty after %d of %d messages", len(got), n)
		}
		var del []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range out.Messages {
			if got[aws.ToString(m.Body)] {
				t.Fatalf("%s received twice", aws.ToString(m.Body))
			}
			got[aws.ToString(m.Body)] = true
			del = append(del, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
		dout, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: del})
		if err != nil || len(dout.Failed) != 0 || len(dout.Successful) != len(del) {
			t.Fatalf("DeleteMessageBatch = %+v, %v", dout, err)
		}
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if a := attrs.Attributes; a["ApproximateNumberOfMessages"] != "0" || a["ApproximateNumberOfMessagesNotVisible"] != "0" {
		t.Errorf("after deleting everything: %v", a)
	}
}

func TestStop(t *testing.T) {
	s := fauxqs.StartT(t)
	pid := s.PID()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Stop = %v, want ESRCH", pid, err)
	}
}

func TestNoScript(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("skipped: Node.js is not on the PATH, and fauxqs looks for it before its script")
	}
	t.Setenv("PALLETO_FAUXQS_DIR", t.TempDir())
	if _, err := fauxqs.Start(t.Context(), nil); !errors.Is(err, fauxqs.ErrNoScript) {
		t.Fatalf("Start = %v, want ErrNoScript", err)
	}
}

func TestLongPollAndRedrive(t *testing.T) {
	s := fauxqs.StartT(t)
	ctx := t.Context()
	c := s.SQS()
	q, err := moto.CreateQueue(ctx, c, "work", moto.QueueOptions{VisibilityTimeout: time.Second, MaxReceiveCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	receive := func(url string, wait int32) []sqstypes.Message {
		t.Helper()
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: wait})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	// A long poll that begins on an empty queue gets what is sent meanwhile.
	got := make(chan []sqstypes.Message, 1)
	go func() {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 10})
		if err != nil {
			t.Error(err)
		}
		got <- out.Messages
	}()
	// Let the poll reach the server first. Were the send to win the race
	// the test would pass without a long poll, but a server that answers an
	// empty queue at once fails it whenever the poll arrives first.
	time.Sleep(200 * time.Millisecond)
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String("poison")}); err != nil {
		t.Fatal(err)
	}
	if ms := <-got; len(ms) != 1 || aws.ToString(ms[0].Body) != "poison" {
		t.Fatalf("long poll got %d messages", len(ms))
	}
	// Received once (maxReceiveCount) and not deleted: the next receive
	// after the visibility timeout moves it to the dead-letter queue.
	if ms := receive(q.URL, 3); len(ms) != 0 {
		t.Fatalf("received %d messages after maxReceiveCount, want 0", len(ms))
	}
	if ms := receive(q.DeadLetter.URL, 1); len(ms) != 1 || aws.ToString(ms[0].Body) != "poison" {
		t.Fatalf("dead-letter queue holds %d messages, want the poison one", len(ms))
	}
}

func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		s, err := fauxqs.Start(b.Context(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}
