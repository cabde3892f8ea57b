package local_test

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

	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/internal/sdkhttp"
	"github.com/palleto/palleto/local"
)

// TestProxy runs the fault proxy's tests in front of each backend.
func TestProxy(t *testing.T) {
	awstest.Each(t, func(t *testing.T, b awstest.Backend) {
		for _, tc := range []struct {
			name string
			f    func(*testing.T, awstest.Backend)
		}{
			{"ErrorsSeenBySQSClient", testErrorsSeenBySQSClient},
			{"ThrottleIsModelledError", testThrottleIsModelledError},
			{"ThrottleRetriedBySQSClient", testThrottleRetriedBySQSClient},
			{"ErrorsSeenByS3Client", testErrorsSeenByS3Client},
			{"Drop", testDrop},
			{"Truncate", testTruncate},
			{"LatencyCanceled", testLatencyCanceled},
			{"LatencyAdded", testLatencyAdded},
			{"Actions", testActions},
			{"Observe", testObserve},
			{"SeedRepeatsFaults", testSeedRepeatsFaults},
			{"RetriesOvercomeFaults", testRetriesOvercomeFaults},
			{"S3Objects", testS3Objects},
			{"Duplicate", testDuplicate},
		} {
			t.Run(tc.name, func(t *testing.T) { tc.f(t, b) })
		}
	})
}

// setup starts a proxy in front of the backend, with a queue of the test's
// own made directly on the backend (so that faults cannot get in the way).
func setup(t *testing.T, b awstest.Backend, cfg local.ProxyConfig) (awstest.Backend, *local.Proxy, moto.Queue) {
	t.Helper()
	cfg.Target = b.URL
	p := local.StartProxyT(t, cfg)
	q, err := moto.CreateQueue(t.Context(), b.SQS(), queueName(t), moto.QueueOptions{VisibilityTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return b, p, q
}

// queueName is a name of the test's own on the shared server.
// queueName is unique per test and per run (-count=N shares the package's moto_server).
func queueName(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), queueSeq.Add(1))
}

var queueSeq atomic.Int64

// sqsClient is an SQS client through the proxy that tries once.
func sqsClient(p *local.Proxy) *sqs.Client {
	return sqs.NewFromConfig(moto.Config(p.URL()), func(o *sqs.Options) { o.Retryer = aws.NopRetryer{} })
}

func send(ctx context.Context, c *sqs.Client, q moto.Queue, body string) error {
	_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(body)})
	return err
}

