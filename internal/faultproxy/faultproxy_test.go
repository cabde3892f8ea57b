package faultproxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/palleto/palleto/internal/faultproxy"
	"github.com/palleto/palleto/internal/moto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(moto.SharedMain(m))
}

// setup starts a proxy in front of the shared moto, with a queue of the
// test's own made directly on moto (so that faults cannot get in the way).
func setup(t *testing.T, cfg faultproxy.Config) (*moto.Server, *faultproxy.Proxy, moto.Queue) {
	t.Helper()
	m := moto.Shared(t)
	cfg.Target = m.URL()
	p := faultproxy.StartT(t, cfg)
	q, err := moto.CreateQueue(t.Context(), m.SQS(), queueName(t), moto.QueueOptions{VisibilityTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return m, p, q
}

// queueName is a name of the test's own on the shared server.
// queueName is unique per test and per run (-count=N shares the package's moto_server).
func queueName(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), queueSeq.Add(1))
}

var queueSeq atomic.Int64

// sqsClient is an SQS client through the proxy that tries once.
func sqsClient(p *faultproxy.Proxy) *sqs.Client {
	return sqs.NewFromConfig(moto.Config(p.URL()), func(o *sqs.Options) { o.Retryer = aws.NopRetryer{} })
}

func send(ctx context.Context, c *sqs.Client, q moto.Queue, body string) error {
	_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body)})
	return err
}

// queued counts the messages in the queue, asking moto directly.
func queued(t *testing.T, m *moto.Server, q moto.Queue) int {
	t.Helper()
	out, err := m.SQS().GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(q.URL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var n, inflight int
	fmt.Sscan(out.Attributes["ApproximateNumberOfMessages"], &n)
	fmt.Sscan(out.Attributes["ApproximateNumberOfMessagesNotVisible"], &inflight)
	return n + inflight
}

func isThrottle(err error) bool {
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary
}

func isRetryable(err error) bool {
	return retry.IsErrorRetryables(retry.DefaultRetryables).IsErrorRetryable(err) == aws.TrueTernary
}

func TestErrorsSeenBySQSClient(t *testing.T) {
	m, p, q := setup(t, faultproxy.Config{})
	c := sqsClient(p)
	tests := []struct {
		name     string
		faults   faultproxy.Faults
		status   int
		code     string
		throttle bool
	}{
		{"500", faultproxy.Faults{Error500: 1}, 500, "InternalFailure", false},
		{"503", faultproxy.Faults{Error503: 1}, 503, "ServiceUnavailable", false},
		{"throttle", faultproxy.Faults{Throttle: 1}, 400, "RequestThrottled", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := p.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			p.ResetCounts()
			err := send(t.Context(), c, q, "x")
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.code {
				t.Fatalf("SendMessage = %v, want API error %s", err, tt.code)
			}
			var status interface{ HTTPStatusCode() int }
			if !errors.As(err, &status) || status.HTTPStatusCode() != tt.status {
				t.Errorf("SendMessage = %v, want HTTP status %d", err, tt.status)
			}
			if got := isThrottle(err); got != tt.throttle {
				t.Errorf("retryer reads %v as throttling: %v, want %v", err, got, tt.throttle)
			}
			if !isRetryable(err) {
				t.Errorf("retryer reads %v as not retryable", err)
			}
			if got := p.Counts()["SendMessage"]; got.Requests != 1 || got.Forwarded != 0 {
				t.Errorf("counts = %+v, want 1 request, none forwarded", got)
			}
		})
	}
	if n := queued(t, m, q); n != 0 {
		t.Errorf("%d messages reached the queue, want 0", n)
	}
}

func TestThrottleIsModelledError(t *testing.T) {
	_, p, q := setup(t, faultproxy.Config{Faults: faultproxy.Faults{Throttle: 1}})
	err := send(t.Context(), sqsClient(p), q, "x")
	var rt *sqstypes.RequestThrottled
	if !errors.As(err, &rt) {
		t.Fatalf("SendMessage = %T %v, want *types.RequestThrottled", err, err)
	}
}

func TestThrottleRetriedBySQSClient(t *testing.T) {
	_, p, q := setup(t, faultproxy.Config{Faults: faultproxy.Faults{Throttle: 1}})
	c := sqs.NewFromConfig(moto.Config(p.URL()), func(o *sqs.Options) {
		o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 3)
	})
	err := send(t.Context(), c, q, "x")
	var me *retry.MaxAttemptsError
	if !errors.As(err, &me) {
		t.Fatalf("SendMessage = %v, want MaxAttemptsError", err)
	}
	if got := p.Counts()["SendMessage"].Throttled; got != 3 {
		t.Errorf("throttled %d times, want 3 attempts", got)
	}
}

