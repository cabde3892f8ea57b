package app

import (
	"errors"
	"testing"
	"time"

	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/sqs"
)

// What a failed SQS message's next step is, from its receive count, the retry policy and the
// queue's redrive policy as read at start-up.
func TestRetryNext(t *testing.T) {
	retry := backoff.Exponential(time.Second, 4*time.Second)
	five := &sqs.Redrive{DeadLetterQueueURL: "https://sqs.example/1/work-dlq", MaxReceiveCount: 5}
	failed, permanent := errors.New("404"), sqs.Permanent(errors.New("not an S3 notification"))
	for _, c := range []struct {
		receive int
		err     error
		dlqURL  string
		rp      *sqs.Redrive
		want    string
	}{
		{1, failed, "", five, "retried within 1s (receive 1 of 5, then dead-lettered)"},
		{3, failed, "", five, "retried within 4s (receive 3 of 5, then dead-lettered)"},
		{5, failed, "", five, "dead-lettered by the queue's redrive policy (receive 5 of 5)"},
		{7, failed, "", five, "retried within 4s, the queue's redrive policy has changed since start-up"},
		{2, failed, "", &sqs.Redrive{}, "retried within 2s, no dead-letter queue"},
		{2, failed, "", nil, "retried within 2s, unless the queue's redrive policy moves it"},
		{0, failed, "", five, "retried within 1s (receive 1 of 5, then dead-lettered)"}, // no count: the first
		{1, permanent, "https://sqs.example/1/bad", five, "moved to the dead-letter queue"},
		{1, permanent, "", five, "retried within 1s (receive 1 of 5, then dead-lettered)"}, // no --dlq-url: like any failure
	} {
		if got := retryNext(c.receive, c.err, retry, c.dlqURL, c.rp); got != c.want {
			t.Errorf("receive %d, %v, dlq %q, policy %+v: %q, want %q", c.receive, c.err, c.dlqURL, c.rp, got, c.want)
		}
	}
	if got := retryNext(2, failed, backoff.Immediate(), "", five); got != "retried at once (receive 2 of 5, then dead-lettered)" {
		t.Errorf("no retry delay: %q", got)
	}
}
