package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go"

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
	}
	if cfg.Region == "" {
		return aws.Config{}, &ConfigError{flag, "no AWS region: set AWS_REGION (or a profile's region)"}
	}
	return cfg, nil
}

// checkQueue makes the start-up check of an SQS source: a queue that cannot be used is a
// *ConfigError for --queue-url that says why in a few words.
func checkQueue(ctx context.Context, src *sqs.Source, url string) error {
	err := src.Check(ctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return &ConfigError{"queue-url", describeCheck(url, err)}
}

// describeCheck says in a few words why the start-up check of the queue failed.
func describeCheck(url string, err error) string {
	var se *sqs.Error
	if !errors.As(err, &se) {
		return err.Error()
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
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Error()
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// endpointOverridden tells whether S3 is served from a custom endpoint (moto, MinIO, …),
// which wants path-style addressing.
func endpointOverridden(cfg aws.Config) bool {
	return cfg.BaseEndpoint != nil || os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
}
