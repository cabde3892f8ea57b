package object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// ErrStalled means that an object's body stopped sending bytes for longer
// than the idle timeout given to IdleTimeout. Match it with errors.Is; the
// error is a *StallError.
var ErrStalled = errors.New("object: body stalled")

// StallError reports a body that sent no byte for Idle while it was read.
// It does not wrap the cancellation that aborted the request: a stall is a
// timeout, not a caller giving up.
type StallError struct {
	Bucket, Key string
	Idle        time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("S3 body for s3://%s/%s stalled: no data for %v", e.Bucket, e.Key, e.Idle)
}

// Is makes errors.Is(err, ErrStalled) true.
func (e *StallError) Is(target error) bool { return target == ErrStalled }

// IdleTimeout returns a Getter whose response bodies fail with a
// *StallError when a Read waits longer than idle for its first byte. The
// request is then cancelled (its connection closed) and every later Read
// fails the same way. Only time spent inside Read counts: a reader that is
// slow to ask for more is not a stalled body. idle <= 0 returns g itself.
//
// Open resumes a stalled body with a ranged request, as it does a dropped
// connection, up to its limit of attempts without progress.
func IdleTimeout(g Getter, idle time.Duration) Getter {
	if idle <= 0 {
		return g
	}
	return idleGetter{g: g, idle: idle}
}

type idleGetter struct {
	g    Getter
	idle time.Duration
}

func (ig idleGetter) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	ctx, cancel := context.WithCancel(ctx)
	out, err := ig.g.GetObject(ctx, in, opts...)
	if err != nil || out.Body == nil {
		cancel()
		return out, err
	}
	out.Body = &idleBody{rc: out.Body, cancel: cancel, idle: ig.idle,
		bucket: aws.ToString(in.Bucket), key: aws.ToString(in.Key), fired: make(chan struct{})}
	return out, nil
}

// idleBody is a response body with an idle-read deadline: a timer armed
// for each Read cancels the request's context when it goes off. It is not
// safe for concurrent use, as no body is.
type idleBody struct {
	rc          io.ReadCloser
	cancel      context.CancelFunc
	idle        time.Duration
	bucket, key string
	timer       *time.Timer   // nil until the first Read
	fired       chan struct{} // closed once the timer cancelled the request
	stalled     bool
}

func (b *idleBody) expire() {
	b.cancel()
	close(b.fired)
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.stalled {
		return 0, b.stallError()
	}
	if b.timer == nil {
		b.timer = time.AfterFunc(b.idle, b.expire)
	} else {
		b.timer.Reset(b.idle)
	}
	n, err := b.rc.Read(p)
	if !b.timer.Stop() {
		// The timer went off during the Read: whatever the transport
		// says (a cancelled request), the cause is the stall.
		<-b.fired
		b.stalled = true
		return n, b.stallError()
	}
	return n, err
}

func (b *idleBody) stallError() error {
	return &StallError{Bucket: b.bucket, Key: b.key, Idle: b.idle}
}

// Close stops the timer, ends the request and closes the body.
func (b *idleBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	b.cancel()
	return b.rc.Close()
}
