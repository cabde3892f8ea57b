package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/object"
	"github.com/palleto/palleto/output"
	"github.com/palleto/palleto/sqs"
)

// getObjectError is the SDK's error for a GetObject sent to endpoint (one attempt), resolving
// host names with resolver when not nil.
func getObjectError(t *testing.T, endpoint string, resolver *net.Resolver) error {
	t.Helper()
	httpClient := awshttp.NewBuildableClient().WithDialerOptions(func(d *net.Dialer) { d.Resolver = resolver })
	client := s3.NewFromConfig(moto.Config(endpoint), func(o *s3.Options) {
		o.UsePathStyle, o.RetryMaxAttempts, o.HTTPClient = true, 1, httpClient
	})
	_, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	if err == nil {
		t.Fatalf("GetObject from %s succeeded", endpoint)
	}
	return err
}

// noDNS is a resolver whose name server cannot be reached: every name that /etc/hosts does not
// hold fails to resolve.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no name server here")
}}

// A fault pauses intake once; probes back off 1 s, 2 s, 4 s…; a probe that succeeds resumes
// intake; a fault that outlasts maxFault gives up with it.
func TestGatePausesProbesAndGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var probes []time.Duration
		healthy := false
		start := time.Now()
		fault := &envFault{err: errors.New("disk full"), probe: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			probes = append(probes, time.Since(start))
			if healthy {
				return nil
			}
			return errors.New("still full")
		}}
		var gaveUp error
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		g := newGate(slog.New(slog.DiscardHandler), 20*time.Second, func(err error) { gaveUp = err })
		done := make(chan struct{})
		go func() { defer close(done); g.run(ctx) }()

		if !g.report(fault) || g.report(errors.New("a message's own")) {
			t.Fatal("report does not tell the environment's faults from the others")
		}
		g.report(fault) // a second fault during the pause: no second pause
		if n, paused := g.Pauses(); n != 1 || !paused {
			t.Fatalf("pauses %d, paused %v; want 1, true", n, paused)
		}
		if ok, reason := g.Health(); ok || reason == "" {
			t.Fatal("healthy while paused")
		}
		waited := make(chan error, 1)
		go func() { waited <- g.wait(ctx) }()
		time.Sleep(7*time.Second + time.Millisecond)
		synctest.Wait()
		select {
		case <-waited:
			t.Fatal("intake resumed while the probe fails")
		default:
		}
		mu.Lock()
		want := []time.Duration{time.Second, 3 * time.Second, 7 * time.Second}
		if len(probes) != len(want) || probes[0] != want[0] || probes[1] != want[1] || probes[2] != want[2] {
			t.Fatalf("probes at %v, want %v", probes, want)
		}
		healthy = true
		mu.Unlock()
		time.Sleep(8 * time.Second)
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
		if ok, _ := g.Health(); !ok {
			t.Fatal("unhealthy after the probe succeeded")
		}

		// Faults again, never cured, with no success in between: the first fault's time
		// counts, and the gate gives up once maxFault has passed.
		mu.Lock()
		healthy = false
		mu.Unlock()
		g.report(fault)
		synctest.Wait()
		time.Sleep(30 * time.Second)
		<-done
		if gaveUp == nil {
			t.Fatal("did not give up")
		}
		if ok, reason := g.Health(); ok || reason == "" {
			t.Fatal("healthy after giving up")
		}
	})
}

