package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/palleto/palleto/internal/sdkhttp"
)

// handlerTransport delivers requests straight to a handler: no sockets, so that a test can
// run the real SDK client against the server inside a synctest bubble.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	r.Host = r.URL.Host
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// inProcess returns a server without a listener and an SQS client that reaches it through
// handlerTransport. The server is closed when the test ends.
func inProcess(t *testing.T) (*Server, *sqs.Client) {
	t.Helper()
	s := newServer(Options{}, "http://local.test")
	t.Cleanup(func() { s.Close() })
	cfg := s.AWSConfig()
	cfg.HTTPClient = &http.Client{Transport: handlerTransport{s.handler}}
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return s, sqs.NewFromConfig(cfg, sdkhttp.OwnSQSBodies)
}

func createQueue(t *testing.T, c *sqs.Client, name string, attrs map[string]string) string {
	t.Helper()
	out, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("CreateQueue %s: %v", name, err)
	}
	return *out.QueueUrl
}

func send(t *testing.T, c *sqs.Client, url, body string) string {
	t.Helper()
	out, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &body})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	return *out.MessageId
}

func receive(t *testing.T, c *sqs.Client, in *sqs.ReceiveMessageInput) []types.Message {
	t.Helper()
	out, err := c.ReceiveMessage(context.Background(), in)
	if err != nil {
		t.Fatalf("ReceiveMessage: %v", err)
	}
	return out.Messages
}

func bodies(msgs []types.Message) string {
	var b []string
	for _, m := range msgs {
		b = append(b, *m.Body)
	}
	return strings.Join(b, ",")
}

// counts are the queue's approximate counts: visible, not visible, delayed.
func counts(t *testing.T, c *sqs.Client, url string) string {
	t.Helper()
	out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl:       &url,
		AttributeNames: []types.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	a := out.Attributes
	return a["ApproximateNumberOfMessages"] + "/" + a["ApproximateNumberOfMessagesNotVisible"] + "/" + a["ApproximateNumberOfMessagesDelayed"]
}

// call sends one SQS call as raw JSON, as clients other than the Go SDK may.
func call(s *Server, action, body string) (*httptest.ResponseRecorder, string) {
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	req.Header.Set("X-Amz-Target", "AmazonSQS."+action)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return rec, string(b)
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return fmt.Sprint(err)
}

func TestSendReceiveDeleteOverLoopback(t *testing.T) {
	s, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := s.SQSClient()
	ctx := context.Background()
	url := createQueue(t, c, "work", nil)
	if want := s.Endpoint() + "/000000000000/work"; url != want || s.QueueURL("work") != want {
		t.Errorf("queue URL %q, QueueURL %q, want %q", url, s.QueueURL("work"), want)
	}
	id := send(t, c, url, "hello")
	// The SDK checks MD5OfMessageBody of both answers.
	msgs := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10})
	if len(msgs) != 1 || *msgs[0].MessageId != id || *msgs[0].Body != "hello" {
		t.Fatalf("received %+v, want the message %s", msgs, id)
	}
	if got := counts(t, c, url); got != "0/1/0" {
		t.Errorf("counts after receive = %s, want 0/1/0", got)
	}
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, c, url); got != "0/0/0" {
		t.Errorf("counts after delete = %s, want 0/0/0", got)
	}
	// Deleting again with the same handle succeeds, as SQS does.
	if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
		t.Errorf("second delete: %v", err)
	}
}

