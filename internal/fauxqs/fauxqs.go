// Package fauxqs starts and stops fauxqs, an in-memory SQS emulator in
// Node.js, for throughput benchmarks: unlike moto, it does not slow down as a
// queue grows. It runs bench/fauxqs/start.sh, which installs the pinned
// version on first use and binds 127.0.0.1 only.
//
// fauxqs serves SQS (with visibility timeouts, long polling, redrive to a
// dead-letter queue, FIFO queues) and basic S3 object operations, but not S3
// event notifications: use moto for anything that needs them. A long poll
// that its client abandons keeps waiting in fauxqs and still takes the
// messages that arrive before it times out; they stay invisible for the
// visibility timeout, so a benchmark that cancels polls must count on that.
package fauxqs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/internal/sdkhttp"
)

// Errors returned by Start.
var (
	// ErrNotInstalled means node or npm is not on PATH.
	ErrNotInstalled = errors.New("fauxqs: node and npm not found on PATH; install Node.js 20 (for example: apt-get install nodejs npm)")

	// ErrNoScript means bench/fauxqs/start.sh was not found. Set
	// PALLETO_FAUXQS_DIR to the directory that holds it.
	ErrNoScript = errors.New("fauxqs: bench/fauxqs/start.sh not found; set PALLETO_FAUXQS_DIR")

	// ErrExited means the server ended before it printed its URL.
	ErrExited = errors.New("fauxqs: server exited before it was ready")
)

// startTimeout applies when the caller's context has no deadline; the first
// start runs npm ci, which takes a while on a cold cache.
const startTimeout = 3 * time.Minute

const tailSize = 64 << 10

// Server is a running fauxqs.
type Server struct {
	url  string
	cmd  *exec.Cmd
	out  *output
	done chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// Start runs fauxqs on a free 127.0.0.1 port (the server picks it, so there
// is no race for it) and returns once it accepts connections. ctx bounds the
// startup only. The server's output goes to logw if it is not nil.
func Start(ctx context.Context, logw io.Writer) (*Server, error) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%w (%v)", ErrNotInstalled, err)
		}
	}
	script, err := findScript()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	out := &output{w: logw, ready: make(chan string, 1)}
	cmd := exec.Command("/bin/sh", script, "0")
	cmd.Stdout = out
	cmd.Stderr = &stderr{out}
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("fauxqs: start %s: %w", script, err)
	}
	s := &Server{cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	select {
	case s.url = <-out.ready:
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("%w: %s\n%s", ErrExited, cmd.ProcessState, out.tail())
	case <-ctx.Done():
		_ = s.Stop()
		return nil, fmt.Errorf("fauxqs: waiting for the server: %w\n%s", ctx.Err(), out.tail())
	}
}

// findScript looks for bench/fauxqs/start.sh in PALLETO_FAUXQS_DIR, then in
// the directories above the working directory (go test runs in the
// package's directory), then beside this source file.
func findScript() (string, error) {
	if dir := os.Getenv("PALLETO_FAUXQS_DIR"); dir != "" {
		p := filepath.Join(dir, "start.sh")
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %v", ErrNoScript, err)
		}
		return p, nil
	}
	var roots []string
	if wd, err := os.Getwd(); err == nil {
		roots = append(roots, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		roots = append(roots, filepath.Dir(file))
	}
	for _, dir := range roots {
		for {
			p := filepath.Join(dir, "bench", "fauxqs", "start.sh")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", ErrNoScript
}

// URL is the server's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return s.url }

// Output returns the last part of what the server has written.
func (s *Server) Output() string { return s.out.tail() }

// PID is the process id of the server (and of its process group).
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Stop kills the server's process group and waits for it to end. It is safe
// to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		if err != nil && !errors.Is(err, syscall.ESRCH) {
			s.stopErr = fmt.Errorf("fauxqs: kill process group %d: %w", s.cmd.Process.Pid, err)
		}
		<-s.done
	})
	return s.stopErr
}

// AWSConfig returns a configuration for clients of this server, as
// moto.Config describes.
func (s *Server) AWSConfig() aws.Config { return moto.Config(s.url) }

// SQS returns an SQS client for the server.
func (s *Server) SQS() *sqs.Client { return sqs.NewFromConfig(s.AWSConfig(), sdkhttp.OwnSQSBodies) }

// StartT starts a server for a test or benchmark and stops it when that
// ends. Missing Node.js skips a test (fauxqs is a comparison for the
// benchmarks, not a backend the project needs) but fails a benchmark: a
// benchmark that quietly does not run measures nothing.
func StartT(t testing.TB) *Server {
	t.Helper()
	s, err := Start(t.Context(), nil)
	if _, bench := t.(*testing.B); errors.Is(err, ErrNotInstalled) && !bench {
		t.Skipf("skipped: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("fauxqs output (last %d bytes):\n%s", tailSize, s.Output())
		}
	})
	return s
}

// output keeps the tail of the server's output and finds the URL that
// server.mjs prints alone on a stdout line when it is ready.
type output struct {
	w     io.Writer
	ready chan string

	mu    sync.Mutex
	buf   []byte
	line  []byte
	found bool
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.keep(p)
	if !o.found {
		o.line = append(o.line, p...)
		for {
			i := bytes.IndexByte(o.line, '\n')
			if i < 0 {
				break
			}
			l := strings.TrimSpace(string(o.line[:i]))
			o.line = o.line[i+1:]
			if u, err := url.Parse(l); err == nil && u.Scheme == "http" && strings.HasPrefix(u.Host, "127.0.0.1:") {
				o.found = true
				o.ready <- l
				break
			}
		}
	}
	o.forward(p)
	o.mu.Unlock()
	return len(p), nil
}

// forward copies output to the log writer, one write at a time: stdout and
// stderr are copied by two goroutines. Its errors are dropped: the server must
// not stall or die because a log sink failed.
func (o *output) forward(p []byte) {
	if o.w != nil {
		_, _ = o.w.Write(p)
	}
}

func (o *output) keep(p []byte) {
	o.buf = append(o.buf, p...)
	if len(o.buf) > tailSize {
		o.buf = append(o.buf[:0], o.buf[len(o.buf)-tailSize:]...)
	}
}

func (o *output) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf)
}

// stderr keeps the server's error output with its standard output, but never
// takes a line of it for the URL.
type stderr struct{ o *output }

func (e *stderr) Write(p []byte) (int, error) {
	e.o.mu.Lock()
	e.o.keep(p)
	e.o.forward(p)
	e.o.mu.Unlock()
	return len(p), nil
}
