package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"

	"github.com/palleto/palleto/internal/sdkhttp"
	"github.com/palleto/palleto/sqs"
)

// loadAWS returns the given configuration, or loads one from the SDK's standard sources.
// A missing region is a configuration error found here rather than at the first request;
// flag names the setting that needs AWS (its ConfigError's Flag).
func loadAWS(ctx context.Context, given *aws.Config, flag string) (aws.Config, error) {
	var cfg aws.Config
	if given != nil {
		cfg = *given
	} else {
		var err error
		cfg, err = awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return aws.Config{}, &ConfigError{flag, "AWS configuration: " + err.Error()}
		}
		// The SDK adds a CA bundle (AWS_CA_BUNDLE, a profile's ca_bundle) to the client as an
		// option that reads the bundle from a reader, and runs it each time a client is derived
		// from this one: a second derived client would read an empty bundle and trust nothing.
		// Deriving one here, once, parses the bundle once for all the clients of the process.
		cfg.HTTPClient = httpClient(cfg)
	}
	if cfg.Region == "" {
		return aws.Config{}, &ConfigError{flag, "no AWS region: set AWS_REGION (or a profile's region)"}
	}
	return cfg, nil
}

// maxConnsIdle is how many idle connections to one endpoint the AWS clients keep. The SDK's
// default (10) is below what a run has in flight (up to 64 downloads, 10 receives, deletes):
// beyond it, every request that ends closes its connection and the next opens a new one.
const maxConnsIdle = 128

// httpClient is the HTTP client that the AWS clients of a process derive theirs from: the
// configuration's, so that they trust what it trusts (its CA bundle), with idle connections
// pooled as a run needs. A configuration whose client is not the SDK's (given by a caller)
// gets a new one.
func httpClient(cfg aws.Config) *awshttp.BuildableClient {
	b, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		b = awshttp.NewBuildableClient()
	}
	return b.WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = max(tr.MaxIdleConns, 2*maxConnsIdle)
		tr.MaxIdleConnsPerHost = maxConnsIdle
	})
}

// newSQSClient is the SQS client of run and serve: the configuration's HTTP client, with
// each request's body its own (sdkhttp: otherwise a ReceiveMessage's answer can be lost, and
// a drain run then waits for its messages until their visibility timeout ends). With a
// timeout, every request ends within it (sqsHTTP).
func newSQSClient(awsCfg aws.Config, timeout time.Duration) *awssqs.Client {
	if timeout <= 0 {
		return awssqs.NewFromConfig(awsCfg, sdkhttp.OwnSQSBodies)
	}
	return awssqs.NewFromConfig(awsCfg, func(o *awssqs.Options) {
		o.HTTPClient = sqsHTTP{next: o.HTTPClient, timeout: timeout}
	})
}

// sqsHTTP is the HTTP client of an SQS client whose requests end within a timeout. It gives
// each request a body of its own (sdkhttp.OwnBody), and a deadline that the reading of the
// answer is held to as well: the request context's, ended when the answer's body is closed
// (the SDK closes it once read). http.Client's Timeout would cost two goroutines and a timer
// per request.
type sqsHTTP struct {
	next    awssqs.HTTPClient
	timeout time.Duration
}

