package app_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"

	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/local"
	"github.com/palleto/palleto/output"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(awstest.Main(m)) }

// env is a bucket whose notifications go to a queue with a dead-letter queue, on one
// backend (the embedded one or moto_server).
type env struct {
	srv    awstest.Backend
	s3     *s3.Client
	sqs    *awssqs.Client
	bucket string
	queue  moto.Queue
	out    string
}

var envSeq atomic.Int64

func newEnv(t *testing.T, srv awstest.Backend, maxReceive int) *env {
	t.Helper()
	ctx := t.Context()
	n := envSeq.Add(1)
	e := &env{srv: srv, s3: srv.S3(), sqs: srv.SQS(), bucket: fmt.Sprintf("bucket-%d", n), out: t.TempDir()}
	var err error
	e.queue, err = moto.CreateQueue(ctx, e.sqs, fmt.Sprintf("queue-%d", n), moto.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceiveCount: maxReceive})
	if err != nil {
		t.Fatal(err)
	}
	if err := moto.CreateBucket(ctx, e.s3, e.bucket); err != nil {
		t.Fatal(err)
	}
	if err := moto.NotifyQueue(ctx, e.s3, e.sqs, e.bucket, e.queue); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) put(t *testing.T, key string, body []byte) {
	t.Helper()
	if _, err := moto.PutObject(t.Context(), e.s3, e.bucket, key, body); err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
}

func (e *env) config(mod ...func(*app.Config)) app.Config {
	cfg := app.Config{
		QueueURL:   e.queue.URL,
		Out:        e.out,
		Drain:      true,
		Fetchers:   3,
		Processors: 2,
		WaitTime:   time.Second,
		RetryDelay: 200 * time.Millisecond,
		MaxDelay:   time.Second,
		AWS:        ptr(e.srv.Config("")),
	}
	for _, m := range mod {
		m(&cfg)
	}
	return cfg
}

func ptr[T any](v T) *T { return &v }

func (e *env) run(t *testing.T, mod ...func(*app.Config)) app.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	logger := func(c *app.Config) {
		c.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	cfg := e.config(append([]func(*app.Config){logger}, mod...)...)
	sum, err := app.Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return sum
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (e *env) result(t *testing.T, key string) (output.Result, bool) {
	t.Helper()
	r, err := output.Read(filepath.Join(e.out, output.RelPath(e.bucket, key)))
	if errors.Is(err, fs.ErrNotExist) {
		return r, false
	}
	if err != nil {
		t.Fatalf("result of %q: %v", key, err)
	}
	return r, true
}

func (e *env) queueCounts(t *testing.T, url string) (visible, inflight string) {
	t.Helper()
	out, err := e.sqs.GetQueueAttributes(t.Context(), &awssqs.GetQueueAttributesInput{
		QueueUrl: &url,
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]
}

func lines(n int, tag string) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "%s line %d\n", tag, i)
	}
	return b.Bytes()
}

func gz(p []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(p)
	w.Close()
	return b.Bytes()
}

func zst(p []byte) []byte {
	w, _ := zstd.NewWriter(nil)
	defer w.Close()
	return w.EncodeAll(p, nil)
}