func TestErrorsSeenByS3Client(t *testing.T) {
	m := moto.Shared(t)
	if err := moto.CreateBucket(t.Context(), m.S3(), "errors-bkt"); err != nil {
		t.Fatal(err)
	}
	p := faultproxy.StartT(t, faultproxy.Config{Target: m.URL()})
	c := s3.NewFromConfig(moto.Config(p.URL()), func(o *s3.Options) {
		o.UsePathStyle = true
		o.Retryer = aws.NopRetryer{}
	})
	tests := []struct {
		faults   faultproxy.Faults
		code     string
		throttle bool
	}{
		{faultproxy.Faults{Error500: 1}, "InternalError", false},
		{faultproxy.Faults{Error503: 1}, "ServiceUnavailable", false},
		{faultproxy.Faults{Throttle: 1}, "SlowDown", true},
	}
	for _, tt := range tests {
		if err := p.SetFaults(tt.faults); err != nil {
			t.Fatal(err)
		}
		_, err := moto.PutObject(t.Context(), c, "errors-bkt", "k", []byte("data"))
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.code {
			t.Fatalf("PutObject = %v, want %s", err, tt.code)
		}
		if got := isThrottle(err); got != tt.throttle {
			t.Errorf("%s: throttling %v, want %v", tt.code, got, tt.throttle)
		}
		if !isRetryable(err) {
			t.Errorf("%s: not retryable", tt.code)
		}
	}
	if got := p.Counts()["S3.PutObject"]; got.Requests != 3 || got.Forwarded != 0 {
		t.Errorf("S3.PutObject counts = %+v, want 3 requests, none forwarded", got)
	}
}

func TestDrop(t *testing.T) {
	m, p, q := setup(t, faultproxy.Config{Faults: faultproxy.Faults{Drop: 1}})
	err := send(t.Context(), sqsClient(p), q, "x")
	if err == nil {
		t.Fatal("SendMessage through a dropped connection succeeded")
	}
	if !isRetryable(err) {
		t.Errorf("retryer reads %v as not retryable", err)
	}
	if got := p.Counts()["SendMessage"]; got.Dropped != 1 || got.Forwarded != 0 {
		t.Errorf("counts = %+v, want 1 dropped, none forwarded", got)
	}
	if n := queued(t, m, q); n != 0 {
		t.Errorf("%d messages reached the queue, want 0", n)
	}
}

func TestTruncate(t *testing.T) {
	m, p, q := setup(t, faultproxy.Config{Faults: faultproxy.Faults{Truncate: 1}})
	err := send(t.Context(), sqsClient(p), q, "x")
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("SendMessage with a cut-off answer = %v, want unexpected EOF", err)
	}
	// The SDK's default retryables leave this one out (a retried send may
	// duplicate the message); callers that want it retried must say so.
	t.Logf("cut-off answer: %v (retryable by default: %v)", err, isRetryable(err))
	if got := p.Counts()["SendMessage"]; got.Truncated != 1 || got.Forwarded != 1 {
		t.Errorf("counts = %+v, want 1 truncated and forwarded", got)
	}
	// The target acted although the client saw a failure.
	if n := queued(t, m, q); n != 1 {
		t.Errorf("%d messages in the queue, want 1", n)
	}
}

func TestLatencyCanceled(t *testing.T) {
	_, p, q := setup(t, faultproxy.Config{Faults: faultproxy.Faults{Latency: time.Hour}})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- send(ctx, sqsClient(p), q, "x") }()
	for p.Total().Requests == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("SendMessage = %v, want context.Canceled", err)
	}
	// Close waits for the handler: it returns only if the hour-long wait
	// ended with the request.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := p.Total(); got.Forwarded != 1 || got.Requests != 1 {
		t.Errorf("counts = %+v", got)
	}
}

func TestLatencyAdded(t *testing.T) {
	_, p, q := setup(t, faultproxy.Config{Faults: faultproxy.Faults{Latency: 100 * time.Millisecond}})
	start := time.Now()
	if err := send(t.Context(), sqsClient(p), q, "x"); err != nil {
		t.Fatal(err)
	}
	// Only a lower bound: the proxy may never answer sooner than its latency.
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("answered after %v, before the added latency", d)
	}
}

