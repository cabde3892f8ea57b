package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/goleak"

	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
)

// The benchmark itself runs from bench/sqs.sh, against an SQS stand-in
// behind a latency proxy; these tests run the command on a few messages
// against the embedded SQS and moto, so that it keeps working.

func TestMain(m *testing.M) { goleak.VerifyTestMain(awstest.Main(m)) }

// useBackend points the SDK's environment at the backend, and away from any
// profile of the machine.
func useBackend(t *testing.T, srv awstest.Backend) awstest.Backend {
	none := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            srv.URL,
		"AWS_REGION":                  moto.Region,
		"AWS_ACCESS_KEY_ID":           "test",
		"AWS_SECRET_ACCESS_KEY":       "test",
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             none,
		"AWS_SHARED_CREDENTIALS_FILE": none,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	return srv
}

func runLine(t *testing.T, args ...string) Result {
	t.Helper()
	var out bytes.Buffer
	if err := run(t.Context(), args, &out); err != nil {
		t.Fatalf("sqsdrain %v: %v", args, err)
	}
	var r Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("sqsdrain %v printed %q: %v", args, out.String(), err)
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != 1 {
		t.Errorf("sqsdrain printed %d lines, want 1: %q", n, out.String())
	}
	return r
}

// queueCounts returns the visible and in-flight messages of the queue named name.
func queueCounts(t *testing.T, srv awstest.Backend, name string) (visible, inFlight int) {
	t.Helper()
	c := srv.SQS()
	u, err := c.GetQueueUrl(t.Context(), &awssqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.GetQueueAttributes(t.Context(), &awssqs.GetQueueAttributesInput{
		QueueUrl: u.QueueUrl,
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	atoi := func(a types.QueueAttributeName) int {
		n, err := strconv.Atoi(out.Attributes[string(a)])
		if err != nil {
			t.Fatalf("%s = %q: %v", a, out.Attributes[string(a)], err)
		}
		return n
	}
	return atoi(types.QueueAttributeNameApproximateNumberOfMessages), atoi(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
}

func TestDrain(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := useBackend(t, bk)
		const n = 50
		for _, mode := range []string{"flow", "loop"} {
			t.Run(mode, func(t *testing.T) {
				queue := "sqsdrain-" + mode
				r := runLine(t, "-mode", mode, "-queue", queue, "-seed", "-n", strconv.Itoa(n),
					"-work", "1ms", "-concurrency", "4", "-max-demand", "4", "-wait", "1s")

				if r.Mode != mode || r.N != n || r.Concurrency != 4 || r.WorkMS != 1 {
					t.Errorf("line echoes mode %q n %d concurrency %d work %v ms, want %q %d 4 1", r.Mode, r.N, r.Concurrency, r.WorkMS, mode, n)
				}
				// SQS delivers at least once: moto now and then hands one message to two
				// concurrent receives. Every message is processed and every processed one deleted.
				if r.Processed < n || r.Processed > n+2 || r.Deleted != r.Processed {
					t.Errorf("processed %d, deleted %d, want %d (a duplicate or two allowed) and all deleted", r.Processed, r.Deleted, n)
				}
				if r.Seconds <= 0 || r.MsgsPerS <= 0 {
					t.Errorf("seconds %v, msgs_per_s %v: want both positive", r.Seconds, r.MsgsPerS)
				}
				// 10 messages at most per receive and per delete.
				if got := r.Requests["ReceiveMessage"]; got < n/10 {
					t.Errorf("%d receives for %d messages", got, n)
				}
				if got := r.Requests["DeleteMessageBatch"]; got < n/10 {
					t.Errorf("%d deletes for %d messages", got, n)
				}
				if r.RequestsPerMsg <= 0 {
					t.Errorf("requests_per_msg = %v", r.RequestsPerMsg)
				}
				if r.MaxUnstarted < 1 {
					t.Errorf("max_unstarted = %d, want at least 1: messages were received", r.MaxUnstarted)
				}
				if mode == "flow" {
					if r.DemandBound != 16 {
						t.Errorf("demand_bound = %d, want 4 handlers × 4", r.DemandBound)
					}
					if r.MaxUnstarted > int64(r.DemandBound) || r.MaxHeld > int64(r.DemandBound) || r.MaxHeldSampled > r.DemandBound {
						t.Errorf("held %d (sampled %d), unstarted %d: more than the %d the handlers asked for",
							r.MaxHeld, r.MaxHeldSampled, r.MaxUnstarted, r.DemandBound)
					}
				}
				if vis, inFlight := queueCounts(t, srv, queue); vis != 0 || inFlight != 0 {
					t.Errorf("queue left with %d visible and %d in-flight messages, want none", vis, inFlight)
				}
			})
		}
	})
}

// TestIdle: a source whose pipeline has stopped has no Receive call to serve,
// and must make no request at all.
func TestIdle(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		useBackend(t, bk)
		r := runLine(t, "-mode", "idle", "-queue", "sqsdrain-idle", "-seed", "-n", "12",
			"-concurrency", "2", "-max-demand", "4", "-wait", "1s", "-for", "300ms")
		if r.Processed != 12 || r.Deleted != 12 {
			t.Errorf("processed %d, deleted %d before the watch, want 12 and 12", r.Processed, r.Deleted)
		}
		if len(r.Requests) != 0 || len(r.ReceiveStarts) != 0 {
			t.Errorf("requests while nothing was demanded: %v (receives at %v s)", r.Requests, r.ReceiveStarts)
		}
	})
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-queue", "q", "-queue-url", "http://127.0.0.1:1/q"},
		{"-queue", "q", "-mode", "fast"},
		{"-queue", "q", "-n", "0"},
		{"-queue", "q", "-concurrency", "0"},
		{"-queue", "q", "-max-demand", "4", "-min-demand", "4"},
		{"-queue", "q", "extra"},
	} {
		err := run(t.Context(), append(args, "-stats", "http://127.0.0.1:1/stats"), io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("sqsdrain %v: error %v, want a usage error", args, err)
		}
	}
}