func TestPipelineEndToEnd(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 3)
		type want struct {
			lines    int64
			bytes    int64
			encoding string
		}
		wants := map[string]want{}
		add := func(key string, plain []byte, enc string) {
			body := plain
			switch enc {
			case "gzip":
				body = gz(plain)
			case "zstd":
				body = zst(plain)
			}
			e.put(t, key, body)
			wants[key] = want{int64(bytes.Count(plain, []byte("\n"))), int64(len(plain)), enc}
		}
		for i := range 12 {
			add(fmt.Sprintf("logs/%02d.log.gz", i), lines(100+i, "gz"), "gzip")
			add(fmt.Sprintf("logs/%02d.log.zst", i), lines(50+i, "zst"), "zstd")
			add(fmt.Sprintf("logs/%02d.log", i), lines(10+i, "plain"), "none")
		}
		for _, key := range []string{
			"with space/and+plus.gz", "percent %25 and %2F.txt", "ünïcødé/日本語.log",
			"../escape/../../etc/passwd", "/leading/slash", "a//double", "trailing/",
		} {
			add(key, lines(7, key), "gzip")
		}
		add("empty", nil, "none")
		add("no-newline", []byte("one line without end"), "none")

		sum := e.run(t)
		for key, w := range wants {
			r, ok := e.result(t, key)
			if !ok {
				t.Errorf("%q: no result", key)
				continue
			}
			if r.Key != key || r.Bucket != e.bucket || r.Lines != w.lines || r.Bytes != w.bytes || r.Encoding != w.encoding || r.Size <= 0 && w.bytes > 0 {
				t.Errorf("%q: result %+v, want key %q, lines %d, bytes %d, encoding %s", key, r, key, w.lines, w.bytes, w.encoding)
			}
			if r.MessageID == "" || r.ETag == "" || r.ProcessedAt.IsZero() {
				t.Errorf("%q: result lacks message id, etag or time: %+v", key, r)
			}
		}
		// Nothing was written outside the output directory, and nothing but results inside it.
		files := 0
		filepath.WalkDir(e.out, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files++
				if !strings.HasSuffix(path, ".json") {
					t.Errorf("unexpected file %s", path)
				}
			}
			return nil
		})
		if files != len(wants) {
			t.Errorf("%d files under --out, want %d", files, len(wants))
		}
		// At least once: a message SQS delivers twice is processed twice (into the same file).
		if sum.Objects < int64(len(wants)) || sum.Objects > int64(len(wants))+2 {
			t.Errorf("summary counts %d objects, want %d", sum.Objects, len(wants))
		}
		if !sum.OK() || sum.Distinct.Released != 0 || sum.Distinct.Succeeded < 1 || sum.Distinct.Succeeded > sum.Messages {
			t.Errorf("summary %+v: want every distinct message succeeded", sum)
		}
		if v, f := e.queueCounts(t, e.queue.URL); v != "0" || f != "0" {
			t.Errorf("queue left with %s visible, %s in flight", v, f)
		}
	})
}

// s3Notification is an S3 notification body naming several objects of one bucket.
func s3Notification(bucket string, keys ...string) string {
	var recs []string
	for i, k := range keys {
		recs = append(recs, fmt.Sprintf(`{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
			"s3":{"bucket":{"name":%q},"object":{"key":%q,"size":1,"eTag":"x","sequencer":"%016X"}}}`, bucket, k, i+1))
	}
	return `{"Records":[` + strings.Join(recs, ",") + `]}`
}

func (e *env) send(t *testing.T, body string) {
	t.Helper()
	if _, err := e.sqs.SendMessage(t.Context(), &awssqs.SendMessageInput{QueueUrl: &e.queue.URL, MessageBody: &body}); err != nil {
		t.Fatal(err)
	}
}

// drainNotifications removes what the bucket's own notifications put in the queue, so a
// test can send hand-made ones.
func (e *env) purge(t *testing.T) {
	t.Helper()
	if _, err := e.sqs.PurgeQueue(t.Context(), &awssqs.PurgeQueueInput{QueueUrl: &e.queue.URL}); err != nil {
		t.Fatal(err)
	}
}

// deadLetterBodies returns the bodies of the messages in the dead-letter queue, waiting up to
// 5 s for the first want of them: SQS moves a message when a receive finds it past the
// redrive policy's count, and a drain that saw the source queue empty may end before the move
// shows in the dead-letter queue (moto, under load, takes its time too).
func (e *env) deadLetterBodies(t *testing.T, want int) []string {
	t.Helper()
	var bodies []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		var wait int32
		if len(bodies) < want && time.Now().Before(deadline) {
			wait = 1
		}
		out, err := e.sqs.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{QueueUrl: &e.queue.DeadLetter.URL,
			MaxNumberOfMessages: 10, VisibilityTimeout: 60, WaitTimeSeconds: wait})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) == 0 && wait == 0 {
			return bodies
		}
		for _, m := range out.Messages {
			bodies = append(bodies, aws.ToString(m.Body))
		}
	}
}

