// Package sdkhttp holds what the project's AWS SDK clients need from their HTTP client.
//
// The SDK closes the body it built for a request as soon as the HTTP client's Do returns, and
// net/http may still be reading that body then (the last read, that finds its end) when the
// answer came first, as it does from a fast endpoint on loopback. That read fails, net/http
// closes the connection under the answer being read, and the SDK retries the call. For an SQS
// ReceiveMessage the messages of the lost answer are then in flight for their visibility
// timeout (30 s by default), with no one holding them. A request whose body is its own copy
// does not lose its answer. SQS requests are small JSON documents: the copy costs little.
// S3 uploads can be large, and their clients do not use this.
package sdkhttp

import (
	"bytes"
	"context"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Client is the HTTP client the AWS SDK's clients take.
type Client interface {
	Do(*http.Request) (*http.Response, error)
}

// OwnBody returns r under ctx, with a body of its own: a copy of r's, read to its end.
func OwnBody(ctx context.Context, r *http.Request) (*http.Request, error) {
	r2 := r.Clone(ctx)
	if r.Body == nil || r.Body == http.NoBody {
		return r2, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r2.ContentLength = int64(len(body))
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return r2, nil
}

// OwnBodies is an HTTP client that hands Next each request with a body of its own.
type OwnBodies struct{ Next Client }

func (c OwnBodies) Do(r *http.Request) (*http.Response, error) {
	r2, err := OwnBody(r.Context(), r)
	if err != nil {
		return nil, err
	}
	return c.Next.Do(r2)
}

// OwnSQSBodies is an option of an SQS client: its requests get bodies of their own.
func OwnSQSBodies(o *sqs.Options) { o.HTTPClient = OwnBodies{Next: o.HTTPClient} }
