package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/palleto/palleto/object"
	"github.com/palleto/palleto/output"
)

// An envFault is a failure of the environment, not of the message being worked on: a result
// or spool directory that cannot be written, a full disk, credentials that do not work, S3
// refusing or failing every request. It never counts against the message: the message is
// released and intake pauses until probe succeeds.
type envFault struct {
	err   error
	probe func(context.Context) error // nil error: the cause is gone
}

func (e *envFault) Error() string { return e.err.Error() }
func (e *envFault) Unwrap() error { return e.err }

// dirFault marks err, met while writing into dir, as the environment's when it is. Its probe
// makes dir (as the write would have) and writes a file in it.
func dirFault(dir string, err error) error {
	if err == nil || !dirErrorIsEnv(err) {
		return err
	}
	return &envFault{err: err, probe: func(context.Context) error {
		if dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		return probeDir(dir)
	}}
}

// dirErrorIsEnv tells whether an error writing a file says that the file system is at fault
// (permissions, read-only, full, quota, I/O, out of file descriptors) rather than the data.
func dirErrorIsEnv(err error) bool {
	if errors.Is(err, output.ErrCollision) || errors.Is(err, output.ErrInvalid) {
		return false
	}
	for _, e := range []error{fs.ErrPermission, syscall.EROFS, syscall.ENOSPC, syscall.EDQUOT, syscall.EIO,
		syscall.EMFILE, syscall.ENFILE, fs.ErrNotExist} {
		if errors.Is(err, e) {
			return true
		}
	}
	var pe *fs.PathError
	return errors.As(err, &pe)
}