func TestMissingObjectFailsThenDeadLetters(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 2)
		e.put(t, "here-1", []byte("a\nb\n"))
		e.put(t, "here-2", []byte("c\n"))
		e.purge(t)
		e.send(t, s3Notification(e.bucket, "here-1", "gone", "here-2"))
		var logs syncBuffer
		sum := e.run(t, func(c *app.Config) {
			c.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo}))
		})
		// Two deliveries, one distinct message, failed for its missing object.
		want := app.Tally{Failures: []app.FailureCount{{Outcome: "failed", Reason: "object not found", N: 1}}}
		if !reflect.DeepEqual(sum.Distinct, want) || sum.OK() || sum.Messages != 2 {
			t.Errorf("summary %+v, want distinct %+v from 2 deliveries", sum, want)
		}
		// Each failure is logged once, with its attempt and what happens next.
		log := logs.String()
		for _, want := range []string{"attempt=1 ", "attempt=2 "} {
			if n := strings.Count(log, "msg=\"message failed\""); n != 2 || !strings.Contains(log, want) {
				t.Errorf("log has %d \"message failed\" records, want 2 with %s:\n%s", n, want, log)
			}
		}
		if !strings.Contains(log, `next="retried within`) || strings.Contains(log, "failed 1") {
			t.Errorf("failure log lacks what happens next, or repeats the runtime's count:\n%s", log)
		}
		// The objects that exist were processed; the message failed for the missing one and
		// went to the dead-letter queue after the redrive count.
		for _, k := range []string{"here-1", "here-2"} {
			if _, ok := e.result(t, k); !ok {
				t.Errorf("%s: no result", k)
			}
		}
		if dl := e.deadLetterBodies(t, 1); len(dl) != 1 || !strings.Contains(dl[0], `"gone"`) {
			t.Fatalf("dead-letter queue holds %q, want the message naming the missing object", dl)
		}
	})
}

func TestMissingObjectSkipped(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 2)
		e.put(t, "here", []byte("a\n"))
		e.purge(t)
		e.send(t, s3Notification(e.bucket, "gone", "here"))
		e.run(t, func(c *app.Config) { c.OnMissing = app.OnMissingSkip })
		if _, ok := e.result(t, "here"); !ok {
			t.Error("the existing object was not processed")
		}
		if dl := e.deadLetterBodies(t, 0); len(dl) != 0 {
			t.Fatalf("dead-letter queue holds %q, want nothing under --on-missing=skip", dl)
		}
		if v, f := e.queueCounts(t, e.queue.URL); v != "0" || f != "0" {
			t.Errorf("queue left with %s visible, %s in flight", v, f)
		}
	})
}

func TestCorruptFileGoesToDeadLetterQueue(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 2)
		good := gz(lines(1000, "good"))
		e.put(t, "good.gz", good)
		e.put(t, "corrupt.gz", good[:len(good)/2])
		sum := e.run(t)
		// The test event and good.gz succeeded; corrupt.gz failed on each delivery.
		want := app.Tally{Succeeded: 2, Failures: []app.FailureCount{{Outcome: "failed", Reason: "corrupt content", N: 1}}}
		if !reflect.DeepEqual(sum.Distinct, want) || sum.OK() {
			t.Errorf("summary %+v, want distinct %+v", sum, want)
		}
		if s := sum.String(); !strings.Contains(s, "3 messages (2 succeeded, 1 failed (1 corrupt content))") {
			t.Errorf("summary line %q does not count the messages by outcome and reason", s)
		}
		if _, ok := e.result(t, "corrupt.gz"); ok {
			t.Error("a result file was written for a corrupt object")
		}
		if r, ok := e.result(t, "good.gz"); !ok || r.Lines != 1000 {
			t.Errorf("good.gz: %+v, %v", r, ok)
		}
		dl := e.deadLetterBodies(t, 1)
		if len(dl) != 1 || !strings.Contains(dl[0], "corrupt.gz") {
			t.Fatalf("dead-letter queue holds %q, want the corrupt object's notification", dl)
		}
	})
}

