package object

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// fakeS3 serves GetObject from memory, with ranges and If-Match as S3
// does, and lets a test damage the bodies it hands out.
type fakeS3 struct {
	bucket      string
	ignoreRange bool

	mu      sync.Mutex
	objects map[string]fakeObject
	gets    []s3.GetObjectInput
	// body, if set, wraps the body of the n-th GetObject call (from 0).
	body func(n int, r io.Reader) io.Reader
}

type fakeObject struct {
	data      []byte
	etag      string // quoted, as S3 sends it
	versionID string
}

func newFakeS3(bucket string) *fakeS3 {
	return &fakeS3{bucket: bucket, objects: map[string]fakeObject{}}
}

func (f *fakeS3) put(key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objects[key] = fakeObject{
		data:      data,
		etag:      fmt.Sprintf(`"etag-%d-%d"`, len(f.objects), len(data)),
		versionID: fmt.Sprintf("v%d", len(f.gets)),
	}
}

func (f *fakeS3) requests() []s3.GetObjectInput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]s3.GetObjectInput(nil), f.gets...)
}

func (f *fakeS3) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.gets)
	f.gets = append(f.gets, *in)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if aws.ToString(in.Bucket) != f.bucket {
		return nil, &types.NoSuchBucket{}
	}
	obj, ok := f.objects[aws.ToString(in.Key)]
	if !ok {
		return nil, &types.NoSuchKey{}
	}
	if in.IfMatch != nil && *in.IfMatch != obj.etag {
		return nil, &smithy.GenericAPIError{Code: "PreconditionFailed", Message: "At least one of the pre-conditions you specified did not hold"}
	}
	out := &s3.GetObjectOutput{
		ETag:          aws.String(obj.etag),
		VersionId:     aws.String(obj.versionID),
		ContentLength: aws.Int64(int64(len(obj.data))),
	}
	data := obj.data
	if r := aws.ToString(in.Range); r != "" && !f.ignoreRange {
		from, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(r, "bytes="), "-"), 10, 64)
		if err != nil || from >= int64(len(data)) {
			return nil, &smithy.GenericAPIError{Code: "InvalidRange"}
		}
		data = data[from:]
		out.ContentLength = aws.Int64(int64(len(data)))
		out.ContentRange = aws.String(fmt.Sprintf("bytes %d-%d/%d", from, len(obj.data)-1, len(obj.data)))
	}
	var body io.Reader = bytes.NewReader(data)
	if f.body != nil {
		body = f.body(n, body)
	}
	out.Body = io.NopCloser(body)
	return out, nil
}

// dropAfter is a body that fails like a reset connection after n bytes.
type dropAfter struct {
	r   io.Reader
	n   int64
	err error // io.EOF for a connection closed early without an error
}

var errReset = errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: connection reset by peer")

func (d *dropAfter) Read(p []byte) (int, error) {
	if d.n <= 0 {
		return 0, d.err
	}
	if int64(len(p)) > d.n {
		p = p[:d.n]
	}
	n, err := d.r.Read(p)
	d.n -= int64(n)
	return n, err
}

func TestAnalyzeSniffsContentNotName(t *testing.T) {
	lines := fixture(t, "lines.txt")
	f := newFakeS3("b")
	f.put("looks/compressed.gz", lines)
	f.put("looks/plain.txt", gz(t, lines))
	f.put("no-extension", zs(t, lines))
	f.put("archive.zst", fixture(t, "lines.bz2"))
	want := map[string]Encoding{
		"looks/compressed.gz": None,
		"looks/plain.txt":     Gzip,
		"no-extension":        Zstd,
		"archive.zst":         Bzip2,
	}
	for key, enc := range want {
		_, st, err := Analyze(t.Context(), f, "b", key, "")
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if st != (Stats{Encoding: enc, Bytes: int64(len(lines)), Lines: newlines(lines)}) {
			t.Errorf("%s: %+v, want %s with %d bytes, %d lines", key, st, enc, len(lines), newlines(lines))
		}
	}
}

func TestAnalyzeInfo(t *testing.T) {
	f := newFakeS3("bucket")
	data := gz(t, []byte("a\nb\n"))
	f.put("dir/key name.gz", data)
	info, st, err := Analyze(t.Context(), f, "bucket", "dir/key name.gz", "")
	if err != nil {
		t.Fatal(err)
	}
	obj := f.objects["dir/key name.gz"]
	want := Info{Bucket: "bucket", Key: "dir/key name.gz", VersionID: obj.versionID, ETag: strings.Trim(obj.etag, `"`), Size: int64(len(data))}
	if info != want {
		t.Errorf("Info = %+v, want %+v", info, want)
	}
	if st != (Stats{Encoding: Gzip, Bytes: 4, Lines: 2}) {
		t.Errorf("Stats = %+v", st)
	}
	if got := f.requests(); len(got) != 1 || got[0].VersionId != nil || got[0].Range != nil {
		t.Errorf("requests = %+v, want one plain GetObject", got)
	}

	if _, _, err := Analyze(t.Context(), f, "bucket", "dir/key name.gz", "v-pinned"); err != nil {
		t.Fatal(err)
	}
	if got := f.requests(); aws.ToString(got[len(got)-1].VersionId) != "v-pinned" {
		t.Errorf("VersionId asked = %q, want v-pinned", aws.ToString(got[len(got)-1].VersionId))
	}
}

