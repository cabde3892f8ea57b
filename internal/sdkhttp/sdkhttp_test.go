package sdkhttp

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// closeOnce is a request body that fails every read after Close, as the body the SDK builds
// does.
type closeOnce struct {
	r      *strings.Reader
	closed bool
}

func (b *closeOnce) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("read after close")
	}
	return b.r.Read(p)
}

func (b *closeOnce) Close() error { b.closed = true; return nil }

// recordingClient keeps the request it was given, to read its body later.
type recordingClient struct{ got *http.Request }

func (c *recordingClient) Do(r *http.Request) (*http.Response, error) {
	c.got = r
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

// TestOwnBodiesSurviveTheCallersClose checks that net/http can still read a request's body
// after the SDK closed its own once Do returned (the last read, that finds the end, can come
// that late): the body handed on is a copy.
func TestOwnBodiesSurviveTheCallersClose(t *testing.T) {
	const body = `{"QueueUrl":"q","MaxNumberOfMessages":10}`
	inner := &recordingClient{}
	orig := &closeOnce{r: strings.NewReader(body)}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/", orig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (OwnBodies{Next: inner}).Do(req); err != nil {
		t.Fatal(err)
	}
	orig.Close() // what the SDK does when Do returns
	got, err := io.ReadAll(inner.got.Body)
	if err != nil {
		t.Fatalf("reading the body handed on after the caller closed its own: %v", err)
	}
	if string(got) != body || inner.got.ContentLength != int64(len(body)) {
		t.Errorf("body handed on %q (length %d), want %q", got, inner.got.ContentLength, body)
	}
	again, err := inner.got.GetBody()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(again); string(b) != body {
		t.Errorf("GetBody gave %q, want %q", b, body)
	}
}