// The classification of errors: the message's own, or the environment's.
func TestFaultClassification(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		err  error
		env  bool
	}{
		{"disk full", dirFault(dir, &fs.PathError{Op: "write", Path: dir, Err: syscall.ENOSPC}), true},
		{"read-only", dirFault(dir, &fs.PathError{Op: "mkdirat", Path: dir, Err: syscall.EROFS}), true},
		{"not writable", dirFault(dir, fmt.Errorf("write: %w", fs.ErrPermission)), true},
		{"a result path collision", dirFault(dir, fmt.Errorf("x: %w", output.ErrCollision)), false},
		{"missing object", s3Fault(nil, "b", "k", "", fmt.Errorf("x: %w", object.ErrNotFound)), false},
		{"corrupt object", s3Fault(nil, "b", "k", "", fmt.Errorf("x: %w", object.ErrCorrupt)), false},
		{"S3 timeout", s3Fault(nil, "b", "k", "", fmt.Errorf("x: %w", context.DeadlineExceeded)), true},
		{"shutdown", s3Fault(nil, "b", "k", "", fmt.Errorf("x: %w", context.Canceled)), false},
		{"stalled body", s3Fault(nil, "b", "k", "", fmt.Errorf("x: %w", &object.StallError{Bucket: "b", Key: "k", Idle: time.Second})), true},
		// No answer at all: the SDK's error has the status 0, and a network error under it.
		{"S3 refusing connections", s3Fault(nil, "b", "k", "", getObjectError(t, "http://127.0.0.1:1", nil)), true},
		{"S3's host name not resolving", s3Fault(nil, "b", "k", "", getObjectError(t, "http://s3.palleto.invalid:9000", noDNS)), true},
	} {
		var f *envFault
		if got := errors.As(c.err, &f); got != c.env {
			t.Errorf("%s: environment's %v, want %v", c.name, got, c.env)
		}
	}
}

// A message that fails by a fault of the environment on the last delivery that the queue's
// redrive policy allows is kept, not put back (SQS would move it to the dead-letter queue at
// its next receive), and handed out again once intake resumes: also to a Receive that was
// already waiting on the source, which has nothing more to bring.
func TestLastDeliveryKeptThroughAPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var healthy atomic.Bool
		fault := &envFault{err: errors.New("disk full"), probe: func(context.Context) error {
			if healthy.Load() {
				return nil
			}
			return errors.New("still full")
		}}
		ctx, cancel := context.WithCancel(t.Context())
		g := newGate(slog.New(slog.DiscardHandler), time.Hour, func(error) {})
		done := make(chan struct{})
		go func() { defer close(done); g.run(ctx) }()
		src := &ackRecorder{maxReceive: 1, batches: [][]sqs.Message{{{ID: "m1", ReceiveCount: 1}}}}
		led := newLedger(src, g, true)

		first, err := led.Receive(ctx, 10)
		if err != nil || len(first) != 1 {
			t.Fatalf("Receive = %v, %v", first, err)
		}
		again := make(chan []flow.Message[sqs.Message], 1)
		go func() {
			msgs, _ := led.Receive(ctx, 10) // waits on the source, which has nothing more
			again <- msgs
		}()
		synctest.Wait()
		led.Acknowledge([]flow.Result{{Token: first[0].Token, Status: flow.Failed, Err: fault}})
		if len(src.results) != 0 {
			t.Fatalf("the source was told %+v; want the message kept", src.results)
		}
		time.Sleep(10 * time.Second)
		select {
		case msgs := <-again:
			t.Fatalf("handed out %v while intake is paused", msgs)
		default:
		}
		healthy.Store(true)
		msgs := <-again
		if len(msgs) != 1 || msgs[0].Data.ID != "m1" {
			t.Fatalf("once intake resumed, Receive = %+v; want m1 again", msgs)
		}
		led.Acknowledge([]flow.Result{{Token: msgs[0].Token, Status: flow.Succeeded}})
		if len(src.results) != 1 || src.results[0].Status != flow.Succeeded || src.results[0].Token != "m1" {
			t.Fatalf("the source was told %+v; want m1 succeeded", src.results)
		}
		if tl := led.tally(); tl.Succeeded != 1 || tl.Released != 0 || tl.Failed() != 0 {
			t.Errorf("tally %+v; want 1 succeeded", tl)
		}
		cancel()
		<-done
	})
}
