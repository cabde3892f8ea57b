// Package object reads S3 objects as streams and measures their content.
//
// An object is never held in memory: Open returns its body as a stream,
// Decode recognises the compression from the first bytes of the content
// (never from the key) and decompresses while reading, and Count measures
// the decompressed bytes and newlines in one pass. Analyze does all three.
//
// Memory stays bounded whatever the object's size: a read buffer, the
// decompressor's window (32 KiB for gzip, at most 900 KiB blocks for bzip2,
// at most MaxZstdWindow for zstd) and nothing proportional to the object.
package object

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Errors reported by this package. Match them with errors.Is; the error
// returned wraps the cause (the S3 error or the decompressor's error).
var (
	// ErrNotFound means that the object, its version or its bucket does not
	// exist.
	ErrNotFound = errors.New("object: not found")

	// ErrCorrupt means that the content could not be decompressed: it is
	// truncated, damaged, followed by bytes that are not another member of
	// the same format, or uses a zstd window larger than MaxZstdWindow.
	ErrCorrupt = errors.New("object: corrupt content")

	// ErrChanged means that the object was replaced while it was being
	// read, so its remaining bytes could not be fetched from the same
	// version.
	ErrChanged = errors.New("object: changed while being read")
)

// Getter is the part of *s3.Client that this package uses.
type Getter interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// GetterFunc adapts a function to the Getter interface.
type GetterFunc func(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)

// GetObject calls f.
func (f GetterFunc) GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return f(ctx, in, opts...)
}

// Info describes the stored object as S3 reported it.
type Info struct {
	Bucket    string
	Key       string
	VersionID string // empty when the bucket is not versioned
	ETag      string // without the surrounding quotes, as in S3 event notifications
	Size      int64  // stored (compressed) size in bytes; -1 if S3 did not say
}

// Stats describes the decompressed content.
type Stats struct {
	Encoding Encoding
	Bytes    int64 // decompressed size
	Lines    int64 // newline bytes in the decompressed content, as `wc -l` counts
}

// maxResumes bounds the consecutive attempts to resume a body that made no
// progress in between. Each attempt is a GetObject call, which the SDK's
// retryer already retries with backoff; this only stops a connection that
// drops on every try from being resumed forever.
const maxResumes = 3

// Open starts reading an object. versionID may be empty for the current
// version. The caller must close the returned body.
//
// If the connection drops while the body is read, the body resumes with a
// ranged GetObject from the offset reached, on condition that the ETag is
// unchanged (ErrChanged otherwise), so that a stream never mixes two
// versions of an object. The body uses ctx for those requests: it must not
// be read after ctx ends.
func Open(ctx context.Context, g Getter, bucket, key, versionID string) (io.ReadCloser, Info, error) {
	info := Info{Bucket: bucket, Key: key, VersionID: versionID, Size: -1}
	in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	out, err := g.GetObject(ctx, in)
	if err != nil {
		return nil, info, getError(bucket, key, err)
	}
	if v := aws.ToString(out.VersionId); v != "" {
		info.VersionID = v
		in.VersionId = aws.String(v)
	}
	etag := aws.ToString(out.ETag)
	info.ETag = strings.Trim(etag, `"`)
	if out.ContentLength != nil {
		info.Size = *out.ContentLength
	}
	rc := out.Body
	if rc == nil {
		rc = http.NoBody
	}
	return &body{ctx: ctx, g: g, in: in, etag: etag, size: info.Size, rc: rc}, info, nil
}

// Analyze reads an object once and reports what it holds. A missing object
// is ErrNotFound, content that does not decompress is ErrCorrupt; any other
// error (network, permissions, ctx) is returned wrapped as it came. On
// error, Stats holds at most the encoding: never a count of part of the
// content.
func Analyze(ctx context.Context, g Getter, bucket, key, versionID string) (Info, Stats, error) {
	rc, info, err := Open(ctx, g, bucket, key, versionID)
	if err != nil {
		return info, Stats{}, err
	}
	defer rc.Close()
	dec, enc, err := Decode(rc)
	if err != nil {
		return info, Stats{Encoding: enc}, fmt.Errorf("object: reading s3://%s/%s: %w", bucket, key, err)
	}
	defer dec.Close()
	n, lines, err := Count(dec)
	if err != nil {
		return info, Stats{Encoding: enc}, fmt.Errorf("object: reading s3://%s/%s: %w", bucket, key, err)
	}
	return info, Stats{Encoding: enc, Bytes: n, Lines: lines}, nil
}

