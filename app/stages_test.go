package app

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/object"
	"github.com/palleto/palleto/output"
	"github.com/palleto/palleto/s3event"
)

// fakeS3 is an object getter over a map of keys to contents: the stages' unit tests need no
// S3 server. While denied is set, every request is refused as S3 refuses credentials that
// lost their access.
type fakeS3 struct {
	objects map[string][]byte
	denied  atomic.Bool
	calls   atomic.Int64
}

func newFakeS3(objects map[string][]byte) *fakeS3 { return &fakeS3{objects: objects} }

func (f *fakeS3) GetObject(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.calls.Add(1)
	if f.denied.Load() {
		return nil, &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject",
			Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}}
	}
	b, ok := f.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, &s3types.NoSuchKey{Message: aws.String("The specified key does not exist.")}
	}
	if r := aws.ToString(in.Range); r != "" {
		var from int
		if _, err := fmt.Sscanf(r, "bytes=%d-", &from); err != nil || from > len(b) {
			return nil, fmt.Errorf("fakeS3: range %q of %d bytes", r, len(b))
		}
		b = b[from:]
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b)), ContentLength: aws.Int64(int64(len(b))), ETag: aws.String(`"e"`)}, nil
}

func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz.Bytes()
}

// TestStagesWithAFakeGetter: fetch, analyse and write an object spooled in memory and one
// spooled in a file; a missing object fails, or is skipped under the skip policy.
func TestStagesWithAFakeGetter(t *testing.T) {
	gz := gzipped(t, "a\nb\nc\n")
	out, err := output.NewWriter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for _, memLimit := range []int64{1 << 20, 0} {
		st := &stages{s3: newFakeS3(map[string][]byte{"k.gz": gz}), out: out, spoolDir: t.TempDir(),
			memLimit: memLimit, onMissing: OnMissingFail, log: slog.New(slog.DiscardHandler)}
		job := objectJob{MessageID: "m1", Obj: s3event.Object{Bucket: "b", Key: "k.gz", Sequencer: "01"}}
		files, err := st.fetch(t.Context(), job)
		if err != nil || len(files) != 1 {
			t.Fatalf("memLimit %d: fetch = %v, %v", memLimit, files, err)
		}
		if spooledInFile := files[0].file != nil; spooledInFile != (memLimit == 0) {
			t.Errorf("memLimit %d: spooled in a file: %v", memLimit, spooledInFile)
		}
		r, err := st.analyse(t.Context(), files[0])
		if err != nil || r.Lines != 3 || r.Bytes != 6 || r.Encoding != "gzip" || r.ETag != "e" {
			t.Fatalf("memLimit %d: analyse = %+v, %v; want 3 lines, 6 bytes, gzip, etag e", memLimit, r, err)
		}
		if err := st.write(t.Context(), r); err != nil {
			t.Fatal(err)
		}
		if got, err := output.Read(out.Path("b", "k.gz")); err != nil || got.Lines != 3 || got.MessageID != "m1" {
			t.Fatalf("result file: %+v, %v", got, err)
		}

		gone := objectJob{MessageID: "m2", Obj: s3event.Object{Bucket: "b", Key: "gone"}}
		if _, err := st.fetch(t.Context(), gone); !errors.Is(err, object.ErrNotFound) {
			t.Errorf("missing object under fail: %v, want object.ErrNotFound", err)
		}
		st.onMissing = OnMissingSkip
		if files, err := st.fetch(t.Context(), gone); err != nil || len(files) != 0 {
			t.Errorf("missing object under skip: %v, %v; want nothing and no error", files, err)
		}
	}
}