// TestRedriveLookupDoesNotHoldTheFirstReceive checks that a run reads its queue's redrive
// policy beside the pipeline, not before it: the proxy holds the lookup's GetQueueUrl until a
// message has been processed and deleted, which cannot happen if the first receive waits for
// it.
func TestRedriveLookupDoesNotHoldTheFirstReceive(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 2)
		e.put(t, "a.gz", gz(lines(10, "a")))
		processed := make(chan struct{})
		var once sync.Once
		held := make(chan bool, 1)
		proxy := local.StartProxyT(t, local.ProxyConfig{Target: bk.URL, Observe: func(action string, _, _ []byte) {
			switch action {
			case "DeleteMessageBatch":
				once.Do(func() { close(processed) })
			case "GetQueueUrl":
				bound := time.NewTimer(30 * time.Second) // the bound of a failing test, not a timing
				defer bound.Stop()
				select {
				case <-processed:
					held <- true
				case <-bound.C:
					held <- false
				}
			}
		}})
		e.run(t, func(c *app.Config) { c.AWS = ptr(bk.Config(proxy.URL())) })
		if r, ok := e.result(t, "a.gz"); !ok || r.Lines != 10 {
			t.Fatalf("a.gz: %+v, %v", r, ok)
		}
		select {
		case ok := <-held:
			if !ok {
				t.Fatal("no message was deleted while the redrive policy's lookup waited: the run waited for it")
			}
		default:
			t.Fatal("the run did not look up its queue's dead-letter queue: the test proves nothing")
		}
	})
}

func TestMalformedMessageMovedToDLQAtOnce(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 5)
		e.purge(t)
		e.send(t, `{"not":"a notification"}`)
		e.send(t, `definitely not json`)
		sum := e.run(t, func(c *app.Config) {
			c.DLQURL = e.queue.DeadLetter.URL
			c.RetryDelay = time.Minute
			c.MaxDelay = time.Minute
		})
		want := app.Tally{Failures: []app.FailureCount{{Outcome: "dead-lettered", Reason: "not an S3 notification", N: 2}}}
		if !reflect.DeepEqual(sum.Distinct, want) || sum.OK() {
			t.Errorf("summary %+v, want distinct %+v", sum, want)
		}
		// With a one-minute retry delay, only a move at once can have emptied the queue.
		dl := e.deadLetterBodies(t, 2)
		if len(dl) != 2 {
			t.Fatalf("dead-letter queue holds %q, want both malformed messages", dl)
		}
	})
}

func TestSameEventTwiceGivesOneIdenticalFile(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 3)
		e.put(t, "twice.log", lines(42, "x"))
		e.run(t)
		path := filepath.Join(e.out, output.RelPath(e.bucket, "twice.log"))
		first, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var r output.Result
		if err := json.Unmarshal(first, &r); err != nil || r.Lines != 42 {
			t.Fatalf("first result %s: %v", first, err)
		}
		// Deliver the same notification again, as SQS may.
		body := fmt.Sprintf(`{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
		"s3":{"bucket":{"name":%q},"object":{"key":"twice.log","size":%d,"eTag":%q,"sequencer":%q}}}]}`,
			e.bucket, r.Size, r.ETag, r.Sequencer)
		e.send(t, body)
		e.send(t, body)
		e.run(t)
		again, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("result changed on redelivery:\n%s\n%s", first, again)
		}
	})
}

// A large object is counted correctly while memory stays far below its size: 256 MiB of
// content here; `go run ./bench/cmd/largeobject -mib 2048` runs the same check at 2 GiB.
// spoolMemForTest is the default; setting it above the object's size must fail the test.
var spoolMemForTest int64 = 0

