package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// runLoop is the baseline: what one writes without a library. K goroutines,
// each receives up to 10 messages, handles them one after the other, and
// deletes them with one DeleteMessageBatch, until N are processed. Receives
// ask for the same attributes as the source, so that answers weigh the same.
func runLoop(ctx context.Context, c *counter, o options) (Result, error) {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var processed, deleted atomic.Int64
	wait := int32(max(o.wait, 0) / time.Second)

	var wg sync.WaitGroup
	t0 := time.Now()
	for range o.concurrency {
		wg.Go(func() {
			for runCtx.Err() == nil {
				out, err := c.ReceiveMessage(runCtx, &awssqs.ReceiveMessageInput{
					QueueUrl:                    aws.String(o.queueURL),
					MaxNumberOfMessages:         10,
					WaitTimeSeconds:             wait,
					MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
					MessageAttributeNames:       []string{"All"},
				})
				if err != nil {
					if runCtx.Err() == nil {
						cancel(fmt.Errorf("ReceiveMessage: %w", err))
					}
					return
				}
				if len(out.Messages) == 0 {
					continue
				}
				entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
				for i, m := range out.Messages {
					c.handle(o.work)
					entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
				}
				done := processed.Add(int64(len(entries)))
				// Handled messages are deleted even when the run is ending.
				dout, err := c.DeleteMessageBatch(context.WithoutCancel(runCtx), &awssqs.DeleteMessageBatchInput{
					QueueUrl: aws.String(o.queueURL),
					Entries:  entries,
				})
				if err != nil {
					cancel(fmt.Errorf("DeleteMessageBatch: %w", err))
					return
				}
				deleted.Add(int64(len(dout.Successful)))
				if len(dout.Failed) > 0 {
					f := dout.Failed[0]
					cancel(fmt.Errorf("DeleteMessageBatch: %d entries failed, first: %s: %s", len(dout.Failed), aws.ToString(f.Code), aws.ToString(f.Message)))
					return
				}
				if done >= int64(o.n) {
					cancel(nil)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(t0)
	if err := context.Cause(runCtx); err != nil && !errors.Is(err, context.Canceled) {
		return Result{}, err
	}
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	_, unstarted := c.peaks()
	return Result{
		Processed:    processed.Load(),
		Deleted:      deleted.Load(),
		Seconds:      elapsed.Seconds(),
		MaxUnstarted: unstarted,
	}, nil
}

// runCeiling is what K handlers allow with no queue at all: K goroutines take
// N messages from a counter and handle them. It measures how long the handlers'
// work really takes on the machine as loaded.
func runCeiling(ctx context.Context, c *counter, o options) (Result, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range o.concurrency {
		wg.Go(func() {
			for ctx.Err() == nil && next.Add(1) <= int64(o.n) {
				c.handle(o.work)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	return Result{Processed: int64(o.n), Seconds: time.Since(t0).Seconds()}, nil
}
