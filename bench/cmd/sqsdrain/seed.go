package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// seedSenders is how many SendMessageBatch requests seed keeps in flight.
const seedSenders = 16

// seed sends n messages of size bytes to the queue, 10 to a request.
func seed(ctx context.Context, client *awssqs.Client, queueURL string, n, size int) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan int)
	var wg sync.WaitGroup
	for range seedSenders {
		wg.Go(func() {
			for first := range batches {
				if err := sendBatch(ctx, client, queueURL, first, min(10, n-first), size); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for first := 0; first < n; first += 10 {
		select {
		case batches <- first:
		case <-ctx.Done():
			break feed
		}
	}
	close(batches)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	return nil
}

func sendBatch(ctx context.Context, client *awssqs.Client, queueURL string, first, k, size int) error {
	entries := make([]types.SendMessageBatchRequestEntry, k)
	for i := range entries {
		id := strconv.Itoa(first + i)
		body := id + " " + strings.Repeat("x", max(0, size-len(id)-1))
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(body[:size])}
	}
	out, err := client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(queueURL), Entries: entries})
	if err != nil {
		return err
	}
	if len(out.Failed) > 0 {
		f := out.Failed[0]
		return fmt.Errorf("SendMessageBatch: %d entries failed, first: %s: %s", len(out.Failed), aws.ToString(f.Code), aws.ToString(f.Message))
	}
	return nil
}
