package sqs

import (
	"errors"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// Errors of the source. The first four are the kinds of an [*Error]; match them with errors.Is.
var (
	// ErrQueueNotFound means the queue (or the dead-letter queue) does not exist.
	ErrQueueNotFound = errors.New("sqs: queue does not exist")

	// ErrAccessDenied means the credentials are missing, invalid, expired, or not allowed
	// to do what the source asked.
	ErrAccessDenied = errors.New("sqs: access denied")

	// ErrBadRequest means SQS rejected a request as malformed: a wrong URL or a setting the
	// queue does not accept.
	ErrBadRequest = errors.New("sqs: request rejected")

	// ErrUnavailable means SQS could not be reached or answered with a failure that retrying
	// may cure: network errors, throttling, 5xx. The source retries these itself; only Check
	// returns them.
	ErrUnavailable = errors.New("sqs: unavailable")

	// ErrPermanent marks the error of a message that must not be retried: wrap it (or use
	// [Permanent]) in the error a handler returns, and the source sends the message to the
	// dead-letter queue of Config.DeadLetterQueueURL at once, if there is one.
	ErrPermanent = errors.New("sqs: permanent failure")

	// ErrClosed is returned by Receive after Close.
	ErrClosed = errors.New("sqs: source closed")

	// ErrInvalidConfig is wrapped by the *ConfigError that Config.Validate returns.
	ErrInvalidConfig = errors.New("sqs: invalid configuration")
)

// Permanent returns an error that wraps both err and [ErrPermanent].
func Permanent(err error) error {
	if err == nil {
		return ErrPermanent
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string   { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() []error { return []error{ErrPermanent, e.err} }

// An Error is a request to SQS that failed in a way that stops the source (or, from Check, any
// failure). It wraps Kind and Err, so errors.Is and errors.As see both.
type Error struct {
	Action string // "ReceiveMessage", "DeleteMessageBatch", …
	Queue  string // the queue's URL
	Kind   error  // ErrQueueNotFound, ErrAccessDenied, ErrBadRequest or ErrUnavailable
	Err    error  // what the SDK returned
}

func (e *Error) Error() string {
	return e.Kind.Error() + " (" + e.Action + " " + e.Queue + "): " + e.Err.Error()
}

// Unwrap returns Kind and Err.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// accessCodes are the API error codes with which AWS refuses a caller, in the protocols SQS
// speaks. They are protocol identifiers, not messages.
var accessCodes = map[string]bool{
	"AccessDenied":                true,
	"AccessDeniedException":       true,
	"InvalidClientTokenId":        true,
	"UnrecognizedClientException": true,
	"SignatureDoesNotMatch":       true,
	"IncompleteSignature":         true,
	"MissingAuthenticationToken":  true,
	"InvalidAccessKeyId":          true,
	"ExpiredToken":                true,
	"ExpiredTokenException":       true,
	"AuthFailure":                 true,
	"OptInRequired":               true,
}

var retryables = retry.IsErrorRetryables(retry.DefaultRetryables)

// classify returns the kind of a request's error: ErrUnavailable for what is worth retrying,
// another sentinel for what is not.
func classify(err error) error {
	var (
		notFound *types.QueueDoesNotExist
		security *types.InvalidSecurity
		kms      *types.KmsAccessDenied
		signing  *v4.SigningError
		kmsSlow  *types.KmsThrottled
		overLim  *types.OverLimit
		deser    *smithy.DeserializationError
		api      smithy.APIError
		resp     *awshttp.ResponseError
	)
	switch {
	case errors.As(err, &notFound):
		return ErrQueueNotFound
	case errors.As(err, &security), errors.As(err, &kms), errors.As(err, &signing):
		return ErrAccessDenied
	case errors.As(err, &api) && accessCodes[api.ErrorCode()]:
		return ErrAccessDenied
	case errors.As(err, &kmsSlow), errors.As(err, &overLim):
		return ErrUnavailable
	case retryables.IsErrorRetryable(err) == aws.TrueTernary:
		return ErrUnavailable
	// An answer cut off half-way: the SDK does not retry it, but every request the source
	// makes may be repeated (a second delete or visibility change of a message is harmless).
	case errors.As(err, &deser), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return ErrUnavailable
	case errors.As(err, &resp):
		switch code := resp.HTTPStatusCode(); {
		case code == http.StatusForbidden || code == http.StatusUnauthorized:
			return ErrAccessDenied
		case code == http.StatusTooManyRequests || code >= 500:
			return ErrUnavailable
		case code >= 400:
			return ErrBadRequest
		}
	}
	if api != nil && api.ErrorFault() == smithy.FaultClient {
		return ErrBadRequest
	}
	// Anything else (a connection that failed in a way the SDK does not name, a proxy's
	// garbage) is retried: Check reports it at start-up, and the backoff keeps it cheap.
	return ErrUnavailable
}