// A corrupt object fails at the analysis as the object's fault: no result file, and nothing
// that would pause intake.
func TestStagesCorruptObject(t *testing.T) {
	gz := gzipped(t, strings.Repeat("a line of text\n", 1000))
	corrupt := slices.Clone(gz)
	for i := 20; i < len(corrupt)-8; i++ {
		corrupt[i] ^= 0x5a // the gzip header stays, the deflate stream is garbage
	}
	out, err := output.NewWriter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	st := &stages{s3: newFakeS3(map[string][]byte{"bad.gz": corrupt}), out: out, memLimit: 1 << 20,
		onMissing: OnMissingFail, log: slog.New(slog.DiscardHandler)}
	files, err := st.fetch(t.Context(), objectJob{MessageID: "m1", Obj: s3event.Object{Bucket: "b", Key: "bad.gz"}})
	if err != nil || len(files) != 1 {
		t.Fatalf("fetch of a corrupt object = %v, %v; want its content (only the analysis can tell)", files, err)
	}
	r, err := st.analyse(t.Context(), files[0])
	if !errors.Is(err, object.ErrCorrupt) {
		t.Fatalf("analyse of a corrupt object = %+v, %v; want object.ErrCorrupt", r, err)
	}
	if oe, ok := errors.AsType[*ObjectError](err); !ok || oe.Stage != "analyse" || oe.Key != "bad.gz" {
		t.Errorf("analyse error %v: want an ObjectError of the analyse stage naming the key", err)
	}
	if _, env := errors.AsType[*envFault](err); env {
		t.Errorf("a corrupt object is classified as a fault of the environment: %v", err)
	}
	if g := newGate(slog.New(slog.DiscardHandler), DefaultMaxFaultTime, func(error) {}); g.report(err) {
		t.Error("the gate paused intake for a corrupt object")
	}
	if got := outcomeOf(flow.Result{Status: flow.Failed, Err: err}); got.reason != "corrupt content" {
		t.Errorf("the summary's reason for a corrupt object: %q, want corrupt content", got.reason)
	}
	if _, err := output.Read(out.Path("b", "bad.gz")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a result file for a corrupt object: %v", err)
	}
}

// S3 refusing the run's credentials is the environment's fault, not the object's: the fetch
// fails with an envFault whose probe fails while the refusal lasts and succeeds once S3
// answers again, and the gate pauses intake for it. A missing object is not.
func TestStagesEnvironmentFault(t *testing.T) {
	fake := newFakeS3(map[string][]byte{"k": []byte("one\ntwo\n")})
	st := &stages{s3: fake, memLimit: 1 << 20, onMissing: OnMissingFail, log: slog.New(slog.DiscardHandler)}
	job := objectJob{MessageID: "m1", Obj: s3event.Object{Bucket: "b", Key: "k"}}
	fake.denied.Store(true)
	_, err := st.fetch(t.Context(), job)
	f, ok := errors.AsType[*envFault](err)
	if !ok {
		t.Fatalf("fetch refused by S3 = %v; want a fault of the environment", err)
	}
	if oe, ok := errors.AsType[*ObjectError](err); !ok || oe.Stage != "fetch" || oe.Key != "k" {
		t.Errorf("fetch error %v: want an ObjectError of the fetch stage naming the key", err)
	}
	if perr := f.probe(t.Context()); perr == nil {
		t.Error("the probe succeeded while S3 still refuses")
	}
	fake.denied.Store(false)
	before := fake.calls.Load()
	if perr := f.probe(t.Context()); perr != nil {
		t.Errorf("the probe failed once S3 answers again: %v", perr)
	}
	if fake.calls.Load() == before {
		t.Error("the probe did not ask S3")
	}
	g := newGate(slog.New(slog.DiscardHandler), DefaultMaxFaultTime, func(error) {})
	if !g.report(err) {
		t.Error("the gate did not pause intake for S3 refusing the credentials")
	}
	if ok, _ := g.Health(); ok {
		t.Error("healthy while intake is paused by a fault of the environment")
	}

	_, err = st.fetch(t.Context(), objectJob{MessageID: "m2", Obj: s3event.Object{Bucket: "b", Key: "gone"}})
	if _, env := errors.AsType[*envFault](err); env || !errors.Is(err, object.ErrNotFound) {
		t.Errorf("fetch of a missing object = %v; want object.ErrNotFound, the message's fault", err)
	}
}
