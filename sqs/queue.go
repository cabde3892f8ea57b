package sqs

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/palleto/palleto/backoff"
)

// What a program does with a queue besides receiving from it: count its messages, find its
// dead-letter queue, send to it. Each takes the same narrow API as the source.

// Counts are a queue's approximate message counts, as SQS reports them.
type Counts struct {
	Visible  int // ApproximateNumberOfMessages: waiting to be received
	InFlight int // ApproximateNumberOfMessagesNotVisible: received, not yet deleted
	Delayed  int // ApproximateNumberOfMessagesDelayed: not yet visible
}

// Total returns Visible + InFlight + Delayed.
func (c Counts) Total() int { return c.Visible + c.InFlight + c.Delayed }

var countAttributes = []types.QueueAttributeName{
	types.QueueAttributeNameApproximateNumberOfMessages,
	types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
}

// QueueCounts asks SQS for the approximate message counts of the queue at queueURL. A failed
// request is an *Error.
func QueueCounts(ctx context.Context, api API, queueURL string) (Counts, error) {
	out, err := api.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: countAttributes,
	})
	if err != nil {
		return Counts{}, &Error{Action: "GetQueueAttributes", Queue: queueURL, Kind: classify(err), Err: err}
	}
	c, err := countsOf(out.Attributes)
	if err != nil {
		return Counts{}, fmt.Errorf("sqs: counts of %s: %w", queueURL, err)
	}
	return c, nil
}

// countsOf reads the counts from the attributes of a GetQueueAttributes answer.
func countsOf(attrs map[string]string) (Counts, error) {
	var c Counts
	for i, p := range []*int{&c.Visible, &c.InFlight, &c.Delayed} {
		name := string(countAttributes[i])
		v, ok := attrs[name]
		if !ok {
			return Counts{}, fmt.Errorf("no %s in the answer", name)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Counts{}, fmt.Errorf("%s is %q, not a count", name, v)
		}
		*p = n
	}
	return c, nil
}

// Redrive is a queue's redrive policy: SQS moves a message to the dead-letter queue once
// it has been received MaxReceiveCount times without being deleted. The zero Redrive is a
// queue without one: its messages are retried without end.
type Redrive struct {
	DeadLetterQueueURL string
	MaxReceiveCount    int
}

// RedrivePolicy reads the redrive policy of the queue at queueURL and finds the URL of the
// dead-letter queue it names. A queue without a redrive policy has the zero Redrive and a
// nil error. A failed request is an *Error; a policy that names no SQS queue, or no
// maxReceiveCount of 1 or more, an error naming the queue.
func RedrivePolicy(ctx context.Context, api API, queueURL string) (Redrive, error) {
	out, err := api.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		return Redrive{}, &Error{Action: "GetQueueAttributes", Queue: queueURL, Kind: classify(err), Err: err}
	}
	return redriveOf(ctx, api, queueURL, out.Attributes[string(types.QueueAttributeNameRedrivePolicy)])
}

// redriveOf reads a queue's RedrivePolicy attribute ("" for none), as RedrivePolicy does.
func redriveOf(ctx context.Context, api API, queueURL, policy string) (Redrive, error) {
	if policy == "" {
		return Redrive{}, nil
	}
	arn, n, err := parseRedrive(queueURL, policy)
	if err != nil {
		return Redrive{}, err
	}
	u, err := api.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String(arn[5]), QueueOwnerAWSAccountId: aws.String(arn[4])})
	if err != nil {
		return Redrive{}, &Error{Action: "GetQueueUrl", Queue: strings.Join(arn, ":"), Kind: classify(err), Err: err}
	}
	return Redrive{DeadLetterQueueURL: aws.ToString(u.QueueUrl), MaxReceiveCount: n}, nil
}