// getError classifies a GetObject failure by the error's type and code,
// never by its text.
func getError(bucket, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("%w: s3://%s/%s: %w", ErrNotFound, bucket, key, err)
	}
	return fmt.Errorf("object: get s3://%s/%s: %w", bucket, key, err)
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nsb *types.NoSuchBucket
	if errors.As(err, &nsk) || errors.As(err, &nsb) {
		return true
	}
	// GetObject does not model every missing-thing code (NoSuchBucket on
	// some endpoints, NoSuchVersion), nor a bare 404 without a body.
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound":
			return true
		}
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 404
}

func isPreconditionFailed(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed" {
		return true
	}
	var re *awshttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 412
}

// body is an object's content that survives dropped connections.
//
// It keeps the ctx given to Open because it issues requests on the
// caller's behalf while being read, as the SDK's own response body is bound
// to that ctx; it lives no longer than the Open call's operation.
type body struct {
	ctx    context.Context
	g      Getter
	in     *s3.GetObjectInput
	etag   string // as S3 sent it, quotes included, for If-Match
	size   int64
	rc     io.ReadCloser // nil after a drop, until resumed
	off    int64
	fails  int   // resumes since the last byte read
	cause  error // the read error that made the body resume
	closed bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if b.rc == nil {
			if err := b.resume(); err != nil {
				return 0, err
			}
		}
		n, err := b.rc.Read(p)
		b.off += int64(n)
		if n > 0 {
			b.fails = 0
		}
		if err == io.EOF && b.size >= 0 && b.off < b.size {
			// A connection closed early without an error from the
			// transport still leaves bytes unread.
			err = io.ErrUnexpectedEOF
		}
		if err == nil || err == io.EOF || !b.resumable(err) {
			return n, err
		}
		b.rc.Close()
		b.rc = nil
		b.cause = err
		if n > 0 {
			return n, nil
		}
	}
}

// resumable reports whether a read error is worth a new request: not when
// the caller gave up, nor when the whole object has arrived (an error then
// is about the response as a whole, such as a checksum, and a ranged
// request cannot help).
func (b *body) resumable(err error) bool {
	if b.ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return b.size < 0 || b.off < b.size
}

func (b *body) resume() error {
	bucket, key := aws.ToString(b.in.Bucket), aws.ToString(b.in.Key)
	if b.fails >= maxResumes {
		return fmt.Errorf("object: reading s3://%s/%s at offset %d: gave up after %d resumes: %w", bucket, key, b.off, b.fails, b.cause)
	}
	b.fails++
	in := *b.in
	in.Range = aws.String(fmt.Sprintf("bytes=%d-", b.off))
	if b.etag != "" {
		in.IfMatch = aws.String(b.etag)
	}
	out, err := b.g.GetObject(b.ctx, &in)
	if err != nil {
		if isPreconditionFailed(err) || isNotFound(err) {
			return fmt.Errorf("%w: s3://%s/%s at offset %d: %w", ErrChanged, bucket, key, b.off, err)
		}
		return fmt.Errorf("object: resuming s3://%s/%s at offset %d after %v: %w", bucket, key, b.off, b.cause, err)
	}
	// A server that ignored the range would send the object from its
	// start, which must not be taken for its continuation.
	if want := fmt.Sprintf("bytes %d-", b.off); !strings.HasPrefix(aws.ToString(out.ContentRange), want) {
		out.Body.Close()
		return fmt.Errorf("object: resuming s3://%s/%s at offset %d: response range %q is not the one asked for", bucket, key, b.off, aws.ToString(out.ContentRange))
	}
	if b.etag != "" && aws.ToString(out.ETag) != "" && aws.ToString(out.ETag) != b.etag {
		out.Body.Close()
		return fmt.Errorf("%w: s3://%s/%s: ETag %s became %s", ErrChanged, bucket, key, b.etag, aws.ToString(out.ETag))
	}
	b.rc = out.Body
	return nil
}

func (b *body) Close() error {
	b.closed = true
	if b.rc == nil {
		return nil
	}
	err := b.rc.Close()
	b.rc = nil
	return err
}

var errClosed = errors.New("object: read after close")
