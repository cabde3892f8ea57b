// Package local is an in-process SQS and S3 for demos, tests and users' own tests.
//
// Start serves both services on one loopback endpoint; point an AWS client at
// Endpoint (as AWS_ENDPOINT_URL or aws.Config.BaseEndpoint) and Close the
// server when done. Requests whose X-Amz-Target header names AmazonSQS are
// SQS calls over the AWS JSON 1.0 protocol (what aws-sdk-go-v2, current boto3
// and the AWS CLI v2 speak); every other request is an S3 call.
//
// It is a test double, not a product backend: state lives in memory, any
// credentials are accepted and nothing is signed or checked. The account id
// is always 000000000000.
package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/internal/sdkhttp"
)

// Account is the account id of every queue ARN and queue URL the server hands out.
const Account = "000000000000"

// DefaultRegion is the region when Options.Region is empty.
const DefaultRegion = "us-east-1"

// Options configure a Server. The zero value serves on a free loopback port in us-east-1.
type Options struct {
	// Addr is the address to listen on; empty means 127.0.0.1:0 (a free loopback port).
	Addr string
	// Region is the region of queue ARNs and of the configuration AWSConfig returns;
	// empty means DefaultRegion.
	Region string
	// Faults are injected into the server's own requests from the start;
	// change them while it runs with Injector().SetFaults.
	Faults Faults
	// FaultSeed seeds the choice of faults, so that a failing test can be
	// replayed; zero is a seed like any other.
	FaultSeed uint64
}

// Server is a running SQS and S3 on one endpoint.
type Server struct {
	region   string
	endpoint string
	handler  http.Handler
	faults   *Injector
	sqs      *sqsService
	s3       http.Handler

	ln   net.Listener
	http *http.Server
	done chan struct{} // closed by Close: ends the serve loop's owner

	closeOnce sync.Once
	closeErr  error
}

// Start listens on opts.Addr and serves until Close. ctx bounds the start only.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := opts.Faults.Validate(); err != nil {
		return nil, err
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("local: listen on %s: %w", addr, err)
	}
	s := newServer(opts, "http://"+hostPort(ln.Addr()))
	s.ln = ln
	s.http = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.http.Serve(ln) // ends with ErrServerClosed when Close runs
	}()
	return s, nil
}

// newServer builds a server without a listener: endpoint is the base of the queue URLs it
// hands out. Tests drive its handler directly.
func newServer(opts Options, endpoint string) *Server {
	region := opts.Region
	if region == "" {
		region = DefaultRegion
	}
	s := &Server{region: region, endpoint: endpoint}
	s.sqs = newSQSService(region, endpoint)
	s.s3 = newS3(region, s.sqs)
	// Validated by Start; a test that calls newServer directly passes none.
	s.faults, _ = NewInjector(http.HandlerFunc(s.route), opts.FaultSeed, opts.Faults, nil)
	s.handler = s.faults
	return s
}

// Injector is the server's fault injector: SetFaults changes the faults
// while the server runs, Counts tells what they did.
func (s *Server) Injector() *Injector { return s.faults }

// route sends SQS calls to SQS and everything else to S3.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), sqsTargetPrefix) {
		s.sqs.ServeHTTP(w, r)
		return
	}
	s.s3.ServeHTTP(w, r)
}

// hostPort is the address to reach a listener at: an unspecified address (0.0.0.0, ::)
// is reached on loopback.
func hostPort(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := tcp.IP
	if ip == nil || ip.IsUnspecified() {
		if ip.To4() == nil && ip != nil {
			ip = net.IPv6loopback
		} else {
			ip = net.IPv4(127, 0, 0, 1)
		}
	}
	return net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port))
}

// Endpoint is the server's URL (http://127.0.0.1:PORT): AWS_ENDPOINT_URL for the AWS CLI
// and SDKs, aws.Config.BaseEndpoint for aws-sdk-go-v2.
func (s *Server) Endpoint() string { return s.endpoint }

// Region is the server's region.
func (s *Server) Region() string { return s.region }

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// AWSConfig returns a configuration for clients of this server: its region and endpoint,
// static credentials test/test, and a retryer that retries quickly and never runs out of
// retry tokens. S3 clients also need path-style addressing (see S3Client).
func (s *Server) AWSConfig() aws.Config {
	return aws.Config{
		Region:       s.region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(s.endpoint),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxBackoff = 200 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// SQSClient returns an SQS client for the server.
func (s *Server) SQSClient() *sqs.Client {
	return sqs.NewFromConfig(s.AWSConfig(), sdkhttp.OwnSQSBodies)
}

// S3Client returns an S3 client for the server, with path-style addressing.
func (s *Server) S3Client() *s3.Client {
	return s3.NewFromConfig(s.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
}

// QueueURL is the URL of the queue with the given name, whether or not it exists.
func (s *Server) QueueURL(name string) string { return s.sqs.queueURL(name) }

// closeGrace is how long Close lets requests in progress finish.
const closeGrace = time.Second

// Close stops the server: long polls in progress answer at once (with no messages),
// connections are closed, and Close returns when the serve loop has ended. It is safe
// to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.sqs.close()
		if s.http == nil {
			return
		}
		// Requests in progress get a moment to finish. A connection that a client opened
		// and sent nothing on keeps Shutdown waiting for 5 s (net/http's rule for new
		// connections): such connections, and any request still running after the grace
		// period, are closed, which is what closing a test double means, not an error.
		ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
		defer cancel()
		if err := s.http.Shutdown(ctx); err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				s.closeErr = err
			}
			if err := s.http.Close(); err != nil && s.closeErr == nil {
				s.closeErr = err
			}
		}
		<-s.done
	})
	return s.closeErr
}