// probeDir writes, syncs and removes a small file in dir: the proof that results (or spooled
// objects) can be written there. The name matches what output.Writer sweeps, so that a crash
// leaves nothing for good.
func probeDir(dir string) error {
	if dir == "" {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, ".palleto-probe-*.tmp")
	if err != nil {
		return err
	}
	name := f.Name()
	_, err = f.Write([]byte("palleto\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	return err
}

// s3Fault marks an S3 error about bucket/key as the environment's when it is: denied access
// or credentials, throttling, server errors, timeouts and network failures that outlived the
// SDK's retries. Its probe reads the first byte of the same object again.
func s3Fault(g object.Getter, bucket, key, versionID string, err error) error {
	if err == nil || !s3ErrorIsEnv(err) {
		return err
	}
	return &envFault{err: err, probe: func(ctx context.Context) error {
		in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String("bytes=0-0")}
		if versionID != "" {
			in.VersionId = aws.String(versionID)
		}
		out, err := g.GetObject(ctx, in)
		if err != nil {
			if !s3ErrorIsEnv(err) {
				return nil // S3 answers again; what it says is the message's business
			}
			return err
		}
		out.Body.Close()
		return nil
	}}
}

var retryables = retry.IsErrorRetryables(retry.DefaultRetryables)

// s3ErrorIsEnv tells whether an S3 error is the environment's.
func s3ErrorIsEnv(err error) bool {
	switch {
	case errors.Is(err, object.ErrNotFound), errors.Is(err, object.ErrCorrupt), errors.Is(err, object.ErrChanged):
		return false
	case errors.Is(err, object.ErrStalled):
		return true // a body that stopped sending: a timeout
	case errors.Is(err, context.Canceled):
		return false // a shutdown, not a fault
	case errors.Is(err, context.DeadlineExceeded):
		return true
	}
	// An answer's status says whose fault it is. A request that got no answer at all (a
	// refused connection, a host name that does not resolve) has the status 0: the network
	// error under it says.
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) && resp.HTTPStatusCode() != 0 {
		code := resp.HTTPStatusCode()
		return code == http.StatusForbidden || code == http.StatusUnauthorized || code == http.StatusTooManyRequests || code >= 500
	}
	var api smithy.APIError
	if errors.As(err, &api) && (api.ErrorCode() == "AccessDenied" || api.ErrorCode() == "ExpiredToken" ||
		api.ErrorCode() == "InvalidAccessKeyId" || api.ErrorCode() == "SignatureDoesNotMatch") {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	if retryables.IsErrorRetryable(err) == aws.TrueTernary {
		return true
	}
	// No credentials at all: the SDK names no type for it.
	var op *smithy.OperationError
	return errors.As(err, &op) && !errors.As(err, &api) && !errors.As(err, &resp)
}

// A gate holds intake back while the environment is at fault. A fault closes it; a probe,
// retried with a growing pause, opens it again once the fault's cause is gone. A fault that
// outlasts maxFault without a message succeeding meanwhile gives up: the run ends with it.
type gate struct {
	log      *slog.Logger
	maxFault time.Duration
	giveUp   func(error)
	intake   pauser        // paused and resumed with the gate; nil: none
	first    time.Duration // first pause between probes
	most     time.Duration // cap of the pause between probes

	mu      sync.Mutex
	fault   *envFault     // the cause of the pause; nil while open
	since   time.Time     // the first fault since the last success; zero if none
	open    chan struct{} // closed while intake is open
	pausing chan struct{} // closed when intake pauses
	kick    chan struct{} // wakes the prober
	backoff time.Duration // the next pause between probes
	pauses  int64
	gaveUp  error
}

// pauser is a source that can stop receiving for a while: *sqs.Source.
type pauser interface {
	Pause()
	Resume()
}

func newGate(log *slog.Logger, maxFault time.Duration, giveUp func(error)) *gate {
	g := &gate{log: log, maxFault: maxFault, giveUp: giveUp, first: time.Second, most: 30 * time.Second,
		open: make(chan struct{}), pausing: make(chan struct{}), kick: make(chan struct{}, 1), backoff: time.Second}
	close(g.open)
	return g
}

// report takes a message's error and says whether it is the environment's; if so, intake
// pauses (once: later faults during the pause are not logged again).
func (g *gate) report(err error) bool {
	var f *envFault
	if !errors.As(err, &f) {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.since.IsZero() {
		g.since = time.Now()
	}
	if g.fault != nil || g.gaveUp != nil {
		return true
	}
	g.fault = f
	g.pauses++
	g.open = make(chan struct{})
	close(g.pausing)
	if g.intake != nil {
		g.intake.Pause()
	}
	g.log.Error("intake paused: the environment is at fault; messages are put back without counting against them until a probe succeeds",
		"cause", f.Error(), "max_fault_time", g.maxFault)
	select {
	case g.kick <- struct{}{}:
	default:
	}
	return true
}

// succeeded records that a message went through: whatever faults came before are over.
func (g *gate) succeeded() {
	g.mu.Lock()
	if g.fault == nil {
		g.since = time.Time{}
		g.backoff = g.first
	}
	g.mu.Unlock()
}

// wait blocks while intake is paused, or returns ctx's error.
func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// paused tells whether intake is paused now.
func (g *gate) paused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fault != nil
}

// Health reports whether intake is running: false, with the cause, while it is paused by a
// fault of the environment.
func (g *gate) Health() (ok bool, reason string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.gaveUp != nil:
		return false, g.gaveUp.Error()
	case g.fault != nil:
		return false, fmt.Sprintf("intake paused since %s: %v", g.since.Format(time.RFC3339), g.fault)
	}
	return true, ""
}

// Pauses returns how many times intake paused, and whether it is paused now.
func (g *gate) Pauses() (n int64, paused bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pauses, g.fault != nil
}

// run probes while intake is paused, until ctx ends or it gives up. The pause between probes
// grows until a message succeeds: a fault that a probe does not see (it comes back as soon as
// intake resumes) costs fewer and fewer deliveries.
func (g *gate) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.kick:
		}
		for {
			g.mu.Lock()
			f, since, wait := g.fault, g.since, g.backoff
			g.backoff = min(2*g.backoff, g.most)
			g.mu.Unlock()
			if f == nil {
				break
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			err := f.probe(ctx)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				g.mu.Lock()
				g.fault = nil
				g.pausing = make(chan struct{})
				close(g.open)
				if g.intake != nil {
					g.intake.Resume()
				}
				g.mu.Unlock()
				g.log.Info("intake resumed: the probe succeeded", "paused_for", time.Since(since).Round(time.Millisecond))
				break
			}
			if time.Since(since) >= g.maxFault {
				gave := fmt.Errorf("a fault of the environment lasted more than --max-fault-time %v: %w", g.maxFault, f)
				g.mu.Lock()
				g.gaveUp = gave
				g.mu.Unlock()
				g.log.Error("giving up", "cause", f.Error(), "max_fault_time", g.maxFault)
				g.giveUp(gave)
				return
			}
			g.log.Debug("probe failed; intake stays paused", "err", err)
		}
	}
}