func TestAnalyzeCorrupt(t *testing.T) {
	f := newFakeS3("b")
	src := gz(t, fixture(t, "lines.txt"))
	f.put("cut.gz", src[:len(src)-10])
	_, st, err := Analyze(t.Context(), f, "b", "cut.gz", "")
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if st != (Stats{Encoding: Gzip}) {
		t.Errorf("Stats = %+v, want the encoding and no count", st)
	}
}

func TestOpenNotFound(t *testing.T) {
	notFound := []error{
		&types.NoSuchKey{},
		&types.NoSuchBucket{},
		&smithy.GenericAPIError{Code: "NoSuchVersion"},
		&smithy.GenericAPIError{Code: "NoSuchBucket"},
		&awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 404}},
			Err:      errors.New("not found"),
		}},
	}
	other := []error{
		&smithy.GenericAPIError{Code: "AccessDenied"},
		&awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 503}},
			Err:      errors.New("NoSuchKey"), // the text must not matter
		}},
		context.DeadlineExceeded,
	}
	for _, cause := range append(notFound, other...) {
		g := GetterFunc(func(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
			return nil, &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: cause}
		})
		_, _, err := Analyze(t.Context(), g, "b", "k", "")
		wantNotFound := !contains(other, cause)
		if errors.Is(err, ErrNotFound) != wantNotFound {
			t.Errorf("%T %v: errors.Is(err, ErrNotFound) = %v, want %v", cause, err, !wantNotFound, wantNotFound)
		}
		if !errors.Is(err, cause) {
			t.Errorf("%v does not wrap its cause", err)
		}
	}
}

func contains(errs []error, err error) bool {
	for _, e := range errs {
		if e == err {
			return true
		}
	}
	return false
}

func TestResume(t *testing.T) {
	lines := fixture(t, "lines.txt")
	src := gz(t, lines)
	tests := []struct {
		name string
		drop map[int]*dropAfter // by request number
	}{
		{"reset mid-body", map[int]*dropAfter{0: {n: 12345, err: errReset}}},
		{"reset before the first byte", map[int]*dropAfter{0: {n: 0, err: errReset}}},
		{"closed early without error", map[int]*dropAfter{0: {n: 20000, err: io.EOF}}},
		{"reset again after progress", map[int]*dropAfter{
			0: {n: 100, err: errReset},
			1: {n: 0, err: errReset},
			2: {n: 0, err: errReset},
			3: {n: 3000, err: errReset},
			4: {n: 0, err: errReset},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeS3("b")
			f.put("k.gz", src)
			f.body = func(n int, r io.Reader) io.Reader {
				if d := tt.drop[n]; d != nil {
					return &dropAfter{r: r, n: d.n, err: d.err}
				}
				return r
			}
			info, st, err := Analyze(t.Context(), f, "b", "k.gz", "")
			if err != nil {
				t.Fatal(err)
			}
			if st != (Stats{Encoding: Gzip, Bytes: int64(len(lines)), Lines: newlines(lines)}) {
				t.Errorf("Stats = %+v", st)
			}
			// Each resume starts where the previous bodies stopped, on the
			// same version and ETag.
			reqs := f.requests()
			if len(reqs) != len(tt.drop)+1 {
				t.Fatalf("%d requests, want %d", len(reqs), len(tt.drop)+1)
			}
			var off int64
			for i, r := range reqs[1:] {
				off += tt.drop[i].n
				if got, want := aws.ToString(r.Range), fmt.Sprintf("bytes=%d-", off); got != want {
					t.Errorf("request %d: Range %q, want %q", i+1, got, want)
				}
				if got := aws.ToString(r.IfMatch); got != `"`+info.ETag+`"` {
					t.Errorf("request %d: If-Match %q, want the ETag %q", i+1, got, info.ETag)
				}
				if got := aws.ToString(r.VersionId); got != info.VersionID {
					t.Errorf("request %d: VersionId %q, want %q", i+1, got, info.VersionID)
				}
			}
		})
	}
}

func TestResumeGivesUp(t *testing.T) {
	f := newFakeS3("b")
	f.put("k.gz", gz(t, fixture(t, "lines.txt")))
	f.body = func(n int, r io.Reader) io.Reader {
		if n == 0 {
			return &dropAfter{r: r, n: 1000, err: errReset}
		}
		return &dropAfter{r: r, n: 0, err: errReset}
	}
	_, _, err := Analyze(t.Context(), f, "b", "k.gz", "")
	if !errors.Is(err, errReset) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want the connection's error and not ErrCorrupt", err)
	}
	if got := len(f.requests()); got != 1+maxResumes {
		t.Errorf("%d requests, want %d", got, 1+maxResumes)
	}
}

