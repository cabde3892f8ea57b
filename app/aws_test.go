package app

import (
	"context"
	"fmt"
	"strings"
	"testing"

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
