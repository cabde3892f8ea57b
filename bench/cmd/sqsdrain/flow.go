package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/sqs"
)

// closeTimeout bounds the source's Close: its last deletes and visibility changes.
const closeTimeout = 30 * time.Second

// A pipeline is the flow side: the sqs source and K handlers.
type pipeline struct {
	src       *sqs.Source
	p         *flow.Pipeline
	processed atomic.Int64
	cancel    context.CancelFunc // ends Run once N messages are processed
	n         int64
}

// newPipeline builds the source and the pipeline that sqsdrain measures:
//
//	flow.From(p, "sqs", src) → flow.Sink("work", K handlers)
//
// Each handler sleeps o.work per message. cancel is called once o.n messages
// are processed (never, if o.n is 0).
func newPipeline(c *counter, o options, cancel context.CancelFunc) (*pipeline, error) {
	wait := o.wait
	if wait <= 0 {
		wait = -1 // the source's short polling
	}
	src, err := sqs.New(c, sqs.Config{
		QueueURL:         o.queueURL,
		MaxReceives:      o.maxReceives,
		MaxBatchRequests: o.maxBatchReq,
		WaitTime:         wait,
		FlushInterval:    o.flush,
	})
	if err != nil {
		return nil, err
	}
	pl := &pipeline{src: src, p: flow.New(flow.Config{}), cancel: cancel, n: int64(o.n)}
	minDemand := o.minDemand
	if minDemand == 0 {
		minDemand = -1 // flow's way of saying 0
	}
	counted := flow.SourceFunc[sqs.Message](func(ctx context.Context, n int) ([]flow.Message[sqs.Message], error) {
		msgs, err := src.Receive(ctx, n)
		c.handedOut(len(msgs))
		return msgs, err
	})
	s := flow.From(pl.p, "sqs", counted, flow.SourceOptions{Concurrency: o.sourceConc})
	flow.Sink(s, "work", func(context.Context, sqs.Message) error {
		c.handle(o.work)
		if pl.processed.Add(1) == pl.n {
			pl.cancel()
		}
		return nil
	}, flow.Options{Concurrency: o.concurrency, MaxDemand: o.maxDemand, MinDemand: minDemand})
	return pl, nil
}

// close closes the source, within closeTimeout.
func (pl *pipeline) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	return pl.src.Close(ctx)
}

// sampleHeld reads Stats().Held every millisecond until stop is closed, and
// sends the most it saw.
func sampleHeld(src *sqs.Source, stop <-chan struct{}, most chan<- int) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	m := 0
	for {
		select {
		case <-stop:
			most <- max(m, src.Stats().Held)
			return
		case <-t.C:
			m = max(m, src.Stats().Held)
		}
	}
}

func runFlow(ctx context.Context, c *counter, o options) (Result, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	pl, err := newPipeline(c, o, cancel)
	if err != nil {
		return Result{}, err
	}
	stop, most := make(chan struct{}), make(chan int, 1)
	go sampleHeld(pl.src, stop, most)

	t0 := time.Now()
	runErr := pl.p.Run(runCtx)
	closeErr := pl.close()
	elapsed := time.Since(t0)
	close(stop)
	maxSampled := <-most

	if err := errors.Join(runErr, closeErr); err != nil {
		return Result{}, err
	}
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	held, unstarted := c.peaks()
	st := pl.src.Stats()
	return Result{
		Processed:      pl.processed.Load(),
		Deleted:        st.Deleted,
		Seconds:        elapsed.Seconds(),
		MaxUnstarted:   unstarted,
		DemandBound:    o.concurrency * o.maxDemand,
		MaxHeld:        held,
		MaxHeldSampled: maxSampled,
	}, nil
}

// runEmpty runs the pipeline against a queue that stays empty for o.watch, and
// counts the receives sent meanwhile.
func runEmpty(ctx context.Context, c *counter, _ *proxyStats, o options) (Result, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	pl, err := newPipeline(c, o, cancel)
	if err != nil {
		return Result{}, err
	}
	c.recordReceives()
	t0 := time.Now()
	ran := make(chan error, 1)
	go func() { ran <- pl.p.Run(runCtx) }()

	var watchErr error
	select {
	case <-time.After(o.watch):
	case <-ctx.Done():
		watchErr = ctx.Err()
	case err := <-ran:
		// Only a failing source ends the pipeline early.
		ran <- err
		watchErr = fmt.Errorf("the pipeline ended after %v", time.Since(t0).Round(time.Millisecond))
	}
	reqs, starts := c.requests(), c.receiveStarts(t0)
	watched := time.Since(t0)
	cancel()
	runErr := <-ran
	closeErr := pl.close()
	if err := errors.Join(watchErr, runErr, closeErr); err != nil {
		return Result{}, err
	}
	return Result{
		Processed:     pl.processed.Load(),
		Deleted:       pl.src.Stats().Deleted,
		Seconds:       watched.Seconds(),
		WatchS:        watched.Seconds(),
		Requests:      reqs,
		ReceiveStarts: starts,
	}, nil
}

// runIdle lets the pipeline take the o.n messages in the queue (none if o.n is
// 0: then it runs for a second), stops it, waits for the source's deletes, and
// then watches the source, which has no Receive call to serve, for o.watch.
// The proxy's figures start with the watch.
func runIdle(ctx context.Context, c *counter, proxy *proxyStats, o options) (Result, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	pl, err := newPipeline(c, o, cancel)
	if err != nil {
		return Result{}, err
	}
	if o.n == 0 {
		t := time.AfterFunc(time.Second, cancel)
		defer t.Stop()
	}
	if err := pl.p.Run(runCtx); err != nil {
		return Result{}, errors.Join(err, pl.close())
	}
	processed := pl.processed.Load()
	// The deletes of the last messages are the pipeline's, not the idle source's.
	for deadline := time.Now().Add(closeTimeout); pl.src.Stats().Deleted < processed; {
		if time.Now().After(deadline) {
			return Result{}, errors.Join(fmt.Errorf("%d of %d messages deleted after %v", pl.src.Stats().Deleted, processed, closeTimeout), pl.close())
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := proxy.reset(ctx); err != nil {
		return Result{}, errors.Join(err, pl.close())
	}
	before := c.requests()
	c.recordReceives()
	t0 := time.Now()
	var watchErr error
	select {
	case <-time.After(o.watch):
	case <-ctx.Done():
		watchErr = ctx.Err()
	}
	after, starts := c.requests(), c.receiveStarts(t0)
	watched := time.Since(t0)
	if err := errors.Join(watchErr, pl.close()); err != nil {
		return Result{}, err
	}
	during := map[string]int64{}
	for action, n := range after {
		if d := n - before[action]; d > 0 {
			during[action] = d
		}
	}
	return Result{
		Processed:     processed,
		Deleted:       pl.src.Stats().Deleted,
		Seconds:       watched.Seconds(),
		WatchS:        watched.Seconds(),
		Requests:      during,
		ReceiveStarts: starts,
	}, nil
}
