// Package moto starts and stops moto_server, a local stand-in for AWS that
// serves SQS and S3 on one port, and provisions the queues and buckets that
// tests and the demo run against.
//
// Each server runs in its own process group bound to 127.0.0.1 on a free
// port. On Linux the process is also killed when the process that started it
// dies, so an interrupted test binary leaves no server behind.
package moto

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/internal/sdkhttp"
)

// Errors returned by Start.
var (
	// ErrNotInstalled means moto_server is not on PATH.
	ErrNotInstalled = errors.New("moto_server not found on PATH; install it with: pip install 'moto[server]'")

	// ErrExited means moto_server ended before it answered requests.
	ErrExited = errors.New("moto_server exited before it was ready")
)

// Region is the region of the configurations that Server hands out.
const Region = "us-east-1"

const (
	// startAttempts bounds retries when another process takes the port
	// between picking it and moto_server binding it.
	startAttempts = 3
	// startTimeout applies when the caller's context has no deadline; a cold
	// Python start on a loaded CI machine can take several seconds.
	startTimeout = 60 * time.Second
	// tailSize is how much of the server's output is kept for failure reports.
	tailSize = 64 << 10
)

// Server is a running moto_server.
type Server struct {
	url  string
	cmd  *exec.Cmd
	out  *output
	done chan struct{} // closed when the process has been waited for

	stopOnce sync.Once
	stopErr  error
}

// Start runs moto_server on a free 127.0.0.1 port and returns once it answers
// HTTP requests. ctx bounds the startup only: the server runs until Stop.
// Output of the server (one line per request) is copied to logw if it is not
// nil.
func Start(ctx context.Context, logw io.Writer) (*Server, error) {
	path, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNotInstalled, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	for attempt := 1; ; attempt++ {
		s, err := start(ctx, path, logw)
		if err == nil {
			return s, nil
		}
		// An early exit is most often a port taken by someone else after we
		// picked it: a new port is worth a try.
		if !errors.Is(err, ErrExited) || attempt == startAttempts || ctx.Err() != nil {
			return nil, err
		}
	}
}

func start(ctx context.Context, path string, logw io.Writer) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	out := newOutput(logw, []byte("Running on http://"+addr))
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	// The group is killed on Stop, so nothing should hold the pipes after
	// that; the delay only guards against a stray grandchild.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("moto: start %s: %w", path, err)
	}
	s := &Server{url: "http://" + addr, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady waits for the server to announce the address it bound (so that a
// foreign server on a stolen port is never mistaken for ours) and then to
// answer a request.
func (s *Server) waitReady(ctx context.Context) error {
	select {
	case <-s.out.ready:
	case <-s.done:
		return fmt.Errorf("moto: %w: %s\n%s", ErrExited, s.cmd.ProcessState, s.out.tail())
	case <-ctx.Done():
		return fmt.Errorf("moto: waiting for moto_server at %s: %w\n%s", s.url, ctx.Err(), s.out.tail())
	}
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/moto-api/data.json", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
		select {
		case <-tick.C:
		case <-s.done:
			return fmt.Errorf("moto: %w: %s\n%s", ErrExited, s.cmd.ProcessState, s.out.tail())
		case <-ctx.Done():
			return fmt.Errorf("moto: waiting for moto_server at %s: %w\n%s", s.url, ctx.Err(), s.out.tail())
		}
	}
}

// Reset drops every queue, bucket and message, so that tests that run one
// after another can share a server (and its startup time).
func (s *Server) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("moto: reset: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("moto: reset: %s", resp.Status)
	}
	return nil
}

// URL is the server's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.url }

// Output returns the last part of what the server has written.
func (s *Server) Output() string { return s.out.tail() }

// Stop kills the server's process group and waits for it to end. It is safe
// to call more than once and from several goroutines.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		if err != nil && !errors.Is(err, syscall.ESRCH) {
			s.stopErr = fmt.Errorf("moto: kill process group %d: %w", s.cmd.Process.Pid, err)
		}
		<-s.done
	})
	return s.stopErr
}

// AWSConfig returns a configuration for clients of this server: region
// us-east-1, static credentials test/test, the server as endpoint, and a
// retryer that retries quickly and never runs out of retry tokens, so that
// tests with injected faults are not failed by the client's rate limiter.
func (s *Server) AWSConfig() aws.Config {
	return Config(s.url)
}

// Config returns the configuration that AWSConfig describes for any local
// endpoint (moto, a fault proxy in front of it, fauxqs).
func Config(endpoint string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 5
				o.MaxBackoff = 200 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// SQS returns an SQS client for the server.
func (s *Server) SQS() *sqs.Client { return sqs.NewFromConfig(s.AWSConfig(), sdkhttp.OwnSQSBodies) }

// S3 returns an S3 client for the server, with path-style addressing.
func (s *Server) S3() *s3.Client {
	return s3.NewFromConfig(s.AWSConfig(), func(o *s3.Options) { o.UsePathStyle = true })
}

// RequireEnv names the environment variable that, set to "required", makes a
// missing moto_server fail the tests that need it instead of skipping them:
// .ci/run sets it, so that CI cannot pass with the moto half of the tests
// skipped.
const RequireEnv = "PALLETO_MOTO"

// SkipIfMissing skips the test, saying why in one line, when moto_server is
// not on the PATH (moto is the second backend: the embedded one in package
// local needs nothing but Go); with PALLETO_MOTO=required it fails the test
// instead.
func SkipIfMissing(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("moto_server"); err != nil {
		if os.Getenv(RequireEnv) == "required" {
			t.Fatalf("moto_server is not on the PATH and %s=required: %v", RequireEnv, err)
		}
		t.Skip("moto_server is not on the PATH (pip install 'moto[server]'); skipped")
	}
}

// StartT starts a server for a test and stops it when the test ends. A
// missing moto_server skips the test (see SkipIfMissing). The server's
// output is logged only if the test failed.
func StartT(t testing.TB) *Server {
	t.Helper()
	SkipIfMissing(t)
	s, err := Start(t.Context(), nil)
	if err != nil {
		t.Fatalf("moto: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("moto: %v", err)
		}
		if t.Failed() {
			t.Logf("moto_server output (last %d bytes):\n%s", tailSize, s.Output())
		}
	})
	return s
}

// freePort asks the kernel for a free loopback port. Another process may take
// it before moto_server binds it; Start retries when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("moto: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// output forwards the server's output, keeps its tail, and signals when the
// line announcing the bound address goes by.
type output struct {
	w      io.Writer
	marker []byte
	ready  chan struct{}

	mu   sync.Mutex
	buf  []byte
	line []byte // the unfinished line, while looking for the marker
	seen bool
}

func newOutput(w io.Writer, marker []byte) *output {
	return &output{w: w, marker: marker, ready: make(chan struct{})}
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.buf = append(o.buf, p...)
	if len(o.buf) > tailSize {
		o.buf = append(o.buf[:0], o.buf[len(o.buf)-tailSize:]...)
	}
	if !o.seen {
		o.line = append(o.line, p...)
		for !o.seen {
			i := bytes.IndexByte(o.line, '\n')
			if i < 0 {
				break
			}
			if bytes.Contains(o.line[:i], o.marker) {
				o.seen = true
				close(o.ready)
			}
			o.line = o.line[i+1:]
		}
	}
	o.mu.Unlock()
	if o.w != nil {
		// The server must not stall or die because a log sink failed.
		_, _ = o.w.Write(p)
	}
	return len(p), nil
}

func (o *output) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf)
}

// PID is the process id of the server (and of its process group).
func (s *Server) PID() int { return s.cmd.Process.Pid }
