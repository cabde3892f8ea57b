package app

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/palleto/palleto/object"
	"github.com/palleto/palleto/output"
	"github.com/palleto/palleto/s3event"
)

// fakeS3 is an object getter over a map of keys to contents: the stages' unit tests need no
// S3 server.
func fakeS3(objects map[string][]byte) object.Getter {
	return object.GetterFunc(func(_ context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
		b, ok := objects[aws.ToString(in.Key)]
		if !ok {
			return nil, &s3types.NoSuchKey{Message: aws.String("The specified key does not exist.")}
		}
		return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(b)), ContentLength: aws.Int64(int64(len(b))), ETag: aws.String(`"e"`)}, nil
	})
}

// TestStagesWithAFakeGetter: fetch, analyse and write an object spooled in memory and one
// spooled in a file; a missing object fails, or is skipped under the skip policy.
func TestStagesWithAFakeGetter(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("a\nb\nc\n"))
	zw.Close()
	out, err := output.NewWriter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for _, memLimit := range []int64{1 << 20, 0} {
		st := &stages{s3: fakeS3(map[string][]byte{"k.gz": gz.Bytes()}), out: out, spoolDir: t.TempDir(),
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
