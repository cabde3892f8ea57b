package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/local"
)

// queueAttrs returns the visible and the in-flight count of a queue.
func queueAttrs(t *testing.T, sqsc *awssqs.Client, url string) (visible, hidden string) {
	t.Helper()
	attrs, err := sqsc.GetQueueAttributes(t.Context(), &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatal(err)
	}
	return attrs.Attributes["ApproximateNumberOfMessages"], attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]
}

// A drain in which a message fails exits 3, and its summary counts the distinct messages by
// outcome and reason; a drain in which every message succeeds exits 0.
func TestDrainExitStatus(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		ctx := t.Context()
		s3c, sqsc := srv.S3(), srv.SQS()
		name := fmt.Sprint("drain-exit-", time.Now().UnixNano())
		q, err := moto.CreateQueue(ctx, sqsc, name, moto.QueueOptions{MaxReceiveCount: 2})
		if err != nil {
			t.Fatal(err)
		}
		if err := moto.CreateBucket(ctx, s3c, name); err != nil {
			t.Fatal(err)
		}
		if err := moto.NotifyQueue(ctx, s3c, sqsc, name, q); err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": srv.URL} {
			t.Setenv(k, v)
		}
		args := []string{"run", "--queue-url", q.URL, "--out", t.TempDir(), "--drain", "--status", "off", "--wait-time", "1s",
			"--retry-delay", "100ms", "--max-retry-delay", "200ms", "--log-level", "error"}

		if _, err := moto.PutObject(ctx, s3c, name, "here", []byte("a\n")); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runMain(t, nil, args...)
		if code != 0 || !strings.Contains(stdout, "2 messages (2 succeeded)") {
			t.Fatalf("all succeeded: exit %d, stdout %q, stderr %q; want 0 and 2 messages succeeded", code, stdout, stderr)
		}

		body := fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
		"s3":{"bucket":{"name":%q},"object":{"key":"gone","size":1,"sequencer":"01"}}}]}`, name)
		if _, err := sqsc.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: &q.URL, MessageBody: &body}); err != nil {
			t.Fatal(err)
		}
		if _, err := moto.PutObject(ctx, s3c, name, "here-too", []byte("b\n")); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr = runMain(t, nil, args...)
		if code != 3 {
			t.Fatalf("a message failed: exit %d, want 3; stdout %q, stderr %q", code, stdout, stderr)
		}
		if !strings.Contains(stdout, "2 messages (1 succeeded, 1 failed (1 object not found))") {
			t.Errorf("summary %q does not count the distinct messages by outcome and reason", stdout)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "1 of 2 messages did not succeed") {
			t.Errorf("stderr %q: want one line counting the failed messages", stderr)
		}
	})
}

// The first SIGINT says that the run is shutting down and for how long; a second one stops it
// at once, with status 130, the messages in flight visible again.
func TestSecondInterruptStopsAtOnce(t *testing.T) {
	bin := binary(t)
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		ctx := t.Context()
		s3c, sqsc := srv.S3(), srv.SQS()
		name := fmt.Sprint("second-int-", time.Now().UnixNano())
		q, err := moto.CreateQueue(ctx, sqsc, name, moto.QueueOptions{VisibilityTimeout: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if err := moto.CreateBucket(ctx, s3c, name); err != nil {
			t.Fatal(err)
		}
		if err := moto.NotifyQueue(ctx, s3c, sqsc, name, q); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if _, err := moto.PutObject(ctx, s3c, name, fmt.Sprint("o-", i), []byte("x\n")); err != nil {
				t.Fatal(err)
			}
		}
		// S3 answers no download for an hour: the work stays in flight.
		proxy := local.StartProxyT(t, local.ProxyConfig{Target: srv.URL, Faults: local.Faults{Latency: time.Hour, Actions: []string{"S3.GetObject"}}})
		cmd := exec.Command(bin, "run", "--queue-url", q.URL, "--out", t.TempDir(), "--wait-time", "1s",
			"--visibility-timeout", "10m", "--shutdown-timeout", "10m", "--status", "off")
		cmd.Env = append(os.Environ(), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
			"AWS_ENDPOINT_URL="+srv.URL, "AWS_ENDPOINT_URL_S3="+proxy.URL())
		logs := &lockedBuffer{}
		cmd.Stderr = logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				<-exited
			}
		})
		waitFor(t, "downloads in flight", func() bool { return proxy.Counts()["S3.GetObject"].Requests >= 2 })

		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the shutdown announced", func() bool { return strings.Contains(logs.String(), "shutting down") })
		if l := logs.String(); !strings.Contains(l, "10m0s") {
			t.Errorf("the shutdown line does not say how long it may take:\n%s", l)
		}
		select {
		case err := <-exited:
			t.Fatalf("exited after one interrupt, with the downloads in flight and a 10m grace period: %v\n%s", err, logs)
		case <-time.After(500 * time.Millisecond):
		}
		start := time.Now()
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("still running 30s after the second interrupt\n%s", logs)
		}
		if code := cmd.ProcessState.ExitCode(); code != 130 {
			t.Fatalf("exit %d after a second interrupt, want 130\n%s", code, logs)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("the second interrupt took %v to stop the run", took)
		}
		// Released, not left to a 10-minute visibility timeout.
		if _, hidden := queueAttrs(t, sqsc, q.URL); hidden != "0" {
			t.Fatalf("%s messages still in flight after the second interrupt\n%s", hidden, logs)
		}
	})
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An endpoint that accepts connections and never answers: the request times out after the
// wait plus --request-timeout, and the run says so, instead of hanging.
func TestSilentEndpointTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() { defer conns.Done(); io.Copy(io.Discard, c); c.Close() }() // reads, never answers
		}
	}()
	defer func() { ln.Close(); <-accepted; conns.Wait() }()
	url := "http://" + ln.Addr().String()
	start := time.Now()
	code, _, stderr := runMain(t, map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_ENDPOINT_URL": url, "AWS_MAX_ATTEMPTS": "1"},
		"run", "--queue-url", url+"/123456789012/q", "--out", t.TempDir(), "--status", "off", "--wait-time", "1s", "--request-timeout", "1s")
	if code != 2 || !strings.Contains(stderr, "cannot reach SQS") || !strings.Contains(stderr, "Timeout") {
		t.Fatalf("exit %d, %q: want 2 and a timeout named", code, stderr)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("the check took %v against a silent endpoint", took)
	}
}