func TestResumeObjectReplaced(t *testing.T) {
	lines := fixture(t, "lines.txt")
	f := newFakeS3("b")
	f.put("k.gz", gz(t, lines))
	f.body = func(n int, r io.Reader) io.Reader {
		if n == 0 {
			return &dropAfter{r: r, n: 1000, err: errReset}
		}
		return r
	}
	rc, _, err := Open(t.Context(), f, "b", "k.gz", "")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	head := make([]byte, 1000)
	if _, err := io.ReadFull(rc, head); err != nil {
		t.Fatal(err)
	}
	f.put("k.gz", gz(t, lines[:len(lines)/2])) // a new version, new ETag
	_, err = rc.Read(make([]byte, 100))
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("err = %v, want ErrChanged", err)
	}
}

func TestResumeRangeIgnored(t *testing.T) {
	f := newFakeS3("b")
	f.ignoreRange = true
	f.put("k.gz", gz(t, fixture(t, "lines.txt")))
	f.body = func(n int, r io.Reader) io.Reader {
		if n == 0 {
			return &dropAfter{r: r, n: 1000, err: errReset}
		}
		return r
	}
	_, _, err := Analyze(t.Context(), f, "b", "k.gz", "")
	if err == nil || errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want a failure that is not ErrCorrupt", err)
	}
	if got := len(f.requests()); got != 2 {
		t.Errorf("%d requests, want 2", got)
	}
}

func TestNoResumeAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	f := newFakeS3("b")
	f.put("k.gz", gz(t, fixture(t, "lines.txt")))
	f.body = func(n int, r io.Reader) io.Reader {
		return readFunc(func(p []byte) (int, error) {
			cancel()
			return 0, context.Canceled
		})
	}
	_, _, err := Analyze(ctx, f, "b", "k.gz", "")
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if got := len(f.requests()); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

type readFunc func([]byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

func TestBodyReadAfterClose(t *testing.T) {
	f := newFakeS3("b")
	f.put("k", []byte("hello\n"))
	rc, _, err := Open(t.Context(), f, "b", "k", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Read(make([]byte, 10)); err == nil {
		t.Fatal("Read after Close succeeded")
	}
	if got := len(f.requests()); got != 1 {
		t.Errorf("%d requests, want 1: a closed body must not be resumed", got)
	}
}

// repeated is n copies of b, read without ever holding them together.
type repeated struct {
	b    []byte
	n    int
	pos  int
	done int
}

func (r *repeated) Read(p []byte) (int, error) {
	if r.done == r.n {
		return 0, io.EOF
	}
	m := copy(p, r.b[r.pos:])
	r.pos += m
	if r.pos == len(r.b) {
		r.pos = 0
		r.done++
	}
	return m, nil
}

// Analyze must not hold an object in memory: what it allocates for four
// times the content grows by far less than the extra content. Collection
// is off while measuring, so that the decoder pools stay as they are.
func TestAnalyzeMemoryBounded(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	lines := fixture(t, "lines.txt")
	tests := []struct {
		member []byte
		small  int // copies of lines in the smaller object
	}{
		{lines, 10},
		{gz(t, lines), 10},
		{zs(t, lines), 10},
		{fixture(t, "lines.bz2"), 2},
	}
	for _, tt := range tests {
		allocated := func(copies int) int64 {
			g := GetterFunc(func(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
				return &s3.GetObjectOutput{
					Body:          io.NopCloser(&repeated{b: tt.member, n: copies}),
					ContentLength: aws.Int64(int64(copies * len(tt.member))),
				}, nil
			})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, st, err := Analyze(t.Context(), g, "b", "k", "")
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			if st.Bytes != int64(copies*len(lines)) || st.Lines != int64(copies)*newlines(lines) {
				t.Fatalf("%s: %+v for %d copies", st.Encoding, st, copies)
			}
			return int64(after.TotalAlloc - before.TotalAlloc)
		}
		// Under -race, sync.Pool drops a quarter of what is put back, so a run may have to
		// build a new decoder (for zstd, a window of megabytes). The smaller object's figure
		// is the least of several runs, and the larger one is measured again while it fails.
		allocated(1) // fills the pools
		small := allocated(tt.small)
		for range 5 {
			small = min(small, allocated(tt.small))
		}
		extra := int64(3 * tt.small * len(lines))
		large := allocated(4 * tt.small)
		for try := 0; try < 8 && large-small > extra/4; try++ {
			large = allocated(4 * tt.small)
		}
		enc := Sniff(tt.member)
		t.Logf("%s: %d KiB allocated for %d KiB of content, %d KiB for %d KiB", enc,
			small>>10, tt.small*len(lines)>>10, large>>10, 4*tt.small*len(lines)>>10)
		if large-small > extra/4 {
			t.Errorf("%s: allocations grow with the content: %d bytes, then %d for %d bytes more", enc, small, large, extra)
		}
	}
}
