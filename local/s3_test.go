package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/palleto/palleto/s3event"
)

// queueBox is a notifier that keeps what it is sent, by queue ARN.
type queueBox struct {
	mu   sync.Mutex
	msgs map[string][]string
	fail error
}

func (q *queueBox) notify(arn, body string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return q.fail
	}
	if q.msgs == nil {
		q.msgs = map[string][]string{}
	}
	q.msgs[arn] = append(q.msgs[arn], body)
	return nil
}

// take returns and forgets what queue arn was sent.
func (q *queueBox) take(arn string) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	m := q.msgs[arn]
	delete(q.msgs, arn)
	return m
}

const (
	arnA = "arn:aws:sqs:us-east-1:000000000000:a"
	arnB = "arn:aws:sqs:us-east-1:000000000000:b"
)

// startS3 serves the embedded S3 alone on loopback and returns a path-style
// client for it.
func startS3(t *testing.T) (*s3.Client, *queueBox) {
	t.Helper()
	box := &queueBox{}
	srv := httptest.NewServer(newS3("us-east-1", box))
	t.Cleanup(srv.Close)
	c := s3.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(srv.URL),
	}, func(o *s3.Options) { o.UsePathStyle = true })
	return c, box
}

func mustBucket(t *testing.T, c *s3.Client, name string) {
	t.Helper()
	if _, err := c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
}