func (c sqsHTTP) Do(r *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(r.Context(), c.timeout)
	r2, err := sdkhttp.OwnBody(ctx, r)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := c.next.Do(r2)
	if err != nil {
		cancel()
		return resp, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelOnClose is an answer's body that ends its request's context when closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// checkQueue makes the start-up check of an SQS source: credentials that cannot be found, or
// a queue that cannot be used, is a *ConfigError that says why in a few words. A queue URL
// whose host is not the SQS endpoint in use (endpoint: the SQS client's, nil for AWS's own)
// is worth a warning.
func checkQueue(ctx context.Context, src *sqs.Source, url string, endpoint *string, awsCfg aws.Config, log *slog.Logger) error {
	warnQueueHost(log, url, endpoint)
	if err := checkCredentials(ctx, awsCfg); err != nil {
		return err
	}
	err := src.Check(ctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return &ConfigError{"queue-url", describeCheck(url, err)}
}

// checkCredentials asks the credentials chain for credentials once, so that a machine with
// none is told so, rather than what the last source of the chain (the EC2 instance role)
// said when it was tried.
func checkCredentials(ctx context.Context, cfg aws.Config) error {
	if cfg.Credentials == nil {
		return &ConfigError{"", noCredentials + " (none configured)"}
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &ConfigError{"", fmt.Sprintf("%s (the last source tried said: %s)", noCredentials, rootCause(err))}
	}
	return nil
}

const noCredentials = "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
	"or AWS_PROFILE, or run where a role provides them"

// warnQueueHost warns when SQS requests go to an overriding endpoint whose host is not the
// queue URL's: SQS finds a queue by the endpoint a request is sent to, so the queue used is
// the endpoint's queue of that name, not the one the URL names. endpoint is the one the SQS
// client resolved, from wherever the SDK found it; nil for AWS's own.
func warnQueueHost(log *slog.Logger, queueURL string, endpoint *string) {
	if endpoint == nil {
		return
	}
	q, err1 := neturl.Parse(queueURL)
	e, err2 := neturl.Parse(*endpoint)
	if err1 != nil || err2 != nil || strings.EqualFold(q.Host, e.Host) {
		return
	}
	log.Warn("the queue URL's host is not the SQS endpoint in use: requests go to the endpoint, "+
		"and use its queue of the same name", "queue_url", queueURL, "endpoint", *endpoint, "endpoint_from", endpointSource(*endpoint))
}

// endpointSource names where an SQS endpoint was set: the variable that holds it, or the
// configuration (a profile's endpoint_url or services section, or the caller's aws.Config).
func endpointSource(endpoint string) string {
	for _, v := range []string{"AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL"} {
		if os.Getenv(v) == endpoint {
			return v
		}
	}
	return "the AWS configuration"
}

// describeCheck says in a few words why the start-up check of the queue failed.
func describeCheck(url string, err error) string {
	var se *sqs.Error
	if !errors.As(err, &se) {
		return err.Error()
	}
	if endpoint, answer, ok := notSQS(se.Err); ok {
		return fmt.Sprintf("the endpoint %s does not answer as SQS does (%s): check AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_SQS", endpoint, answer)
	}
	cause := rootCause(se.Err)
	switch {
	case errors.Is(se.Kind, sqs.ErrQueueNotFound):
		return fmt.Sprintf("queue %s does not exist", url)
	case errors.Is(se.Kind, sqs.ErrAccessDenied):
		return fmt.Sprintf("access to %s denied (check the credentials and the IAM permissions): %s", url, cause)
	case errors.Is(se.Kind, sqs.ErrBadRequest):
		return fmt.Sprintf("SQS rejected the request for %s: %s", url, cause)
	}
	return fmt.Sprintf("cannot reach SQS for %s: %s", url, cause)
}

// notSQS tells whether err is an answer that SQS would not give: a body that is not SQS's
// protocol, or an error without an SQS error code. It returns the endpoint that answered and
// what it answered, in a few words.
func notSQS(err error) (endpoint, answer string, ok bool) {
	var resp *awshttp.ResponseError
	if !errors.As(err, &resp) || resp.Response == nil || resp.Response.Response == nil {
		return "", "", false
	}
	var deser *smithy.DeserializationError
	var api smithy.APIError
	switch {
	case errors.As(err, &deser):
	case errors.As(err, &api) && api.ErrorCode() == "UnknownError":
	default:
		return "", "", false
	}
	r := resp.Response.Response
	if r.Request != nil && r.Request.URL != nil {
		u := *r.Request.URL
		u.Path, u.RawPath, u.RawQuery = "", "", ""
		endpoint = u.String()
	}
	answer = "HTTP " + strconv.Itoa(r.StatusCode)
	if ct := r.Header.Get("Content-Type"); ct != "" {
		answer += ", " + ct
	}
	return endpoint, answer, true
}

// rootCause is the part of an SDK error that says what went wrong, without the layers of
// operation, attempt and transport that wrap it.
func rootCause(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		if msg := api.ErrorMessage(); msg != "" {
			return api.ErrorCode() + ": " + msg
		}
		return api.ErrorCode()
	}
	// A request that ran out of time says so, whichever of its timers fired first (the
	// client's, or the context's when both are near).
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
		return "Timeout: " + innermost(err)
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Error()
	}
	return innermost(err)
}

// innermost is the text of the last error in err's chain.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
