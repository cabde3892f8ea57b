package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
)

// A counter is the SQS client of both sides: it counts requests by action as
// they are sent, and follows messages from their receipt to the start of
// their handling, so that both sides are measured the same way.
type counter struct {
	*awssqs.Client

	mu       sync.Mutex
	byAction map[string]int64
	starts   []time.Time // of receives, when recording
	record   bool

	received     int64 // messages in ReceiveMessage answers
	handed       int64 // messages the source handed to the pipeline (flow only)
	started      int64 // messages a handler began
	maxHeld      int64 // most of received − handed
	maxUnstarted int64 // most of received − started

	busy atomic.Int64 // nanoseconds spent in handle
}

func newCounter(c *awssqs.Client) *counter {
	return &counter{Client: c, byAction: map[string]int64{}}
}

func (c *counter) sent(action string) {
	c.mu.Lock()
	c.byAction[action]++
	if c.record && action == "ReceiveMessage" {
		c.starts = append(c.starts, time.Now())
	}
	c.mu.Unlock()
}

// requests returns the requests sent so far by action.
func (c *counter) requests() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int64, len(c.byAction))
	for k, v := range c.byAction {
		m[k] = v
	}
	return m
}

func (c *counter) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range c.byAction {
		n += v
	}
	return n
}

// recordReceives starts keeping the times at which receives are sent.
func (c *counter) recordReceives() {
	c.mu.Lock()
	c.record, c.starts = true, nil
	c.mu.Unlock()
}

func (c *counter) receiveStarts(since time.Time) []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]float64, len(c.starts))
	for i, t := range c.starts {
		out[i] = float64(t.Sub(since).Milliseconds()) / 1000
	}
	return out
}

// gotMessages counts k messages received. It is counted when the answer is in,
// before the source has seen it, so held and unstarted counts are if anything
// too high.
func (c *counter) gotMessages(k int) {
	c.mu.Lock()
	c.received += int64(k)
	c.maxHeld = max(c.maxHeld, c.received-c.handed)
	c.maxUnstarted = max(c.maxUnstarted, c.received-c.started)
	c.mu.Unlock()
}

func (c *counter) handedOut(k int) {
	c.mu.Lock()
	c.handed += int64(k)
	c.mu.Unlock()
}

// handle is a handler's work on one message: sleep for work.
func (c *counter) handle(work time.Duration) {
	c.mu.Lock()
	c.started++
	c.mu.Unlock()
	if work <= 0 {
		return
	}
	t := time.Now()
	time.Sleep(work)
	c.busy.Add(int64(time.Since(t)))
}

// busyTime is the time handlers have spent in handle.
func (c *counter) busyTime() time.Duration { return time.Duration(c.busy.Load()) }

func (c *counter) peaks() (held, unstarted int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.maxHeld, c.maxUnstarted
}

func (c *counter) ReceiveMessage(ctx context.Context, in *awssqs.ReceiveMessageInput, opts ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error) {
	c.sent("ReceiveMessage")
	out, err := c.Client.ReceiveMessage(ctx, in, opts...)
	if err == nil {
		c.gotMessages(len(out.Messages))
	}
	return out, err
}

func (c *counter) DeleteMessageBatch(ctx context.Context, in *awssqs.DeleteMessageBatchInput, opts ...func(*awssqs.Options)) (*awssqs.DeleteMessageBatchOutput, error) {
	c.sent("DeleteMessageBatch")
	return c.Client.DeleteMessageBatch(ctx, in, opts...)
}

func (c *counter) ChangeMessageVisibilityBatch(ctx context.Context, in *awssqs.ChangeMessageVisibilityBatchInput, opts ...func(*awssqs.Options)) (*awssqs.ChangeMessageVisibilityBatchOutput, error) {
	c.sent("ChangeMessageVisibilityBatch")
	return c.Client.ChangeMessageVisibilityBatch(ctx, in, opts...)
}

func (c *counter) SendMessage(ctx context.Context, in *awssqs.SendMessageInput, opts ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error) {
	c.sent("SendMessage")
	return c.Client.SendMessage(ctx, in, opts...)
}

func (c *counter) GetQueueAttributes(ctx context.Context, in *awssqs.GetQueueAttributesInput, opts ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error) {
	c.sent("GetQueueAttributes")
	return c.Client.GetQueueAttributes(ctx, in, opts...)
}