// queued counts the messages in the queue, asking moto directly.
func queued(t *testing.T, m awstest.Backend, q moto.Queue) int {
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

func testErrorsSeenBySQSClient(t *testing.T, b awstest.Backend) {
	m, p, q := setup(t, b, local.ProxyConfig{})
	c := sqsClient(p)
	tests := []struct {
		name     string
		faults   local.Faults
		status   int
		code     string
		throttle bool
	}{
		{"500", local.Faults{Error500: 1}, 500, "InternalFailure", false},
		{"503", local.Faults{Error503: 1}, 503, "ServiceUnavailable", false},
		{"throttle", local.Faults{Throttle: 1}, 400, "RequestThrottled", true},
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

func testThrottleIsModelledError(t *testing.T, b awstest.Backend) {
	_, p, q := setup(t, b, local.ProxyConfig{Faults: local.Faults{Throttle: 1}})
	err := send(t.Context(), sqsClient(p), q, "x")
	var rt *sqstypes.RequestThrottled
	if !errors.As(err, &rt) {
		t.Fatalf("SendMessage = %T %v, want *types.RequestThrottled", err, err)
	}
}

func testThrottleRetriedBySQSClient(t *testing.T, b awstest.Backend) {
	_, p, q := setup(t, b, local.ProxyConfig{Faults: local.Faults{Throttle: 1}})
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

func testErrorsSeenByS3Client(t *testing.T, b awstest.Backend) {
	m := b
	if err := moto.CreateBucket(t.Context(), m.S3(), "errors-bkt"); err != nil {
		t.Fatal(err)
	}
	p := local.StartProxyT(t, local.ProxyConfig{Target: m.URL})
	c := s3.NewFromConfig(moto.Config(p.URL()), func(o *s3.Options) {
		o.UsePathStyle = true
		o.Retryer = aws.NopRetryer{}
	})
	tests := []struct {
		faults   local.Faults
		code     string
		throttle bool
	}{
		{local.Faults{Error500: 1}, "InternalError", false},
		{local.Faults{Error503: 1}, "ServiceUnavailable", false},
		{local.Faults{Throttle: 1}, "SlowDown", true},
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

func testDrop(t *testing.T, b awstest.Backend) {
	m, p, q := setup(t, b, local.ProxyConfig{Faults: local.Faults{Drop: 1}})
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

func testTruncate(t *testing.T, b awstest.Backend) {
	m, p, q := setup(t, b, local.ProxyConfig{Faults: local.Faults{Truncate: 1}})
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

func testLatencyCanceled(t *testing.T, b awstest.Backend) {
	_, p, q := setup(t, b, local.ProxyConfig{Faults: local.Faults{Latency: time.Hour}})
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

func testLatencyAdded(t *testing.T, b awstest.Backend) {
	_, p, q := setup(t, b, local.ProxyConfig{Faults: local.Faults{Latency: 100 * time.Millisecond}})
	start := time.Now()
	if err := send(t.Context(), sqsClient(p), q, "x"); err != nil {
		t.Fatal(err)
	}
	// Only a lower bound: the proxy may never answer sooner than its latency.
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("answered after %v, before the added latency", d)
	}
}

func testActions(t *testing.T, b awstest.Backend) {
	_, p, q := setup(t, b, local.ProxyConfig{Faults: local.Faults{Error500: 1, Actions: []string{"DeleteMessage"}}})
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
	for action, want := range map[string]local.Counts{
		"SendMessage":    {Requests: 1, Forwarded: 1},
		"ReceiveMessage": {Requests: 1, Forwarded: 1},
		"DeleteMessage":  {Requests: 1, Error500: 1},
	} {
		if counts[action] != want {
			t.Errorf("%s counts = %+v, want %+v", action, counts[action], want)
		}
	}
}

func testObserve(t *testing.T, b awstest.Backend) {
	var mu sync.Mutex
	seen := map[string][]string{}
	_, p, q := setup(t, b, local.ProxyConfig{Observe: func(action string, req, resp []byte) {
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

func testSeedRepeatsFaults(t *testing.T, b awstest.Backend) {
	m := b
	q, err := moto.CreateQueue(t.Context(), m.SQS(), queueName(t), moto.QueueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pattern := func(seed uint64) string {
		p := local.StartProxyT(t, local.ProxyConfig{Target: m.URL, Seed: seed, Faults: local.Faults{Error500: 0.5}})
		c := sqsClient(p)
		var sb strings.Builder
		for range 16 {
			if send(t.Context(), c, q, "x") != nil {
				sb.WriteByte('F')
			} else {
				sb.WriteByte('.')
			}
		}
		return sb.String()
	}
	a, a2, other := pattern(7), pattern(7), pattern(8)
	if a != a2 {
		t.Errorf("seed 7 gave %s then %s", a, a2)
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
func testRetriesOvercomeFaults(t *testing.T, b awstest.Backend) {
	tests := []struct {
		name   string
		faults local.Faults
		extra  []retry.IsErrorRetryable
	}{
		{"defaults", local.Faults{Error500: 0.025, Error503: 0.025, Throttle: 0.025, Drop: 0.025}, nil},
		{"cut-off", local.Faults{Error500: 0.02, Error503: 0.02, Throttle: 0.02, Drop: 0.02, Truncate: 0.02},
			[]retry.IsErrorRetryable{retryCutOff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retriesOvercomeFaults(t, b, tt.faults, tt.extra)
		})
	}
}

func retriesOvercomeFaults(t *testing.T, b awstest.Backend, faults local.Faults, extra []retry.IsErrorRetryable) {
	_, p, q := setup(t, b, local.ProxyConfig{Seed: 1, Faults: faults})
	cfg := moto.Config(p.URL())
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 5
			o.MaxBackoff = 100 * time.Millisecond
			o.RateLimiter = ratelimit.None
			o.Retryables = append(o.Retryables, extra...)
		})
	}
	c := sqs.NewFromConfig(cfg, sdkhttp.OwnSQSBodies)
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
		f  local.Faults
		ok bool
	}{
		{local.Faults{}, true},
		{local.Faults{Error500: 0.5, Drop: 0.5}, true},
		{local.Faults{Error500: 0.6, Drop: 0.5}, false},
		{local.Faults{Throttle: -0.1}, false},
		{local.Faults{Truncate: 1.5}, false},
		{local.Faults{Latency: -time.Second}, false},
	}
	for _, tt := range tests {
		err := tt.f.Validate()
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, local.ErrBadFaults)) {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tt.f, err, tt.ok)
		}
	}
	if _, err := local.StartProxy(local.ProxyConfig{Target: "127.0.0.1:1"}); !errors.Is(err, local.ErrBadTarget) {
		t.Errorf("Start with a target without scheme: %v, want ErrBadTarget", err)
	}
}

func TestQueryProtocol(t *testing.T) {
	// Older SDKs speak SQS's query protocol; its throttling answer is XML.
	p := local.StartProxyT(t, local.ProxyConfig{Target: "http://127.0.0.1:1", Faults: local.Faults{Throttle: 1}})
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

func testS3Objects(t *testing.T, b awstest.Backend) {
	m := b
	if err := moto.CreateBucket(t.Context(), m.S3(), "objects-bkt"); err != nil {
		t.Fatal(err)
	}
	body := []byte(strings.Repeat("0123456789abcdef\n", 4096))
	if _, err := moto.PutObject(t.Context(), m.S3(), "objects-bkt", "dir/obj", body); err != nil {
		t.Fatal(err)
	}
	p := local.StartProxyT(t, local.ProxyConfig{Target: m.URL})
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
	if err := p.SetFaults(local.Faults{Truncate: 1}); err != nil {
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

// testDuplicate: a receive drawn to duplicate also returns a message that is
// still in flight; a deleted message is never returned again.
func testDuplicate(t *testing.T, b awstest.Backend) {
	_, p, q := setup(t, b, local.ProxyConfig{})
	c := sqsClient(p)
	ctx := t.Context()
	for _, body := range []string{"a", "b"} {
		if err := send(ctx, c, q, body); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.SetFaults(local.Faults{Duplicate: 1, Actions: []string{"ReceiveMessage"}}); err != nil {
		t.Fatal(err)
	}
	receive := func(wait int32) []sqstypes.Message {
		t.Helper()
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: wait, VisibilityTimeout: 60})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	var msgs []sqstypes.Message
	for len(msgs) < 2 {
		msgs = append(msgs, receive(1)...)
	}
	bodies := map[string]int{}
	for _, m := range msgs {
		bodies[aws.ToString(m.Body)]++
	}
	if len(msgs) != 3 || len(bodies) != 2 {
		t.Fatalf("first receives gave %v, want a and b with one of them twice", bodies)
	}
	var a sqstypes.Message
	for _, m := range msgs {
		if aws.ToString(m.Body) == "a" {
			a = m
		}
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(q.URL), ReceiptHandle: a.ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	// Nothing is visible (both are in flight for a minute); b, not
	// deleted, comes again.
	again := receive(0)
	if len(again) != 1 || aws.ToString(again[0].Body) != "b" {
		t.Fatalf("receive with both in flight gave %d messages %v, want b again", len(again), again)
	}
	if got := p.Counts()["ReceiveMessage"].Duplicated; got < 2 {
		t.Errorf("Duplicated = %d, want at least 2", got)
	}
}

// TestServerFaults injects faults into the embedded server itself: from
// Options at start, then changed while it runs, down to a GET body cut off
// in the middle.
func TestServerFaults(t *testing.T) {
	if _, err := local.Start(t.Context(), local.Options{Faults: local.Faults{Error500: 2}}); !errors.Is(err, local.ErrBadFaults) {
		t.Fatalf("Start with a fraction of 2: %v, want ErrBadFaults", err)
	}
	s := awstest.LocalWith(t, local.Options{FaultSeed: 3, Faults: local.Faults{Error500: 1, Actions: []string{"CreateQueue", "S3.PUT"}}})
	ctx := t.Context()
	nop := func(o *sqs.Options) { o.Retryer = aws.NopRetryer{} }
	sqsc := sqs.NewFromConfig(s.AWSConfig(), nop, sdkhttp.OwnSQSBodies)
	s3c := s3.NewFromConfig(s.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true; o.Retryer = aws.NopRetryer{} })
	var apiErr smithy.APIError
	if _, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q")}); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InternalFailure" {
		t.Fatalf("CreateQueue = %v, want InternalFailure", err)
	}
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt")}); !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InternalError" {
		t.Fatalf("CreateBucket = %v, want InternalError", err)
	}
	if err := s.Injector().SetFaults(local.Faults{Truncate: 1, Actions: []string{"S3.GetObject"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("q")}); err != nil {
		t.Fatalf("CreateQueue after the faults changed: %v", err)
	}
	if err := moto.CreateBucket(ctx, s3c, "bkt"); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	if _, err := moto.PutObject(ctx, s3c, "bkt", "k", body); err != nil {
		t.Fatal(err)
	}
	out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != len(body)/2 {
		t.Fatalf("GetObject read %d bytes, %v; want %d bytes and unexpected EOF", len(got), err, len(body)/2)
	}
	counts := s.Injector().Counts()
	if counts["CreateQueue"].Error500 != 1 || counts["CreateQueue"].Forwarded != 1 || counts["S3.GetObject"].Truncated != 1 {
		t.Errorf("counts = %+v", counts)
	}
}
