package sqs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/sqs"
)

// The source feeds a pipeline until SIGTERM, or until the queue is drained. A body that is
// not JSON goes to the dead-letter queue at once; other failures are retried with backoff
// until the queue's redrive policy moves the message.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	src, err := sqs.New(awssqs.NewFromConfig(awsCfg, sqs.CopyRequestBodies), sqs.Config{
		QueueURL:           "https://sqs.eu-west-1.amazonaws.com/123456789012/uploads",
		DeadLetterQueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/uploads-dlq",
		Retry:              backoff.Exponential(time.Second, 5*time.Minute),
		Drain:              true,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := src.Check(ctx); err != nil {
		log.Fatal(err) // a missing queue, refused credentials, an unreachable endpoint
	}

	p := flow.New(flow.Config{GracePeriod: 30 * time.Second})
	msgs := flow.From(p, "sqs", flow.Source[sqs.Message](src), flow.SourceOptions{})
	flow.Sink(msgs, "handle", func(ctx context.Context, m sqs.Message) error {
		var event map[string]any
		if err := json.Unmarshal([]byte(m.Body), &event); err != nil {
			return sqs.Permanent(err)
		}
		return nil // deleted
	}, flow.Options{Concurrency: 4, MaxDemand: 10})
	runErr := p.Run(ctx)

	// After Run: make the last deletes and release what is left.
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Close(closeCtx); err != nil {
		log.Print(err)
	}
	if runErr != nil {
		log.Fatal(runErr)
	}
	st := src.Stats()
	fmt.Printf("received %d, deleted %d, dead-lettered %d\n", st.Received, st.Deleted, st.DeadLettered)
}

// What the README's example leaves to its reader.
var queueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/uploads"

func handle(ctx context.Context, body string) error { return nil }

// The README's example, compiled here (TestReadmeShowsExample keeps the two the same): a
// source feeding a pipeline until ctx ends, then its last deletes.
func Example_readme() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	awsCfg, err := config.LoadDefaultConfig(ctx) // github.com/aws/aws-sdk-go-v2/config
	if err != nil {
		log.Fatal(err)
	}
	src, err := sqs.New(awssqs.NewFromConfig(awsCfg, sqs.CopyRequestBodies), sqs.Config{QueueURL: queueURL})
	if err != nil {
		log.Fatal(err)
	}
	if err := src.Check(ctx); err != nil {
		log.Fatal(err) // a missing queue, refused credentials, an unreachable endpoint
	}

	p := flow.New(flow.Config{GracePeriod: 30 * time.Second})
	msgs := flow.From(p, "sqs", flow.Source[sqs.Message](src), flow.SourceOptions{})
	flow.Sink(msgs, "handle", func(ctx context.Context, m sqs.Message) error {
		return handle(ctx, m.Body) // nil: the message is deleted; an error: retried with backoff
	}, flow.Options{Concurrency: 4, MaxDemand: 10})
	runErr := p.Run(ctx) // until ctx is cancelled (then a graceful shutdown)

	closing, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := src.Close(closing); err != nil { // the last deletes; what is left is released
		log.Print(err)
	}
	if runErr != nil {
		log.Fatal(runErr)
	}
}