func TestReport(t *testing.T) {
	lines := []Result{
		{Mode: "loop", WorkMS: 0, Processed: 100, MsgsPerS: 1000, RequestsPerMsg: 0.2, Concurrency: 8},
		{Mode: "loop", WorkMS: 0, Processed: 100, MsgsPerS: 3000, RequestsPerMsg: 0.2, Concurrency: 8},
		{Mode: "flow", WorkMS: 0, Processed: 100, MsgsPerS: 3000, RequestsPerMsg: 0.25, Concurrency: 8, DemandBound: 160, MaxHeld: 40, MaxUnstarted: 50},
		{Mode: "flow", WorkMS: 0, Processed: 100, MsgsPerS: 5000, RequestsPerMsg: 0.2, Concurrency: 8, DemandBound: 160, MaxHeld: 40, MaxUnstarted: 50},
		{Mode: "flow", WorkMS: 20, Processed: 100, MsgsPerS: 380, RequestsPerMsg: 0.2, Concurrency: 8, DemandBound: 160, MaxHeld: 200, MaxUnstarted: 150},
		{Mode: "idle", Processed: 10, WatchS: 30, Requests: map[string]int64{"ReceiveMessage": 1}},
	}
	var in bytes.Buffer
	for _, r := range lines {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		in.Write(append(b, '\n'))
	}
	file := filepath.Join(t.TempDir(), "results.jsonl")
	if err := os.WriteFile(file, in.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"report", file}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		// Medians 2000 and 4000.
		"| 0 ms | flow | 3000, 5000 | 4000 | **2.00×** |",
		"no work: flow 4000 msgs/s, 2.00× the loop's 2000 (goal ≥ 2×): met",
		"0 ms of work: at most 0.250 requests per message (goal ≤ 0.21): **not met**",
		"20 ms of work: flow 380 msgs/s, 95.0% of the 400 that 8 handlers allow (goal ≥ 90%): met",
		"at most 200 messages held and 150 unstarted, for a demand of 160 (K × MaxDemand): **not met**",
		"30 s: 1 requests (goal 0): **not met**",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}