func TestActions(t *testing.T) {
	_, p, q := setup(t, faultproxy.Config{Faults: faultproxy.Faults{Error500: 1, Actions: []string{"DeleteMessage"}}})
	c := sqsClient(p)
	if err := send(t.Context(), c, q, "x"); err != nil {
		t.Fatalf("SendMessage, not named in Actions: %v", err)
	}
	out, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), WaitTimeSeconds: 1})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("ReceiveMessage = %v, %v", out, err)
	}
	_, err = c.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: out.Messages[0].ReceiptHandle})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InternalFailure" {
		t.Fatalf("DeleteMessage = %v, want InternalFailure", err)
	}
	counts := p.Counts()
	for action, want := range map[string]faultproxy.Counts{
		"SendMessage":    {Requests: 1, Forwarded: 1},
		"ReceiveMessage": {Requests: 1, Forwarded: 1},
		"DeleteMessage":  {Requests: 1, Error500: 1},
	} {
		if counts[action] != want {
			t.Errorf("%s counts = %+v, want %+v", action, counts[action], want)
		}
	}
}

func TestObserve(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]string{}
	_, p, q := setup(t, faultproxy.Config{Observe: func(action string, req, resp []byte) {
		mu.Lock()
		defer mu.Unlock()
		seen[action] = append(seen[action], string(req)+" -> "+string(resp))
	}})
	c := sqsClient(p)
	if err := send(t.Context(), c, q, "hello-observer"); err != nil {
		t.Fatal(err)
	}
	out, err := c.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), WaitTimeSeconds: 1})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("ReceiveMessage = %v, %v", out, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if s := seen["SendMessage"]; len(s) != 1 || !strings.Contains(s[0], "hello-observer") {
		t.Errorf("SendMessage observed as %q", s)
	}
	if s := seen["ReceiveMessage"]; len(s) != 1 || !strings.Contains(s[0], aws.ToString(out.Messages[0].ReceiptHandle)) {
		t.Errorf("ReceiveMessage observed as %q, want the receipt handle", s)
	}
}

func TestSeedRepeatsFaults(t *testing.T) {
	m := moto.Shared(t)
	q, err := moto.CreateQueue(t.Context(), m.SQS(), queueName(t), moto.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pattern := func(seed uint64) string {
		p := faultproxy.StartT(t, faultproxy.Config{Target: m.URL(), Seed: seed, Faults: faultproxy.Faults{Error500: 0.5}})
		c := sqsClient(p)
		var b strings.Builder
		for range 16 {
			if send(t.Context(), c, q, "x") != nil {
				b.WriteByte('F')
			} else {
				b.WriteByte('.')
			}
		}
		return b.String()
	}
	a, b, other := pattern(7), pattern(7), pattern(8)
	if a != b {
		t.Errorf("seed 7 gave %s then %s", a, b)
	}
	if !strings.Contains(a, "F") || !strings.Contains(a, ".") {
		t.Errorf("half the requests should fail: %s", a)
	}
	if a == other {
		t.Errorf("seeds 7 and 8 gave the same faults %s", a)
	}
}

// retryCutOff makes a cut-off answer retryable, which the SDK's defaults do
// not: the request may have taken effect.
var retryCutOff = retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return aws.TrueTernary
	}
	return aws.UnknownTernary
})

// TestRetriesOvercomeFaults: with the SDK's retries on, a 10% fault rate
// still lets every send and receive succeed. Cut-off answers need a retryable
// of their own.
func TestRetriesOvercomeFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults faultproxy.Faults
		extra  []retry.IsErrorRetryable
	}{
		{"defaults", faultproxy.Faults{Error500: 0.025, Error503: 0.025, Throttle: 0.025, Drop: 0.025}, nil},
		{"cut-off", faultproxy.Faults{Error500: 0.02, Error503: 0.02, Throttle: 0.02, Drop: 0.02, Truncate: 0.02},
			[]retry.IsErrorRetryable{retryCutOff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retriesOvercomeFaults(t, tt.faults, tt.extra)
		})
	}
}