func TestLargeObjectBoundedMemory(t *testing.T) {
	size := 256 << 20
	if testing.Short() {
		size = 8 << 20
	}
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 3)
		// Random hex lines do not compress, so the stored object is as large as its content: the
		// spool must put it on disk, and nothing may hold the decompressed content. A block of
		// them is repeated (generating all of it would take longer than the run), in a gzip
		// stream of stored blocks, written to a file so that the test does not hold it either.
		rng := rand.New(rand.NewPCG(1, 2))
		var block bytes.Buffer
		var blockLines int64
		word := make([]byte, 8)
		for block.Len() < 1<<20-200 {
			for range 8 {
				binary.LittleEndian.PutUint64(word, rng.Uint64())
				block.WriteString(hex.EncodeToString(word))
			}
			block.WriteByte('\n')
			blockLines++
		}
		copies := size / block.Len()
		wantLines, wantBytes := int64(copies)*blockLines, int64(copies*block.Len())
		f, err := os.Create(filepath.Join(t.TempDir(), "large.log.gz"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zw, _ := gzip.NewWriterLevel(f, gzip.NoCompression)
		for range copies {
			zw.Write(block.Bytes())
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		stored, _ := f.Seek(0, io.SeekCurrent)
		f.Seek(0, io.SeekStart)
		if _, err := e.s3.PutObject(t.Context(), &s3.PutObjectInput{
			Bucket: aws.String(e.bucket), Key: aws.String("large.log.gz"), Body: f, ContentLength: aws.Int64(stored),
		}); err != nil {
			t.Fatal(err)
		}
		block = bytes.Buffer{}
		runtime.GC()

		var peak atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			var ms runtime.MemStats
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
				}
			}
		})
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		e.run(t, func(c *app.Config) { c.SpoolMem = spoolMemForTest })
		close(stop)
		wg.Wait()
		r, ok := e.result(t, "large.log.gz")
		if !ok || r.Lines != wantLines || r.Bytes != wantBytes {
			t.Fatalf("large object: %+v, want %d lines, %d bytes", r, wantLines, wantBytes)
		}
		grew := int64(peak.Load()) - int64(before.HeapInuse)
		t.Logf("content %d MiB, stored %d MiB, heap in use %d MiB before, %d MiB at most during the run", wantBytes>>20, stored>>20, before.HeapInuse>>20, peak.Load()>>20)
		// The spool keeps at most 8 MiB in memory; decoders and buffers add a few more.
		if grew > 32<<20 {
			t.Fatalf("heap grew by %d MiB for %d MiB of content: the object is being buffered", grew>>20, wantBytes>>20)
		}
	})
}

// TestRunSweepsCrashLeftovers checks that a run removes the temporary files that a crashed
// run left in --out (its output.OpenMarker stayed), but only those old enough to belong to no
// write, and keeps the marker while a young one is left; and that after a run that closed,
// the next one does not walk --out at all.
func TestRunSweepsCrashLeftovers(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		e := newEnv(t, bk, 2)
		e.put(t, "a.log", []byte("a\n"))
		dir := filepath.Join(e.out, e.bucket)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		marker := filepath.Join(e.out, output.OpenMarker)
		old, fresh := filepath.Join(dir, ".palleto-old.tmp"), filepath.Join(dir, ".palleto-fresh.tmp")
		for _, p := range []string{old, fresh, marker} {
			if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// The crash was a second ago, and left a file of an hour ago too.
		long, recent := time.Now().Add(-time.Hour), time.Now().Add(-time.Second)
		if err := os.Chtimes(old, long, long); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(fresh, recent, recent); err != nil {
			t.Fatal(err)
		}
		e.run(t)
		if _, ok := e.result(t, "a.log"); !ok {
			t.Fatal("the object was not processed")
		}
		if _, err := os.Stat(old); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the crash's leftover is still there (%v)", err)
		}
		if _, err := os.Stat(fresh); err != nil {
			t.Errorf("a fresh temporary file was removed: %v", err)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("the marker is gone while a leftover is not: %v", err)
		}

		// The fresh one ages; the next run removes it, and closes clean.
		if err := os.Chtimes(fresh, long, long); err != nil {
			t.Fatal(err)
		}
		e.run(t)
		if _, err := os.Stat(fresh); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the second leftover is still there (%v)", err)
		}
		if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the marker stayed after a run that swept all and closed (%v)", err)
		}

		// After a clean close, a run does not sweep: a file put there by hand stays.
		if err := os.WriteFile(old, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(old, long, long); err != nil {
			t.Fatal(err)
		}
		e.run(t)
		if _, err := os.Stat(old); err != nil {
			t.Errorf("a run after a clean close swept --out: %v", err)
		}
	})
}

