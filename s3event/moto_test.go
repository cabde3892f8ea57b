package s3event_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/s3event"
)

// TestNotifications puts objects with awkward keys into a bucket that
// notifies a queue, and parses what arrives: the test event, then one object
// per key, decoded back to the key that was put. It runs on the embedded
// backend and on moto.
func TestNotifications(t *testing.T) {
	awstest.Each(t, testNotifications)
}

func testNotifications(t *testing.T, b awstest.Backend) {
	ctx := t.Context()
	sqsc, s3c := b.SQS(), b.S3()
	q, err := moto.CreateQueue(ctx, sqsc, "events", moto.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := moto.CreateBucket(ctx, s3c, "inbox"); err != nil {
		t.Fatal(err)
	}
	if err := moto.NotifyQueue(ctx, s3c, sqsc, "inbox", q); err != nil {
		t.Fatal(err)
	}
	keys := map[string]int64{
		"plain.txt":              1,
		"dir/a b+c%2B ü/../x.gz": 2,
		"/leading/slash":         3,
		"100% done; a=b&c?.log":  4,
		"日本/ファイル 名.txt":          5,
		"a+b c%41.txt":           6,
	}
	for k, size := range keys {
		if _, err := moto.PutObject(ctx, s3c, "inbox", k, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tests, seen := 0, map[string]bool{}
	for len(seen) < len(keys) || tests == 0 {
		out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            aws.String(q.URL),
			MaxNumberOfMessages: 10,
			WaitTimeSeconds:     1,
		})
		if err != nil {
			t.Fatalf("got %d of %d objects, %d test events: %v", len(seen), len(keys), tests, err)
		}
		for _, m := range out.Messages {
			body := aws.ToString(m.Body)
			n, err := s3event.Parse([]byte(body))
			if err != nil {
				t.Fatalf("Parse(%s): %v", body, err)
			}
			if n.Test {
				tests++
				continue
			}
			if len(n.Objects) != 1 || len(n.Skipped) != 0 {
				t.Fatalf("Parse(%s) = %+v, want one object", body, n)
			}
			o := n.Objects[0]
			size, ok := keys[o.Key]
			if !ok || seen[o.Key] {
				t.Fatalf("unexpected or repeated key %q in %s", o.Key, body)
			}
			seen[o.Key] = true
			if o.Bucket != "inbox" || o.Size != size || o.EventName != "ObjectCreated:Put" || o.ETag == "" || o.EventTime.IsZero() {
				t.Errorf("object %+v: want inbox, size %d, ObjectCreated:Put, an ETag and a time", o, size)
			}
			// moto sends no sequencer (see the package comment); S3 and
			// the embedded backend do.
			if b.Name == awstest.LocalName && o.Sequencer == "" {
				t.Errorf("object %+v: no sequencer", o)
			}
		}
	}
	if tests != 1 {
		t.Errorf("got %d test events, want 1", tests)
	}
}