func TestErrorsAreShapedAsSQSShapesThem(t *testing.T) {
	s, c := inProcess(t)
	ctx := context.Background()
	_, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("nope")})
	var qdne *types.QueueDoesNotExist
	if !errors.As(err, &qdne) {
		t.Fatalf("GetQueueUrl of a missing queue: %v, want QueueDoesNotExist", err)
	}
	if got := errorCode(err); got != "AWS.SimpleQueueService.NonExistentQueue" {
		t.Errorf("error code %q, want the query code AWS.SimpleQueueService.NonExistentQueue", got)
	}

	rec, body := call(s, "PurgeQueue", `{"QueueUrl":"http://x/000000000000/nope"}`)
	if rec.Code != 400 || rec.Header().Get("x-amzn-query-error") != "AWS.SimpleQueueService.NonExistentQueue;Sender" ||
		!strings.Contains(body, `"__type":"com.amazonaws.sqs#QueueDoesNotExist"`) {
		t.Errorf("raw answer %d %v %s", rec.Code, rec.Header(), body)
	}

	url := createQueue(t, c, "errs", nil)
	// The SDK checks required fields itself; a raw call shows the server's answer.
	rec, body = call(s, "SendMessage", `{"QueueUrl":"`+url+`"}`)
	if rec.Header().Get("x-amzn-query-error") != "MissingParameter;Sender" || !strings.Contains(body, "MessageBody") {
		t.Errorf("SendMessage without a body: %d %v %s", rec.Code, rec.Header(), body)
	}
	rec, body = call(s, "NoSuchAction", `{}`)
	if rec.Code != 400 || !strings.Contains(body, "UnsupportedOperation") {
		t.Errorf("an unknown action: %d %s", rec.Code, body)
	}
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"bad receipt", func() error {
			_, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: aws.String("garbage!")})
			return err
		}, "ReceiptHandleIsInvalid"},
		{"bad attribute name", func() error {
			_, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []types.QueueAttributeName{"Nope"}})
			return err
		}, "InvalidAttributeName"},
		{"bad attribute value", func() error {
			_, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"VisibilityTimeout": "43201"}})
			return err
		}, "InvalidAttributeValue"},
		{"queue exists with other attributes", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("errs"), Attributes: map[string]string{"VisibilityTimeout": "5"}})
			return err
		}, "QueueAlreadyExists"},
		{"bad queue name", func() error {
			_, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("a b")})
			return err
		}, "InvalidParameterValue"},
		{"invalid characters", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("a\x01b")})
			return err
		}, "InvalidMessageContents"},
		{"too many messages", func() error {
			_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 11})
			return err
		}, "InvalidParameterValue"},
		{"too long a wait", func() error {
			_, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 21})
			return err
		}, "InvalidParameterValue"},
		{"dedup id on a standard queue", func() error {
			_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("x"), MessageDeduplicationId: aws.String("d")})
			return err
		}, "InvalidParameterValue"},
	}
	for _, tt := range tests {
		if got := errorCode(tt.call()); got != tt.code {
			t.Errorf("%s: error %q, want %q", tt.name, got, tt.code)
		}
	}
	// An existing queue created again with the same attributes is the same queue.
	if got := createQueue(t, c, "errs", map[string]string{"VisibilityTimeout": "30"}); got != url {
		t.Errorf("CreateQueue again = %q, want %q", got, url)
	}
}

func TestVisibilityTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := inProcess(t)
		ctx := context.Background()
		url := createQueue(t, c, "vis", map[string]string{"VisibilityTimeout": "10"})
		send(t, c, url, "m")
		rcv := func(vis int32) []types.Message {
			in := &sqs.ReceiveMessageInput{QueueUrl: &url, MessageSystemAttributeNames: []types.MessageSystemAttributeName{"ApproximateReceiveCount"}}
			if vis >= 0 {
				in.VisibilityTimeout = vis
			}
			return receive(t, c, in)
		}

		// The queue's default.
		first := rcv(-1)
		time.Sleep(9*time.Second + 999*time.Millisecond)
		if got := rcv(-1); len(got) != 0 {
			t.Fatalf("received %d messages before the queue's visibility timeout passed", len(got))
		}
		time.Sleep(time.Millisecond)
		second := rcv(3) // per receive: 3 s
		if len(first) != 1 || len(second) != 1 || second[0].Attributes["ApproximateReceiveCount"] != "2" {
			t.Fatalf("first %v, second %v", first, second)
		}
		time.Sleep(3 * time.Second)
		if third := rcv(1); len(third) != 1 {
			t.Fatal("the message did not come back after the receive's visibility timeout")
		}
		time.Sleep(time.Second)

		// Per message: extended, then released.
		msg := rcv(5)[0]
		if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: msg.ReceiptHandle, VisibilityTimeout: 60}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(59 * time.Second)
		if got := rcv(5); len(got) != 0 {
			t.Fatal("visible before the changed timeout passed")
		}
		if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: msg.ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
		msg = rcv(43200)[0]

		// 12 hours since the receive is the most a message stays invisible.
		time.Sleep(time.Hour)
		_, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: msg.ReceiptHandle, VisibilityTimeout: 43200})
		if errorCode(err) != "InvalidParameterValue" {
			t.Errorf("extension past 12 h after the receive: %v, want InvalidParameterValue", err)
		}
		if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: msg.ReceiptHandle, VisibilityTimeout: 39600}); err != nil {
			t.Errorf("extension to exactly 12 h after the receive: %v", err)
		}
		// An old receipt handle no longer changes anything.
		_, err = c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: first[0].ReceiptHandle, VisibilityTimeout: 0})
		if errorCode(err) != "InvalidParameterValue" {
			t.Errorf("change with a stale receipt handle: %v, want InvalidParameterValue", err)
		}
	})
}

func TestChangeVisibilityOfAVisibleMessageIsNotInflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := inProcess(t)
		url := createQueue(t, c, "nif", nil)
		send(t, c, url, "m")
		msg := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, VisibilityTimeout: 1})[0]
		time.Sleep(2 * time.Second)
		_, err := c.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: msg.ReceiptHandle, VisibilityTimeout: 10})
		var nif *types.MessageNotInflight
		if !errors.As(err, &nif) {
			t.Errorf("ChangeMessageVisibility of a visible message: %v, want MessageNotInflight", err)
		}
	})
}

func TestLongPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := inProcess(t)
		url := createQueue(t, c, "poll", nil)

		// Answers as soon as a message arrives.
		start := time.Now()
		got := make(chan []types.Message)
		go func() { got <- receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 20}) }()
		time.Sleep(5 * time.Second)
		send(t, c, url, "late")
		msgs := <-got
		if len(msgs) != 1 || time.Since(start) != 5*time.Second {
			t.Fatalf("long poll answered %v after %v, want the message after 5s", msgs, time.Since(start))
		}

		// Answers when a message in flight becomes visible again.
		start = time.Now()
		if _, err := c.ChangeMessageVisibility(context.Background(), &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 7}); err != nil {
			t.Fatal(err)
		}
		if m := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 20}); len(m) != 1 || time.Since(start) != 7*time.Second {
			t.Fatalf("long poll answered %v after %v, want the message after 7s", m, time.Since(start))
		}

		// Ends empty at its wait time; the queue's ReceiveMessageWaitTimeSeconds applies
		// when the call gives none.
		if _, err := c.SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{QueueUrl: &url, Attributes: map[string]string{"ReceiveMessageWaitTimeSeconds": "3", "VisibilityTimeout": "600"}}); err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if m := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url}); len(m) != 0 || time.Since(start) != 3*time.Second {
			t.Fatalf("long poll answered %v after %v, want nothing after 3s", m, time.Since(start))
		}

		// Ends at once, empty, when the server closes.
		start = time.Now()
		go func() { got <- receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 20}) }()
		time.Sleep(time.Second)
		s.Close()
		if m := <-got; len(m) != 0 || time.Since(start) != time.Second {
			t.Fatalf("long poll answered %v after %v, want nothing when the server closed at 1s", m, time.Since(start))
		}
	})
}

func TestLongPollEndsWhenTheQueueIsDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := inProcess(t)
		url := createQueue(t, c, "gone", nil)
		errc := make(chan error)
		go func() {
			_, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 20})
			errc <- err
		}()
		time.Sleep(time.Second)
		if _, err := c.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: &url}); err != nil {
			t.Fatal(err)
		}
		var qdne *types.QueueDoesNotExist
		if err := <-errc; !errors.As(err, &qdne) {
			t.Errorf("long poll on a deleted queue: %v, want QueueDoesNotExist", err)
		}
	})
}

func TestReceiveOneToTenMessages(t *testing.T) {
	_, c := inProcess(t)
	url := createQueue(t, c, "many", nil)
	for i := range 15 {
		send(t, c, url, strconv.Itoa(i))
	}
	if got := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url}); len(got) != 1 {
		t.Errorf("receive without MaxNumberOfMessages: %d messages, want 1", len(got))
	}
	if got := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10}); len(got) != 10 {
		t.Errorf("receive of 10: %d messages", len(got))
	}
	if got := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10}); len(got) != 4 {
		t.Errorf("receive of the rest: %d messages, want 4", len(got))
	}
	_, err := c.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 0})
	if err != nil {
		t.Errorf("the SDK leaves out 0: %v", err)
	}
	if got := counts(t, c, url); got != "0/15/0" {
		t.Errorf("counts = %s, want 0/15/0", got)
	}
}

func TestDelaySeconds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := inProcess(t)
		ctx := context.Background()
		url := createQueue(t, c, "delay", map[string]string{"DelaySeconds": "5"})
		send(t, c, url, "queue-delay")
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("own-delay"), DelaySeconds: 2}); err != nil {
			t.Fatal(err)
		}
		// An explicit zero is a value: no delay, whatever the queue's. (The Go SDK leaves
		// a zero out; other clients send it.)
		if rec, body := call(s, "SendMessage", `{"QueueUrl":"`+url+`","MessageBody":"no-delay","DelaySeconds":0}`); rec.Code != 200 {
			t.Fatalf("SendMessage with DelaySeconds 0: %d %s", rec.Code, body)
		}
		if got := counts(t, c, url); got != "1/0/2" {
			t.Errorf("counts at 0s = %s, want 1/0/2", got)
		}
		rcv := func() string {
			return bodies(receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10}))
		}
		if got := rcv(); got != "no-delay" {
			t.Errorf("at 0s received %q", got)
		}
		time.Sleep(2 * time.Second)
		if got := rcv(); got != "own-delay" {
			t.Errorf("at 2s received %q", got)
		}
		time.Sleep(3 * time.Second)
		if got := rcv(); got != "queue-delay" {
			t.Errorf("at 5s received %q", got)
		}
		_, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("x"), DelaySeconds: 901})
		if errorCode(err) != "InvalidParameterValue" {
			t.Errorf("DelaySeconds 901: %v", err)
		}
	})
}
