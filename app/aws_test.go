package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/sqs"
)

// A start-up check that ran out of time names the timeout, whichever timer fired first:
// the HTTP client's, or the context's.
func TestDescribeCheckNamesTimeouts(t *testing.T) {
	const url = "http://127.0.0.1:1/000000000000/q"
	for _, cause := range []error{
		fmt.Errorf("operation error SQS: GetQueueAttributes: %w", context.DeadlineExceeded),
		fmt.Errorf("operation error SQS: GetQueueAttributes: %w", timeoutError{}),
	} {
		got := describeCheck(url, &sqs.Error{Action: "GetQueueAttributes", Queue: url, Kind: sqs.ErrUnavailable, Err: cause})
		if !strings.HasPrefix(got, "cannot reach SQS for "+url+": Timeout: ") {
			t.Errorf("describeCheck(%v) = %q, want the timeout named", cause, got)
		}
	}
}

type timeoutError struct{}

func (timeoutError) Error() string {
	return "net/http: request canceled (Client.Timeout exceeded while awaiting headers)"
}
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// stallingClient answers at once with a body that sends nothing until the request's context
// ends. It keeps the last request.
type stallingClient struct{ got *http.Request }

func (c *stallingClient) Do(r *http.Request) (*http.Response, error) {
	c.got = r
	return &http.Response{StatusCode: 200, Body: io.NopCloser(stalledBody{r.Context()})}, nil
}

type stalledBody struct{ ctx context.Context }

func (b stalledBody) Read([]byte) (int, error) {
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}

// An SQS request ends within the timeout, the reading of its answer included, and closing
// the answer ends its context at once.
func TestSQSRequestsEndWithinTheTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		next := &stallingClient{}
		c := sqsHTTP{next: next, timeout: 25 * time.Second}
		req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadAll(resp.Body); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("reading a stalled answer: %v, want the deadline exceeded", err)
		}
		if d := time.Since(start); d != 25*time.Second {
			t.Errorf("the stalled answer failed after %v, want 25s", d)
		}
		resp.Body.Close()

		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if err := next.got.Context().Err(); err != nil {
			t.Fatalf("the request's context ended before its answer was read: %v", err)
		}
		resp.Body.Close()
		if err := next.got.Context().Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("after the answer was closed, the request's context: %v, want canceled", err)
		}
	})
}

// The warning that the queue URL's host is not the SQS endpoint in use follows the endpoint
// the SQS client resolved, wherever the SDK found it, and names where that was.
func TestWarnQueueHost(t *testing.T) {
	const queueURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs"
	config := filepath.Join(t.TempDir(), "config")
	profile := "[profile dev]\nregion = eu-west-1\nservices = dev\n\n[services dev]\nsqs =\n  endpoint_url = http://127.0.0.1:4566\n"
	if err := os.WriteFile(config, []byte(profile), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"AWS_CONFIG_FILE": config, "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_PROFILE": "", "AWS_REGION": "",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_SQS": ""} {
		t.Setenv(k, v)
	}
	for _, c := range []struct {
		name, profile, endpointSQS string
		want                       string // endpoint_from of the warning; "" for none
	}{
		{name: "AWS's own endpoint", want: ""},
		{name: "AWS_ENDPOINT_URL_SQS", endpointSQS: "http://127.0.0.1:9324", want: "AWS_ENDPOINT_URL_SQS"},
		{name: "the queue's own host", endpointSQS: "https://sqs.eu-west-1.amazonaws.com", want: ""},
		{name: "a profile's services section", profile: "dev", want: "the AWS configuration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.Unsetenv("AWS_ENDPOINT_URL") // set, even empty, it hides the services section
			os.Unsetenv("AWS_ENDPOINT_URL_SQS")
			if c.endpointSQS != "" {
				t.Setenv("AWS_ENDPOINT_URL_SQS", c.endpointSQS)
			}
			t.Setenv("AWS_PROFILE", c.profile)
			t.Setenv("AWS_REGION", "eu-west-1")
			cfg, err := loadAWS(t.Context(), nil, "")
			if err != nil {
				t.Fatal(err)
			}
			var logged bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logged, nil))
			warnQueueHost(log, queueURL, newSQSClient(cfg, 0).Options().BaseEndpoint)
			var rec struct {
				From string `json:"endpoint_from"`
			}
			if logged.Len() > 0 {
				if err := json.Unmarshal(logged.Bytes(), &rec); err != nil {
					t.Fatal(err)
				}
			}
			if logged.Len() > 0 != (c.want != "") || rec.From != c.want {
				t.Errorf("logged %q, want a warning from %q (none if empty)", logged.String(), c.want)
			}
		})
	}
}
