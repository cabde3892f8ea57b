package object

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/goleak"
)

// trickle is a response body fed by a channel: each value is one Read's
// bytes, a closed channel is the end of the body. A Read waits for the next
// value or for the request's context to end, as a transport's body does.
type trickle struct {
	ctx    context.Context
	chunks <-chan string
}

func (t *trickle) Read(p []byte) (int, error) {
	select {
	case c, ok := <-t.chunks:
		if !ok {
			return 0, io.EOF
		}
		return copy(p, c), nil
	case <-t.ctx.Done():
		return 0, t.ctx.Err()
	}
}

func (t *trickle) Close() error { return nil }

// trickleGetter answers every GetObject with a trickle and keeps the
// request's context so that a test can see it cancelled.
func trickleGetter(chunks <-chan string, reqCtx *context.Context) Getter {
	return GetterFunc(func(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
		*reqCtx = ctx
		return &s3.GetObjectOutput{Body: &trickle{ctx: ctx, chunks: chunks}}, nil
	})
}

func getBody(t *testing.T, g Getter) io.ReadCloser {
	t.Helper()
	out, err := g.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	return out.Body
}

// A body that stops sending fails at exactly the idle timeout after the Read
// began, with a StallError, and its request is cancelled.
func TestIdleTimeoutStallDetectedAtTheIdleTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chunks := make(chan string, 1)
		var reqCtx context.Context
		body := getBody(t, IdleTimeout(trickleGetter(chunks, &reqCtx), 30*time.Second))
		defer body.Close()
		chunks <- "abc"
		p := make([]byte, 10)
		if n, err := body.Read(p); n != 3 || err != nil {
			t.Fatalf("first Read = %d, %v; want 3, nil", n, err)
		}
		time.Sleep(time.Hour) // a caller slow to ask for more is not a stall
		start := time.Now()
		n, err := body.Read(p)
		if waited := time.Since(start); waited != 30*time.Second {
			t.Errorf("stall detected after %v; want exactly 30s", waited)
		}
		if n != 0 || !errors.Is(err, ErrStalled) {
			t.Fatalf("Read = %d, %v; want 0, ErrStalled", n, err)
		}
		if want := "S3 body for s3://b/k stalled: no data for 30s"; err.Error() != want {
			t.Errorf("error %q; want %q", err, want)
		}
		if errors.Is(err, context.Canceled) {
			t.Error("a stall must not read as a cancellation (that is a shutdown)")
		}
		if reqCtx.Err() == nil {
			t.Error("the request's context was not cancelled")
		}
		chunks <- "late"
		if _, err := body.Read(p); !errors.Is(err, ErrStalled) {
			t.Errorf("Read after the stall = %v; want ErrStalled again", err)
		}
	})
}

// A body that sends a little just within the idle timeout, again and again,
// is read to its end.
func TestIdleTimeoutSlowButSteadyBodyIsRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chunks := make(chan string)
		var reqCtx context.Context
		body := getBody(t, IdleTimeout(trickleGetter(chunks, &reqCtx), 30*time.Second))
		defer body.Close()
		go func() {
			defer close(chunks)
			for range 10 {
				time.Sleep(30*time.Second - time.Nanosecond)
				chunks <- "x"
			}
		}()
		start := time.Now()
		got, err := io.ReadAll(body)
		if err != nil || string(got) != "xxxxxxxxxx" {
			t.Fatalf("ReadAll = %q, %v; want 10 bytes, nil", got, err)
		}
		if took, want := time.Since(start), 10*(30*time.Second-time.Nanosecond); took != want {
			t.Errorf("read took %v; want %v", took, want)
		}
		if reqCtx.Err() != nil {
			t.Errorf("request cancelled: %v", reqCtx.Err())
		}
	})
}

// Close stops the timer and ends the request: nothing goes off later and no
// goroutine is left.
func TestIdleTimeoutCloseStopsTheTimer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		chunks := make(chan string, 1)
		var reqCtx context.Context
		body := getBody(t, IdleTimeout(trickleGetter(chunks, &reqCtx), 30*time.Second))
		chunks <- "abc"
		if _, err := body.Read(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		if err := body.Close(); err != nil {
			t.Fatal(err)
		}
		if reqCtx.Err() == nil {
			t.Error("Close did not end the request")
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		select {
		case <-body.(*idleBody).fired:
			t.Error("the timer went off after Close")
		default:
		}
	})
	goleak.VerifyNone(t)
}

// A Getter given no idle timeout is returned as it is.
func TestIdleTimeoutZeroIsNone(t *testing.T) {
	g := GetterFunc(func(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
		return nil, errors.New("unused")
	})
	if _, ok := IdleTimeout(g, 0).(GetterFunc); !ok {
		t.Error("IdleTimeout(g, 0) wrapped g")
	}
}
