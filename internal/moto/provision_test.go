package moto_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/palleto/palleto/internal/moto"
)

// notification is the part of an S3 event notification these tests read.
type notification struct {
	Records []struct {
		EventName string `json:"eventName"`
		S3        struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key  string `json:"key"`
				Size int64  `json:"size"`
			} `json:"object"`
		} `json:"s3"`
	} `json:"Records"`
	Event string `json:"Event"` // "s3:TestEvent" for the configuration check
}

func TestNotificationDelivered(t *testing.T) {
	s := moto.Shared(t)
	ctx := t.Context()
	sqsc, s3c := s.SQS(), s.S3()
	q, err := moto.CreateQueue(ctx, sqsc, unique("events"), moto.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := moto.CreateBucket(ctx, s3c, "inbox"); err != nil {
		t.Fatal(err)
	}
	if err := moto.NotifyQueue(ctx, s3c, sqsc, "inbox", q); err != nil {
		t.Fatal(err)
	}
	body := []byte("one\ntwo\n")
	if _, err := moto.PutObject(ctx, s3c, "inbox", "logs/a b.txt", body); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(q.URL),
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     1,
		})
		if err != nil {
			t.Fatalf("no ObjectCreated notification: %v", err)
		}
		for _, m := range out.Messages {
			var n notification
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &n); err != nil {
				t.Fatalf("body %q: %v", aws.ToString(m.Body), err)
			}
			if n.Event == "s3:TestEvent" {
				continue
			}
			if len(n.Records) != 1 {
				t.Fatalf("body %q: want 1 record", aws.ToString(m.Body))
			}
			r := n.Records[0]
			// Keys are form-encoded; moto also encodes "/" as %2F, AWS does not.
			key, err := url.QueryUnescape(r.S3.Object.Key)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(r.EventName, "ObjectCreated:") || r.S3.Bucket.Name != "inbox" ||
				key != "logs/a b.txt" || r.S3.Object.Size != int64(len(body)) {
				t.Fatalf("record = %+v, want ObjectCreated of inbox/logs/a b.txt, %d bytes", r, len(body))
			}
			return
		}
	}
}

func TestRedriveToDeadLetterQueue(t *testing.T) {
	s := moto.Shared(t)
	ctx := t.Context()
	c := s.SQS()
	name := unique("work")
	q, err := moto.CreateQueue(ctx, c, name, moto.QueueOptions{VisibilityTimeout: time.Second, MaxReceiveCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	if q.DeadLetter == nil || q.DeadLetter.Name != name+"-dlq" || q.DeadLetter.ARN == "" {
		t.Fatalf("dead-letter queue = %+v", q.DeadLetter)
	}
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String("poison")}); err != nil {
		t.Fatal(err)
	}
	receive := func(url string) []sqstypes.Message {
		t.Helper()
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(url),
			MaxNumberOfMessages:         10,
			WaitTimeSeconds:             2, // longer than the visibility timeout
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	// Received and never deleted, the message comes back after each
	// visibility timeout until it has been received maxReceiveCount times.
	for want := 1; want <= 2; want++ {
		ms := receive(q.URL)
		if len(ms) != 1 || aws.ToString(ms[0].Body) != "poison" {
			t.Fatalf("receive %d: %d messages", want, len(ms))
		}
		got := ms[0].Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)]
		if got != strconv.Itoa(want) {
			t.Fatalf("receive %d: ApproximateReceiveCount = %s", want, got)
		}
	}
	if ms := receive(q.URL); len(ms) != 0 {
		t.Fatalf("received %d messages after maxReceiveCount receives, want 0", len(ms))
	}
	ms := receive(q.DeadLetter.URL)
	if len(ms) != 1 || aws.ToString(ms[0].Body) != "poison" {
		t.Fatalf("dead-letter queue holds %d messages, want the poison one", len(ms))
	}
}

func TestCreateFIFOQueue(t *testing.T) {
	s := moto.Shared(t)
	ctx := t.Context()
	c := s.SQS()
	name := unique("orders")
	q, err := moto.CreateQueue(ctx, c, name, moto.QueueOptions{FIFO: true, MaxReceiveCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	if q.Name != name+".fifo" || q.DeadLetter == nil || q.DeadLetter.Name != name+"-dlq.fifo" {
		t.Fatalf("queue = %+v, dead letter = %+v", q, q.DeadLetter)
	}
	// Content-based deduplication lets a send go without a deduplication id.
	for _, body := range []string{"a", "b"} {
		_, err := c.SendMessage(ctx, &sqs.SendMessageInput{
			QueueUrl: aws.String(q.URL), MessageBody: aws.String(body), MessageGroupId: aws.String("g"),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range out.Messages {
		got = append(got, aws.ToString(m.Body))
	}
	if strings.Join(got, ",") != "a,b" {
		t.Fatalf("received %q, want a,b in order", got)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		t.Fatal(err)
	}
	var policy struct {
		Target string `json:"deadLetterTargetArn"`
		Max    int    `json:"maxReceiveCount"`
	}
	if err := json.Unmarshal([]byte(attrs.Attributes["RedrivePolicy"]), &policy); err != nil {
		t.Fatal(err)
	}
	if policy.Target != q.DeadLetter.ARN || policy.Max != 3 {
		t.Fatalf("redrive policy = %+v, want %s after 3", policy, q.DeadLetter.ARN)
	}
}

func TestReset(t *testing.T) {
	s := moto.StartT(t)
	ctx := t.Context()
	if _, err := moto.CreateQueue(ctx, s.SQS(), "gone", moto.QueueOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := s.SQS().ListQueues(ctx, &sqs.ListQueuesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.QueueUrls) != 0 {
		t.Errorf("queues after Reset: %v", out.QueueUrls)
	}
}

// unique makes a queue name unique per run: -count=N shares the package's moto_server.
func unique(name string) string { return fmt.Sprintf("%s-%d", name, uniqueSeq.Add(1)) }

var uniqueSeq atomic.Int64
