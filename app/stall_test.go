package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/palleto/palleto/object"
	"github.com/palleto/palleto/s3event"
)

// stallingS3 answers GetObject for one object over loopback: each response sends its
// headers and at most perRequest bytes from where its range starts, then, unless that was
// the end, stops sending (holding the connection open) until the client goes away.
func stallingS3(t *testing.T, content []byte, perRequest func(start int) int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, status := 0, http.StatusOK
		if rg := r.Header.Get("Range"); rg != "" {
			var err error
			if start, err = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-")); err != nil {
				http.Error(w, "bad range", http.StatusBadRequest)
				return
			}
			status = http.StatusPartialContent
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(content)-1, len(content)))
		}
		w.Header().Set("ETag", `"e"`)
		w.Header().Set("Content-Length", strconv.Itoa(len(content)-start))
		w.WriteHeader(status)
		end := min(len(content), start+perRequest(start))
		w.Write(content[start:end])
		if end == len(content) {
			return
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fetchFrom runs the fetch stage against srv with the run's S3 client, given requestTimeout.
func fetchFrom(t *testing.T, srv *httptest.Server, requestTimeout time.Duration) ([]*fetched, error) {
	awsCfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("key", "secret", "")}
	st := &stages{s3: newS3(awsCfg, requestTimeout), spoolDir: t.TempDir(), log: slog.New(slog.DiscardHandler)}
	type result struct {
		fs  []*fetched
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		fs, err := st.fetch(ctx, objectJob{MessageID: "m", Obj: s3event.Object{Bucket: "b", Key: "k"}})
		done <- result{fs, err}
	}()
	select {
	case r := <-done:
		return r.fs, r.err
	case <-time.After(20 * time.Second):
		cancel()
		<-done
		t.Fatal("the fetch of a stalled body was still running after 20s")
		return nil, nil
	}
}

// A body that sends its headers and part of its content, then nothing, fails the fetch with
// the stall (after the resumes that bring nothing more), as an environment fault.
func TestStalledBodyFailsTheFetch(t *testing.T) {
	content := bytes.Repeat([]byte("palleto\n"), 1000)
	srv := stallingS3(t, content, func(start int) int {
		if start == 0 {
			return 100
		}
		return 0 // a resumed request stalls at once
	})
	fs, err := fetchFrom(t, srv, 200*time.Millisecond)
	for _, f := range fs {
		f.close()
	}
	if !errors.Is(err, object.ErrStalled) {
		t.Fatalf("fetch error = %v; want a stall", err)
	}
	if !strings.Contains(err.Error(), "S3 body for s3://b/k stalled: no data for 200ms") {
		t.Errorf("error %q does not name the stall", err)
	}
	var f *envFault
	if !errors.As(err, &f) {
		t.Errorf("a stall is not an environment fault: %v", err)
	}
}

// A body that stalls but brings more each time it is resumed is read to its end, intact.
func TestStalledBodyIsResumed(t *testing.T) {
	content := bytes.Repeat([]byte("palleto\n"), 1000)
	srv := stallingS3(t, content, func(int) int { return 3000 })
	fs, err := fetchFrom(t, srv, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer fs[0].close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(fs[0].reader()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), content) {
		t.Errorf("got %d bytes, not the object's %d", got.Len(), len(content))
	}
}