func notifyConfig(t *testing.T, c *s3.Client, bucket string, qcs ...s3types.QueueConfiguration) {
	t.Helper()
	_, err := c.PutBucketNotificationConfiguration(t.Context(), &s3.PutBucketNotificationConfigurationInput{
		Bucket:                    aws.String(bucket),
		NotificationConfiguration: &s3types.NotificationConfiguration{QueueConfigurations: qcs},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, c *s3.Client, bucket, key string, body []byte) *s3.PutObjectOutput {
	t.Helper()
	out, err := c.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put %q: %v", key, err)
	}
	return out
}

// parseOne parses a message that must hold one record.
func parseOne(t *testing.T, body string) (s3event.Notification, string) {
	t.Helper()
	n, err := s3event.Parse([]byte(body))
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	switch {
	case len(n.Objects) == 1:
		return n, n.Objects[0].EventName
	case len(n.Skipped) == 1:
		return n, n.Skipped[0]
	}
	t.Fatalf("want one record, got %+v\n%s", n, body)
	return n, ""
}

// TestS3NotificationKeys puts awkward keys into a notifying bucket: each
// record parses with the project's parser back to the key that was put, with
// its size and ETag, and the configuration first sends s3:TestEvent.
func TestS3NotificationKeys(t *testing.T) {
	c, box := startS3(t)
	mustBucket(t, c, "inbox")
	notifyConfig(t, c, "inbox", s3types.QueueConfiguration{Id: aws.String("all"), QueueArn: aws.String(arnA), Events: []s3types.Event{"s3:ObjectCreated:*"}})
	msgs := box.take(arnA)
	if len(msgs) != 1 {
		t.Fatalf("after configuring: %d messages, want the test event", len(msgs))
	}
	if n, err := s3event.Parse([]byte(msgs[0])); err != nil || !n.Test {
		t.Fatalf("test event: %+v, %v\n%s", n, err, msgs[0])
	}

	keys := []string{"plain.txt", "a b+c%2B ü/../x.gz", "/leading/slash", "100% done; a=b&c?.log", "日本/ファイル 名.txt", "tab\tand~tilde*star(paren)"}
	for i, k := range keys {
		body := bytes.Repeat([]byte("x"), i+1)
		out := put(t, c, "inbox", k, body)
		msgs := box.take(arnA)
		if len(msgs) != 1 {
			t.Fatalf("put %q: %d messages, want 1", k, len(msgs))
		}
		n, name := parseOne(t, msgs[0])
		o := n.Objects[0]
		if name != "ObjectCreated:Put" || o.Bucket != "inbox" || o.Key != k || o.Size != int64(len(body)) || `"`+o.ETag+`"` != aws.ToString(out.ETag) || o.Sequencer == "" {
			t.Errorf("put %q: got %+v, want key, size %d, ETag %s\n%s", k, o, len(body), aws.ToString(out.ETag), msgs[0])
		}
		if !strings.Contains(msgs[0], `"configurationId":"all"`) || !strings.Contains(msgs[0], `"eventVersion":"2.1"`) || !strings.Contains(msgs[0], `"arn":"arn:aws:s3:::inbox"`) {
			t.Errorf("record lacks configurationId, eventVersion or bucket ARN:\n%s", msgs[0])
		}
	}
}

func TestEventKeyEncoding(t *testing.T) {
	for key, want := range map[string]string{
		"red flower.jpg": "red+flower.jpg", // S3's documentation
		"a+b":            "a%2Bb",
		"100%":           "100%25",
		"dir/sub/x":      "dir/sub/x",
		"ü":              "%C3%BC",
		"a=b:c":          "a%3Db%3Ac",
	} {
		if got := eventKey(key); got != want {
			t.Errorf("eventKey(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestS3NotificationSequencer checks that the sequencer of a key grows with
// each of its changes, deletions included.
func TestS3NotificationSequencer(t *testing.T) {
	c, box := startS3(t)
	mustBucket(t, c, "bkt")
	notifyConfig(t, c, "bkt", s3types.QueueConfiguration{QueueArn: aws.String(arnA), Events: []s3types.Event{"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}})
	box.take(arnA)
	var seqs []string
	for i := range 3 {
		put(t, c, "bkt", "k", []byte{byte(i)})
		put(t, c, "bkt", "other", nil)
	}
	if _, err := c.DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	for _, m := range box.take(arnA) {
		if !strings.Contains(m, `"key":"k"`) {
			continue
		}
		var r struct {
			Records []struct {
				S3 struct {
					Object struct{ Sequencer string }
				}
			}
		}
		if err := jsonUnmarshal(m, &r); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, r.Records[0].S3.Object.Sequencer)
	}
	if len(seqs) != 4 {
		t.Fatalf("got %d records of k, want 4", len(seqs))
	}
	for i := 1; i < len(seqs); i++ {
		if s3event.CompareSequencer(seqs[i-1], seqs[i]) >= 0 {
			t.Errorf("sequencer %s then %s: does not grow", seqs[i-1], seqs[i])
		}
	}
}

// TestS3NotificationKinds covers copies, multipart completions, deletions
// (one and many), event-type selection and prefix/suffix filters.
func TestS3NotificationKinds(t *testing.T) {
	c, box := startS3(t)
	ctx := t.Context()
	mustBucket(t, c, "bkt")
	notifyConfig(t, c, "bkt",
		s3types.QueueConfiguration{Id: aws.String("puts"), QueueArn: aws.String(arnA), Events: []s3types.Event{"s3:ObjectCreated:Put"},
			Filter: &s3types.NotificationConfigurationFilter{Key: &s3types.S3KeyFilter{FilterRules: []s3types.FilterRule{
				{Name: "prefix", Value: aws.String("in/")}, {Name: "suffix", Value: aws.String(".csv")}}}}},
		s3types.QueueConfiguration{Id: aws.String("rest"), QueueArn: aws.String(arnB), Events: []s3types.Event{"s3:ObjectCreated:Copy", "s3:ObjectCreated:CompleteMultipartUpload", "s3:ObjectRemoved:*"}},
	)
	if a, b := len(box.take(arnA)), len(box.take(arnB)); a != 1 || b != 1 {
		t.Fatalf("test events: %d to a, %d to b; want one each", a, b)
	}

	put(t, c, "bkt", "in/x.csv", []byte("1"))
	put(t, c, "bkt", "in/x.txt", []byte("1"))
	put(t, c, "bkt", "out/x.csv", []byte("1"))
	if msgs := box.take(arnA); len(msgs) != 1 || !strings.Contains(msgs[0], `"key":"in/x.csv"`) {
		t.Errorf("prefix and suffix: a got %q, want in/x.csv only", msgs)
	}
	if msgs := box.take(arnB); len(msgs) != 0 {
		t.Errorf("puts reached b: %q", msgs)
	}

	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("bkt"), Key: aws.String("copy of x"), CopySource: aws.String("bkt/in/x.csv")}); err != nil {
		t.Fatal(err)
	}
	msgs := box.take(arnB)
	if len(msgs) != 1 {
		t.Fatalf("copy: %d messages to b, want 1", len(msgs))
	}
	if n, name := parseOne(t, msgs[0]); name != "ObjectCreated:Copy" || n.Objects[0].Key != "copy of x" || n.Objects[0].Size != 1 {
		t.Errorf("copy: %+v", n)
	}

	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []s3types.CompletedPart
	for i, body := range [][]byte{bytes.Repeat([]byte("a"), 5<<20), []byte("tail")} {
		p, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bkt"), Key: aws.String("big"), UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, s3types.CompletedPart{ETag: p.ETag, PartNumber: aws.Int32(int32(i + 1))})
	}
	done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bkt"), Key: aws.String("big"), UploadId: up.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		t.Fatal(err)
	}
	msgs = box.take(arnB)
	if len(msgs) != 1 {
		t.Fatalf("multipart: %d messages to b, want 1", len(msgs))
	}
	// The record's ETag is the one HEAD reports, which gofakes3 makes the
	// MD5 of the whole object rather than S3's "-2" form that the
	// completion answered with.
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bkt"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	if n, name := parseOne(t, msgs[0]); name != "ObjectCreated:CompleteMultipartUpload" || n.Objects[0].Size != 5<<20+4 || `"`+n.Objects[0].ETag+`"` != aws.ToString(head.ETag) {
		t.Errorf("multipart: %+v, want size %d and ETag %s (completion answered %s)", n.Objects, 5<<20+4, aws.ToString(head.ETag), aws.ToString(done.ETag))
	}

	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("bkt"), Key: aws.String("in/x.txt")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String("bkt"), Delete: &s3types.Delete{Quiet: aws.Bool(true),
		Objects: []s3types.ObjectIdentifier{{Key: aws.String("out/x.csv")}, {Key: aws.String("big")}}}}); err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, m := range box.take(arnB) {
		n, name := parseOne(t, m)
		if name != "ObjectRemoved:Delete" {
			t.Errorf("delete: %+v", n)
		}
		_, key, _ := strings.Cut(m, `"key":"`)
		key, _, _ = strings.Cut(key, `"`)
		deleted = append(deleted, key)
	}
	if fmt.Sprint(deleted) != "[in/x.txt out/x.csv big]" {
		t.Errorf("deletions announced: %v, want [in/x.txt out/x.csv big]", deleted)
	}
	if msgs := box.take(arnA); len(msgs) != 0 {
		t.Errorf("a got records it did not ask for: %q", msgs)
	}

	got, err := c.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: aws.String("bkt")})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.QueueConfigurations) != 2 || aws.ToString(got.QueueConfigurations[0].Id) != "puts" || len(got.QueueConfigurations[0].Filter.Key.FilterRules) != 2 ||
		len(got.QueueConfigurations[1].Events) != 3 {
		t.Errorf("configuration read back: %+v", got.QueueConfigurations)
	}

	// An empty configuration turns notifications off.
	notifyConfig(t, c, "bkt")
	put(t, c, "bkt", "in/y.csv", nil)
	if msgs := box.take(arnA); len(msgs) != 0 {
		t.Errorf("notifications off, got %q", msgs)
	}
}

