package moto_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/palleto/palleto/internal/moto"
)

func Example() {
	ctx := context.Background()
	s, err := moto.Start(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Stop()

	q, err := moto.CreateQueue(ctx, s.SQS(), "events", moto.QueueOptions{
		VisibilityTimeout: 5 * time.Second,
		MaxReceiveCount:   3,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := moto.CreateBucket(ctx, s.S3(), "inbox"); err != nil {
		log.Fatal(err)
	}
	if err := moto.NotifyQueue(ctx, s.S3(), s.SQS(), "inbox", q); err != nil {
		log.Fatal(err)
	}
	fmt.Println(q.Name, q.DeadLetter.Name)
	fmt.Println(q.ARN)
	// Prints:
	//	events events-dlq
	//	arn:aws:sqs:us-east-1:123456789012:events
	//
	// (Compiled, not run: moto_server is optional, and an example cannot
	// skip. TestRedriveToDeadLetterQueue and TestNotificationDelivered check the same.)
}
