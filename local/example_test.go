package local_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/local"
	"github.com/palleto/palleto/s3event"
)

// A test starts the server, points its clients at it (here the ready-made ones; AWSConfig
// or Endpoint for others), and closes it when done. An object put in a bucket with
// notifications arrives in the queue as an S3 event.
func Example() {
	ctx := context.Background()
	srv, err := local.Start(ctx, local.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	q, b := srv.SQSClient(), srv.S3Client()

	created, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("uploads")})
	if err != nil {
		log.Fatal(err)
	}
	url := *created.QueueUrl
	if _, err := b.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("inbox")}); err != nil {
		log.Fatal(err)
	}
	_, err = b.PutBucketNotificationConfiguration(ctx, &s3.PutBucketNotificationConfigurationInput{
		Bucket: aws.String("inbox"),
		NotificationConfiguration: &s3types.NotificationConfiguration{
			QueueConfigurations: []s3types.QueueConfiguration{{
				QueueArn: aws.String("arn:aws:sqs:" + srv.Region() + ":" + local.Account + ":uploads"),
				Events:   []s3types.Event{"s3:ObjectCreated:*"},
			}},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := b.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("inbox"), Key: aws.String("report 1.csv"), Body: bytes.NewReader([]byte("a,b\n"))}); err != nil {
		log.Fatal(err)
	}

	// The first message is S3's test event; the second names the object.
	for range 2 {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 1})
		if err != nil || len(out.Messages) != 1 {
			log.Fatal(err, len(out.Messages))
		}
		m := out.Messages[0]
		n, err := s3event.Parse([]byte(*m.Body))
		if err != nil {
			log.Fatal(err)
		}
		if n.Test {
			fmt.Println("test event")
		}
		for _, o := range n.Objects {
			fmt.Printf("%s s3://%s/%s (%d bytes)\n", o.EventName, o.Bucket, o.Key, o.Size)
		}
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle}); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// test event
	// ObjectCreated:Put s3://inbox/report 1.csv (4 bytes)
}