// TestS3NotificationVersions checks versionId in records of a versioned
// bucket, and the delete marker a plain delete creates there.
func TestS3NotificationVersions(t *testing.T) {
	c, box := startS3(t)
	ctx := t.Context()
	mustBucket(t, c, "ver")
	if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("ver"),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
		t.Fatal(err)
	}
	notifyConfig(t, c, "ver", s3types.QueueConfiguration{QueueArn: aws.String(arnA), Events: []s3types.Event{"s3:ObjectCreated:*", "s3:ObjectRemoved:*"}})
	box.take(arnA)
	out := put(t, c, "ver", "k", []byte("1"))
	if aws.ToString(out.VersionId) == "" {
		t.Fatal("no version id from a versioned bucket")
	}
	msgs := box.take(arnA)
	if n, _ := parseOne(t, msgs[0]); n.Objects[0].VersionID != aws.ToString(out.VersionId) {
		t.Errorf("record version %q, put answered %q", n.Objects[0].VersionID, aws.ToString(out.VersionId))
	}
	del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String("ver"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	msgs = box.take(arnA)
	if len(msgs) != 1 {
		t.Fatalf("delete: %d messages", len(msgs))
	}
	if _, name := parseOne(t, msgs[0]); name != "ObjectRemoved:DeleteMarkerCreated" || !strings.Contains(msgs[0], `"versionId":"`+aws.ToString(del.VersionId)+`"`) {
		t.Errorf("delete in a versioned bucket: %s", msgs[0])
	}
}

// A bucket without versioning: records carry no versionId, as S3's do not.
func TestS3NotificationNoVersionWithoutVersioning(t *testing.T) {
	c, box := startS3(t)
	mustBucket(t, c, "plain")
	notifyConfig(t, c, "plain", s3types.QueueConfiguration{QueueArn: aws.String(arnA), Events: []s3types.Event{"s3:ObjectCreated:*"}})
	box.take(arnA)
	put(t, c, "plain", "k", []byte("1"))
	msgs := box.take(arnA)
	if len(msgs) != 1 || strings.Contains(msgs[0], "versionId") {
		t.Errorf("record of an unversioned bucket: %v", msgs)
	}
}

