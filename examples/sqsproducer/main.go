// Command sqsproducer is the first seed — an SQS producer for GenStage — with Palleto's SQS
// source, on the embedded SQS of package local: three consumers ask for messages, the source asks SQS for
// exactly what they want (at most 10 per request), backs off while the queue is empty, and
// deletes what was handled in batches. Messages are sent in three waves with pauses, so the
// trace shows an empty queue costing almost nothing and demand being met as messages arrive.
//
//	go run ./examples/sqsproducer
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/local"
	"github.com/palleto/palleto/sqs"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := local.Start(ctx, local.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client := srv.SQSClient()
	created, err := client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("seed")})
	if err != nil {
		log.Fatal(err)
	}
	q := struct{ URL string }{aws.ToString(created.QueueUrl)}

	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := sqs.New(client, sqs.Config{QueueURL: q.URL, WaitTime: 2 * time.Second, Logger: logger})
	if err != nil {
		log.Fatal(err)
	}

	const waves, perWave = 3, 12
	go func() { // the producer side: messages arrive in waves
		for w := range waves {
			time.Sleep(1500 * time.Millisecond)
			for i := range perWave {
				body := fmt.Sprintf("wave %d message %d", w+1, i+1)
				if _, err := client.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: &q.URL, MessageBody: aws.String(body)}); err != nil {
					log.Print(err)
				}
			}
		}
	}()

	p := flow.New(flow.Config{Observer: flow.LogObserver(logger)})
	var consumed atomic.Int64
	flow.Sink(flow.From(p, "SQSProducer", src, flow.SourceOptions{}), "Consumer", func(_ context.Context, m sqs.Message) error {
		fmt.Println("consumed:", m.Body)
		if consumed.Add(1) == waves*perWave {
			cancel()
		}
		return nil
	}, flow.Options{Concurrency: 3, MaxDemand: 10})
	if err := p.Run(ctx); err != nil {
		log.Fatal(err)
	}
	closeCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	if err := src.Close(closeCtx); err != nil {
		log.Fatal(err)
	}
	st := src.Stats()
	fmt.Printf("consumed %d messages with %d ReceiveMessage and %d DeleteMessageBatch requests\n",
		consumed.Load(), st.Requests.ReceiveMessage, st.Requests.DeleteMessageBatch)
}
