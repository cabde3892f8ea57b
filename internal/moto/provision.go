package moto

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The provisioning functions below take clients rather than a Server, so that
// they work against any endpoint: moto, a fault proxy in front of it, fauxqs.

// QueueOptions configures CreateQueue. The zero value is a standard queue
// with SQS's defaults.
type QueueOptions struct {
	// FIFO makes a FIFO queue: ".fifo" is appended to the name if missing,
	// and content-based deduplication is on unless Attributes says otherwise.
	FIFO bool
	// VisibilityTimeout, in whole seconds; zero keeps the default (30 s).
	VisibilityTimeout time.Duration
	// MaxReceiveCount, if positive, creates a dead-letter queue named
	// "<name>-dlq" (of the same kind) and a redrive policy that moves a
	// message there after that many receives.
	MaxReceiveCount int
	// Attributes are set as given, after and over the ones above.
	Attributes map[string]string
}

// Queue describes a queue made by CreateQueue.
type Queue struct {
	Name string
	URL  string
	ARN  string
	// DeadLetter is the queue's dead-letter queue, if it has one.
	DeadLetter *Queue
}

// CreateQueue creates a queue, and its dead-letter queue if asked to.
func CreateQueue(ctx context.Context, c *sqs.Client, name string, o QueueOptions) (Queue, error) {
	base := strings.TrimSuffix(name, ".fifo")
	attrs := map[string]string{}
	if o.FIFO {
		name = base + ".fifo"
		attrs[string(sqstypes.QueueAttributeNameFifoQueue)] = "true"
		attrs[string(sqstypes.QueueAttributeNameContentBasedDeduplication)] = "true"
	}
	if o.VisibilityTimeout > 0 {
		attrs[string(sqstypes.QueueAttributeNameVisibilityTimeout)] = strconv.Itoa(int(o.VisibilityTimeout / time.Second))
	}
	var dlq *Queue
	if o.MaxReceiveCount > 0 {
		d, err := CreateQueue(ctx, c, base+"-dlq", QueueOptions{FIFO: o.FIFO})
		if err != nil {
			return Queue{}, err
		}
		dlq = &d
		policy, err := json.Marshal(map[string]any{
			"deadLetterTargetArn": d.ARN,
			"maxReceiveCount":     o.MaxReceiveCount,
		})
		if err != nil {
			return Queue{}, err
		}
		attrs[string(sqstypes.QueueAttributeNameRedrivePolicy)] = string(policy)
	}
	for k, v := range o.Attributes {
		attrs[k] = v
	}
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return Queue{}, fmt.Errorf("moto: create queue %s: %w", name, err)
	}
	q := Queue{Name: name, URL: aws.ToString(out.QueueUrl), DeadLetter: dlq}
	got, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       out.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return Queue{}, fmt.Errorf("moto: get ARN of queue %s: %w", name, err)
	}
	q.ARN = got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	return q, nil
}

// CreateBucket creates a bucket in us-east-1 (the region takes no location
// constraint).
func CreateBucket(ctx context.Context, c *s3.Client, name string) error {
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("moto: create bucket %s: %w", name, err)
	}
	return nil
}

// NotifyQueue makes the bucket send its s3:ObjectCreated:* notifications to
// the queue, and sets the queue's policy so that S3 may send to it (moto does
// not check it; AWS does).
func NotifyQueue(ctx context.Context, s3c *s3.Client, sqsc *sqs.Client, bucket string, q Queue) error {
	policy, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []map[string]any{{
			"Sid":       "AllowS3Notifications",
			"Effect":    "Allow",
			"Principal": map[string]string{"Service": "s3.amazonaws.com"},
			"Action":    "sqs:SendMessage",
			"Resource":  q.ARN,
			"Condition": map[string]any{
				"ArnLike": map[string]string{"aws:SourceArn": "arn:aws:s3:::" + bucket},
			},
		}},
	})
	if err != nil {
		return err
	}
	_, err = sqsc.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(q.URL),
		Attributes: map[string]string{string(sqstypes.QueueAttributeNamePolicy): string(policy)},
	})
	if err != nil {
		return fmt.Errorf("moto: set policy of queue %s: %w", q.Name, err)
	}
	_, err = s3c.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String(bucket),
		NotificationConfiguration: &s3types.NotificationConfiguration{
			QueueConfigurations: []s3types.QueueConfiguration{{
				QueueArn: aws.String(q.ARN),
				Events:   []s3types.Event{"s3:ObjectCreated:*"},
			}},
		},
	})
	if err != nil {
		return fmt.Errorf("moto: configure notifications of bucket %s: %w", bucket, err)
	}
	return nil
}

// PutObject stores body under key.
func PutObject(ctx context.Context, c *s3.Client, bucket, key string, body []byte) (*s3.PutObjectOutput, error) {
	out, err := c.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
	})
	if err != nil {
		return nil, fmt.Errorf("moto: put s3://%s/%s: %w", bucket, key, err)
	}
	return out, nil
}