func retriesOvercomeFaults(t *testing.T, faults faultproxy.Faults, extra []retry.IsErrorRetryable) {
	_, p, q := setup(t, faultproxy.Config{Seed: 1, Faults: faults})
	cfg := moto.Config(p.URL())
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 5
			o.MaxBackoff = 100 * time.Millisecond
			o.RateLimiter = ratelimit.None
			o.Retryables = append(o.Retryables, extra...)
		})
	}
	c := sqs.NewFromConfig(cfg)
	ctx := t.Context()
	const n = 40
	for i := range n {
		if err := send(ctx, c, q, fmt.Sprint(i)); err != nil {
			t.Fatalf("SendMessage %d: %v", i, err)
		}
	}
	got := map[string]bool{}
	for len(got) < n {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatalf("ReceiveMessage: %v", err)
		}
		for _, msg := range out.Messages {
			got[aws.ToString(msg.Body)] = true
			_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: msg.ReceiptHandle})
			if err != nil {
				t.Fatalf("DeleteMessage: %v", err)
			}
		}
	}
	total := p.Total()
	if faults := total.Error500 + total.Error503 + total.Throttled + total.Dropped + total.Truncated; faults == 0 {
		t.Errorf("no faults injected in %d requests", total.Requests)
	}
	t.Logf("counts: %+v", total)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		f  faultproxy.Faults
		ok bool
	}{
		{faultproxy.Faults{}, true},
		{faultproxy.Faults{Error500: 0.5, Drop: 0.5}, true},
		{faultproxy.Faults{Error500: 0.6, Drop: 0.5}, false},
		{faultproxy.Faults{Throttle: -0.1}, false},
		{faultproxy.Faults{Truncate: 1.5}, false},
		{faultproxy.Faults{Latency: -time.Second}, false},
	}
	for _, tt := range tests {
		err := tt.f.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, faultproxy.ErrBadFaults)) {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.f, err, tt.ok)
		}
	}
	if _, err := faultproxy.Start(faultproxy.Config{Target: "127.0.0.1:1"}); !errors.Is(err, faultproxy.ErrBadTarget) {
		t.Errorf("Start with a target without scheme: %v, want ErrBadTarget", err)
	}
}

func TestQueryProtocol(t *testing.T) {
	// Older SDKs speak SQS's query protocol; its throttling answer is XML.
	p := faultproxy.StartT(t, faultproxy.Config{Target: "http://127.0.0.1:1", Faults: faultproxy.Faults{Throttle: 1}})
	resp, err := http.Post(p.URL(), "application/x-www-form-urlencoded", strings.NewReader("Action=SendMessage&Version=2012-11-05"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = fmt.Fprint(&b, resp.Header.Get("Content-Type"))
	if resp.StatusCode != 400 || p.Counts()["SendMessage"].Throttled != 1 {
		t.Errorf("status %d, counts %+v", resp.StatusCode, p.Counts())
	}
}

func TestS3Objects(t *testing.T) {
	m := moto.Shared(t)
	if err := moto.CreateBucket(t.Context(), m.S3(), "objects-bkt"); err != nil {
		t.Fatal(err)
	}
	body := []byte(strings.Repeat("0123456789abcdef\n", 4096))
	if _, err := moto.PutObject(t.Context(), m.S3(), "objects-bkt", "dir/obj", body); err != nil {
		t.Fatal(err)
	}
	p := faultproxy.StartT(t, faultproxy.Config{Target: m.URL()})
	c := s3.NewFromConfig(moto.Config(p.URL()), func(o *s3.Options) {
		o.UsePathStyle = true
		o.Retryer = aws.NopRetryer{}
	})
	head, err := c.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String("objects-bkt"), Key: aws.String("dir/obj")})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt64(head.ContentLength); got != int64(len(body)) {
		t.Errorf("HeadObject ContentLength = %d, want %d", got, len(body))
	}
	get := func() ([]byte, error) {
		out, err := c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("objects-bkt"), Key: aws.String("dir/obj")})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}
	got, err := get()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GetObject = %d bytes, %v; want %d bytes", len(got), err, len(body))
	}
	// A body cut off mid-way surfaces while reading it, after GetObject
	// has returned.
	if err := p.SetFaults(faultproxy.Faults{Truncate: 1}); err != nil {
		t.Fatal(err)
	}
	got, err = get()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != len(body)/2 {
		t.Fatalf("GetObject of a cut-off body = %d bytes, %v; want %d bytes and unexpected EOF", len(got), err, len(body)/2)
	}
	counts := p.Counts()
	if counts["S3.HEAD"].Forwarded != 1 || counts["S3.GetObject"].Forwarded != 2 || counts["S3.GetObject"].Truncated != 1 {
		t.Errorf("counts = %+v", counts)
	}
}