// parseRedrive returns the parts of the dead-letter queue's ARN and the maxReceiveCount of a
// RedrivePolicy attribute that is not empty.
func parseRedrive(queueURL, policy string) (arn []string, maxReceiveCount int, err error) {
	var rp struct {
		Target string `json:"deadLetterTargetArn"`
		// A number as SQS gives it back, or a string as some tools set it.
		Max json.RawMessage `json:"maxReceiveCount"`
	}
	err = json.Unmarshal([]byte(policy), &rp)
	arn = strings.Split(rp.Target, ":") // arn:PARTITION:sqs:REGION:ACCOUNT:NAME
	if err != nil || len(arn) != 6 || arn[0] != "arn" || arn[2] != "sqs" || arn[4] == "" || arn[5] == "" {
		return nil, 0, fmt.Errorf("sqs: the redrive policy of %s names no dead-letter queue: %q", queueURL, policy)
	}
	n, err := strconv.Atoi(strings.Trim(string(rp.Max), `"`))
	if err != nil || n < 1 {
		return nil, 0, fmt.Errorf("sqs: the redrive policy of %s has no maxReceiveCount of 1 or more: %q", queueURL, policy)
	}
	return arn, n, nil
}

// sendAttempts bounds the tries of a SendMessageBatch entry that SQS failed on its side.
const sendAttempts = 4

// sendPause is the pause before the entries that SQS failed are sent again.
var sendPause = backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second, Jitter: 1}

// Send sends one message per body to the queue at queueURL, in batches of 10, and returns once
// SQS has accepted every one of them, or an error. Entries that SQS fails on its side are sent
// again, after a pause, up to 4 tries; an entry it refuses (the sender's fault) or a request
// that fails as a whole (the SDK has retried it already) ends the call with an error. On a
// FIFO queue a message's group is its body, so that the messages of one body are handled one
// at a time, in order; each message has a deduplication id of its own, kept across tries, so
// that SQS never merges it into one sent earlier.
func Send(ctx context.Context, api API, queueURL string, bodies ...string) error {
	return send(ctx, api, queueURL, bodies, rand.Float64)
}

func send(ctx context.Context, api API, queueURL string, bodies []string, draw func() float64) error {
	fifo := isFIFO(queueURL)
	for len(bodies) > 0 {
		batch := bodies[:min(maxBatch, len(bodies))]
		bodies = bodies[len(batch):]
		entries := make([]types.SendMessageBatchRequestEntry, len(batch))
		for i, b := range batch {
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(b)}
			if fifo {
				entries[i].MessageGroupId = aws.String(b)
				entries[i].MessageDeduplicationId = aws.String(strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36))
			}
		}
		for attempt := 1; len(entries) > 0; attempt++ {
			if attempt > 1 {
				t := time.NewTimer(sendPause.DelayAt(attempt-1, draw()))
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
			}
			out, err := api.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return &Error{Action: "SendMessageBatch", Queue: queueURL, Kind: classify(err), Err: err}
			}
			accepted := make(map[string]bool, len(out.Successful))
			for _, ok := range out.Successful {
				accepted[aws.ToString(ok.Id)] = true
			}
			failed := make(map[string]types.BatchResultErrorEntry, len(out.Failed))
			for _, f := range out.Failed {
				failed[aws.ToString(f.Id)] = f
			}
			again := entries[:0]
			cause := "not in the answer"
			for _, e := range entries {
				if accepted[aws.ToString(e.Id)] {
					continue
				}
				f, ok := failed[aws.ToString(e.Id)]
				if ok && f.SenderFault {
					return fmt.Errorf("sqs: send %q to %s: %s: %s", aws.ToString(e.MessageBody), queueURL, aws.ToString(f.Code), aws.ToString(f.Message))
				}
				if ok {
					cause = aws.ToString(f.Code) + ": " + aws.ToString(f.Message)
				}
				again = append(again, e) // failed on SQS's side, or not answered: try again
			}
			entries = again
			if len(entries) > 0 && attempt == sendAttempts {
				return fmt.Errorf("sqs: send to %s: %d messages not accepted after %d tries (%s)", queueURL, len(entries), sendAttempts, cause)
			}
		}
	}
	return nil
}