// TestRunTrustsTheCABundle runs against SQS and S3 served over TLS with a certificate that
// only the CA bundle named by AWS_CA_BUNDLE vouches for, as behind a company's proxy or in
// front of an S3-compatible store: both clients of the run must trust that bundle. Without
// it, the start-up check must refuse the endpoint and name the certificate.
func TestRunTrustsTheCABundle(t *testing.T) {
	bk := awstest.Local(t)
	e := newEnv(t, bk, 3)
	e.put(t, "a.log", lines(3, "a"))
	target, err := url.Parse(bk.URL)
	if err != nil {
		t.Fatal(err)
	}
	toBackend := &http.Transport{}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = toBackend
	front := httptest.NewUnstartedServer(proxy)
	front.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes of the first run
	front.StartTLS()
	t.Cleanup(toBackend.CloseIdleConnections)
	t.Cleanup(front.Close)
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": front.URL, "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_PROFILE": "", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
		"AWS_ENDPOINT_URL_SQS": "", "AWS_ENDPOINT_URL_S3": "", "AWS_CA_BUNDLE": "",
	} {
		t.Setenv(k, v)
	}
	fromEnv := func(c *app.Config) { c.AWS = nil }

	_, err = app.Run(t.Context(), e.config(fromEnv))
	var ce *app.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("run without the bundle: %v, want a configuration error naming the certificate", err)
	}

	t.Setenv("AWS_CA_BUNDLE", bundle)
	e.run(t, fromEnv)
	if r, ok := e.result(t, "a.log"); !ok || r.Lines != 3 {
		t.Fatalf("result of a.log over TLS: %+v, %v; want 3 lines", r, ok)
	}
	if v, f := e.queueCounts(t, e.queue.URL); v != "0" || f != "0" {
		t.Errorf("queue left with %s visible, %s in flight: the delete did not go through", v, f)
	}
}

// TestRunFindsS3EndpointOfProfile runs with the S3 endpoint named only in the shared
// configuration file, in the profile's services section, as the SDK documents: S3 must be
// addressed path-style there, as with AWS_ENDPOINT_URL_S3 (a bucket's name is no host name of
// a custom endpoint).
func TestRunFindsS3EndpointOfProfile(t *testing.T) {
	bk := awstest.Local(t)
	e := newEnv(t, bk, 3)
	e.put(t, "a.log", lines(3, "a"))
	config := filepath.Join(t.TempDir(), "config")
	profile := fmt.Sprintf("[profile palleto]\nregion = us-east-1\nservices = local\n\n[services local]\ns3 =\n  endpoint_url = %s\n", strings.Replace(bk.URL, "127.0.0.1", "localhost", 1))
	if err := os.WriteFile(config, []byte(profile), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": config, "AWS_PROFILE": "palleto", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
		"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "", "AWS_CA_BUNDLE": "",
		"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": "", "AWS_ENDPOINT_URL_SQS": bk.URL,
	} {
		t.Setenv(k, v)
	}
	// Unset, not empty: the SDK takes an empty AWS_ENDPOINT_URL for a configured one, and then
	// reads no service's endpoint from the file.
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION"} {
		os.Unsetenv(k)
	}
	sum := e.run(t, func(c *app.Config) { c.AWS = nil; c.MaxFaultTime = 5 * time.Second })
	if r, ok := e.result(t, "a.log"); !ok || r.Lines != 3 || sum.Objects != 1 {
		t.Fatalf("result of a.log: %+v, %v (summary %+v); want 3 lines", r, ok, sum)
	}
}
