package object

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
)

// s3Client returns a path-style client of the backend whose idle
// connections are closed before the server stops, so that no connection
// goroutine outlives the test.
func s3Client(t *testing.T, b awstest.Backend) *s3.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return s3.NewFromConfig(b.Config(""), func(o *s3.Options) {
		o.UsePathStyle = true
		o.HTTPClient = &http.Client{Transport: tr}
	})
}

// TestS3 reads objects from the embedded S3 and from moto.
func TestS3(t *testing.T) {
	awstest.Each(t, testS3)
}

func testS3(t *testing.T, b awstest.Backend) {
	ctx := t.Context()
	c := s3Client(t, b)
	const bucket = "palleto-object"
	if err := moto.CreateBucket(ctx, c, bucket); err != nil {
		t.Fatal(err)
	}
	put := func(t *testing.T, key string, data []byte) *s3.PutObjectOutput {
		t.Helper()
		out, err := moto.PutObject(ctx, c, bucket, key, data)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	lines := fixture(t, "lines.txt")
	noEOL := []byte("first\nsecond\nno newline at the end")

	t.Run("formats", func(t *testing.T) {
		objects := []struct {
			key  string
			data []byte
			want []byte
			enc  Encoding
		}{
			{"plain/lines.txt", lines, lines, None},
			{"plain/empty", nil, nil, None},
			{"gzip/lines.gz", fixture(t, "lines.gz"), lines, Gzip},
			{"gzip/multi member.gz", gz(t, lines[:5000], noEOL, lines[5000:]), cat(lines[:5000], noEOL, lines[5000:]), Gzip},
			{"gzip/no-eol.txt", gz(t, noEOL), noEOL, Gzip},
			{"gzip/empty.gz", gz(t, nil), nil, Gzip},
			{"zstd/lines", fixture(t, "lines.zst"), lines, Zstd},
			{"bzip2/lines.gz", fixture(t, "lines.bz2"), lines, Bzip2},
		}
		for _, o := range objects {
			out := put(t, o.key, o.data)
			info, st, err := Analyze(ctx, c, bucket, o.key, "")
			if err != nil {
				t.Errorf("%s: %v", o.key, err)
				continue
			}
			wantInfo := Info{Bucket: bucket, Key: o.key, ETag: strings.Trim(aws.ToString(out.ETag), `"`), Size: int64(len(o.data))}
			if info != wantInfo {
				t.Errorf("%s: Info = %+v, want %+v", o.key, info, wantInfo)
			}
			wantStats := Stats{Encoding: o.enc, Bytes: int64(len(o.want)), Lines: newlines(o.want)}
			if st != wantStats {
				t.Errorf("%s: Stats = %+v, want %+v", o.key, st, wantStats)
			}
		}
	})

	t.Run("corrupt", func(t *testing.T) {
		src := fixture(t, "lines.gz")
		put(t, "corrupt/truncated.gz", src[:len(src)/2])
		put(t, "corrupt/garbage-after.gz", cat(src, []byte("garbage")))
		for _, key := range []string{"corrupt/truncated.gz", "corrupt/garbage-after.gz"} {
			if _, _, err := Analyze(ctx, c, bucket, key, ""); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: err = %v, want ErrCorrupt", key, err)
			}
		}
	})

	t.Run("not found", func(t *testing.T) {
		for _, bk := range [][2]string{{bucket, "no/such/key"}, {"no-such-bucket", "key"}} {
			_, _, err := Analyze(ctx, c, bk[0], bk[1], "")
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("s3://%s/%s: err = %v, want ErrNotFound", bk[0], bk[1], err)
			}
		}
	})

	t.Run("versions", func(t *testing.T) {
		const vb = "palleto-object-versioned"
		if err := moto.CreateBucket(ctx, c, vb); err != nil {
			t.Fatal(err)
		}
		_, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
			Bucket:                  aws.String(vb),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
		})
		if err != nil {
			t.Fatal(err)
		}
		first, err := moto.PutObject(ctx, c, vb, "k.gz", gz(t, lines))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := moto.PutObject(ctx, c, vb, "k.gz", gz(t, noEOL)); err != nil {
			t.Fatal(err)
		}
		info, st, err := Analyze(ctx, c, vb, "k.gz", aws.ToString(first.VersionId))
		if err != nil {
			t.Fatal(err)
		}
		if info.VersionID != aws.ToString(first.VersionId) || st.Bytes != int64(len(lines)) {
			t.Errorf("old version: %+v %+v, want version %s with %d bytes", info, st, aws.ToString(first.VersionId), len(lines))
		}
		info, st, err = Analyze(ctx, c, vb, "k.gz", "")
		if err != nil {
			t.Fatal(err)
		}
		if info.VersionID == "" || info.VersionID == aws.ToString(first.VersionId) || st.Bytes != int64(len(noEOL)) {
			t.Errorf("current version: %+v %+v", info, st)
		}
		if _, _, err := Analyze(ctx, c, vb, "k.gz", "nosuchversion"); err == nil {
			t.Error("a missing version was analysed")
		}
	})

	// The body is cut once; the rest comes from the server through a ranged,
	// conditional request.
	t.Run("resume", func(t *testing.T) {
		src := fixture(t, "lines.gz")
		put(t, "resume/lines.gz", src)
		calls := 0
		g := GetterFunc(func(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
			out, err := c.GetObject(ctx, in, opts...)
			calls++
			if err == nil && calls == 1 {
				out.Body = cutBody{Reader: &dropAfter{r: out.Body, n: 7777, err: errReset}, Closer: out.Body}
			}
			return out, err
		})
		_, st, err := Analyze(ctx, g, bucket, "resume/lines.gz", "")
		if err != nil {
			t.Fatal(err)
		}
		if st != (Stats{Encoding: Gzip, Bytes: int64(len(lines)), Lines: newlines(lines)}) {
			t.Errorf("Stats = %+v", st)
		}
		if calls != 2 {
			t.Errorf("%d GetObject calls, want 2", calls)
		}
	})

	t.Run("replaced while read", func(t *testing.T) {
		put(t, "resume/replaced.gz", fixture(t, "lines.gz"))
		calls := 0
		g := GetterFunc(func(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
			calls++
			if calls == 2 {
				put(t, "resume/replaced.gz", gz(t, noEOL))
			}
			out, err := c.GetObject(ctx, in, opts...)
			if err == nil && calls == 1 {
				out.Body = cutBody{Reader: &dropAfter{r: out.Body, n: 7777, err: errReset}, Closer: out.Body}
			}
			return out, err
		})
		_, _, err := Analyze(ctx, g, bucket, "resume/replaced.gz", "")
		if !errors.Is(err, ErrChanged) {
			t.Fatalf("err = %v, want ErrChanged", err)
		}
	})
}

type cutBody struct {
	io.Reader
	io.Closer
}