// TestS3NotificationRefused checks the configurations S3 refuses, each with
// its error code, and that a refused configuration is not put in force.
func TestS3NotificationRefused(t *testing.T) {
	c, box := startS3(t)
	mustBucket(t, c, "bkt")
	for _, tc := range []struct {
		name, bucket, code string
		qc                 s3types.QueueConfiguration
		fail               error
	}{
		{"no bucket", "missing", "NoSuchBucket", s3types.QueueConfiguration{QueueArn: aws.String(arnA), Events: []s3types.Event{"s3:ObjectCreated:*"}}, nil},
		{"not a queue", "bkt", "InvalidArgument", s3types.QueueConfiguration{QueueArn: aws.String("arn:aws:sns:us-east-1:000000000000:t"), Events: []s3types.Event{"s3:ObjectCreated:*"}}, nil},
		{"bad event", "bkt", "InvalidArgument", s3types.QueueConfiguration{QueueArn: aws.String(arnA), Events: []s3types.Event{"s3:ObjectCreated:Moved"}}, nil},
		{"queue refuses", "bkt", "InvalidArgument", s3types.QueueConfiguration{QueueArn: aws.String(arnA), Events: []s3types.Event{"s3:ObjectCreated:*"}}, errors.New("no such queue")},
	} {
		box.fail = tc.fail
		_, err := c.PutBucketNotificationConfiguration(t.Context(), &s3.PutBucketNotificationConfigurationInput{
			Bucket:                    aws.String(tc.bucket),
			NotificationConfiguration: &s3types.NotificationConfiguration{QueueConfigurations: []s3types.QueueConfiguration{tc.qc}},
		})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
			t.Errorf("%s: got %v, want %s", tc.name, err, tc.code)
		}
	}
	box.fail = nil
	put(t, c, "bkt", "k", nil)
	if msgs := box.take(arnA); len(msgs) != 0 {
		t.Errorf("a refused configuration is in force: %q", msgs)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// TestS3GetPreconditions: a GET whose If-Match or If-Unmodified-Since does
// not hold fails with 412 PreconditionFailed, before its range is looked at,
// as in S3 (gofakes3 alone ignores both).
func TestS3GetPreconditions(t *testing.T) {
	c, _ := startS3(t)
	ctx := t.Context()
	mustBucket(t, c, "bkt")
	out := put(t, c, "bkt", "k", []byte("0123456789"))
	get := func(in *s3.GetObjectInput) error {
		in.Bucket, in.Key = aws.String("bkt"), aws.String("k")
		o, err := c.GetObject(ctx, in)
		if err == nil {
			o.Body.Close()
		}
		return err
	}
	if err := get(&s3.GetObjectInput{IfMatch: out.ETag, Range: aws.String("bytes=5-")}); err != nil {
		t.Errorf("GET with the right If-Match: %v", err)
	}
	for name, in := range map[string]*s3.GetObjectInput{
		"If-Match":            {IfMatch: aws.String(`"0000"`), Range: aws.String("bytes=50-")},
		"If-Unmodified-Since": {IfUnmodifiedSince: aws.Time(time.Now().Add(-time.Hour))},
	} {
		var ae smithy.APIError
		if err := get(in); !errors.As(err, &ae) || ae.ErrorCode() != "PreconditionFailed" {
			t.Errorf("GET with a failing %s: %v, want PreconditionFailed", name, err)
		}
	}
}

// TestS3NotificationNoVersionUnversioned: a bucket that never had versioning
// sends records without versionId, as S3 does.
func TestS3NotificationNoVersionUnversioned(t *testing.T) {
	c, box := startS3(t)
	mustBucket(t, c, "plain")
	notifyConfig(t, c, "plain", s3types.QueueConfiguration{QueueArn: aws.String(arnA), Events: []s3types.Event{"s3:ObjectCreated:*"}})
	box.take(arnA)
	put(t, c, "plain", "k", []byte("1"))
	msgs := box.take(arnA)
	if len(msgs) != 1 || strings.Contains(msgs[0], "versionId") {
		t.Errorf("record of an unversioned bucket: %q", msgs)
	}
}

// TestCloseWithUnusedConnection: a connection a client opened and never
// used (an SDK dials ahead) neither holds up Close nor fails it.
func TestCloseWithUnusedConnection(t *testing.T) {
	s, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server has seen the connection once a request on another one is answered.
	if _, err := s.S3Client().ListBuckets(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close with an unused connection open: %v", err)
	}
}
