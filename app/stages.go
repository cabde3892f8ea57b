package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/palleto/palleto/object"
	"github.com/palleto/palleto/output"
	"github.com/palleto/palleto/s3event"
	"github.com/palleto/palleto/sqs"
)

// Policies for an object named by an event that does not exist (any more).
const (
	OnMissingFail = "fail" // a failure: retried, then moved by the queue's redrive policy
	OnMissingSkip = "skip" // acknowledged with a warning
)

// ErrBadMessage marks a message body that is not an S3 notification in any supported
// envelope. Retrying it cannot help.
var ErrBadMessage = errors.New("not an S3 notification")

// objectJob is one object named by one message.
type objectJob struct {
	MessageID string
	Obj       s3event.Object
	// Deadline is when work on the object is cut off: its message's receipt plus
	// --max-work-time. Zero: never.
	Deadline time.Time
}

// fetched is an object's content, spooled so that downloading and analysing can run with
// their own concurrency: small objects in memory, larger ones in an unlinked temporary file
// (nothing is left behind, even after a crash).
type fetched struct {
	job  objectJob
	info object.Info
	mem  []byte
	file *os.File
}

func (f *fetched) reader() io.Reader {
	if f.file != nil {
		return f.file
	}
	return bytes.NewReader(f.mem)
}

func (f *fetched) close() {
	if f.file != nil {
		f.file.Close()
		f.file = nil
	}
	f.mem = nil
}

// stages holds what the pipeline's handlers share. Each method is one stage's handler.
type stages struct {
	s3        object.Getter
	out       *output.Writer
	spoolDir  string // "" means the system's temporary directory
	memLimit  int64  // objects up to this size are spooled in memory
	onMissing string
	log       *slog.Logger
	analysed  func(bytes, lines int64) // told of each object analysed; nil: nothing
	maxWork   time.Duration            // --max-work-time; 0: work is not bounded
}

// An ObjectError is the failure of one object at one stage of the pipeline.
type ObjectError struct {
	Stage       string // fetch, analyse or write
	Bucket, Key string
	Err         error
}

func objectError(stage, bucket, key string, err error) error {
	return &ObjectError{Stage: stage, Bucket: bucket, Key: key, Err: err}
}

func (e *ObjectError) Error() string { return "s3://" + e.Bucket + "/" + e.Key + ": " + e.Err.Error() }
func (e *ObjectError) Unwrap() error { return e.Err }

// parse turns a message body into the objects it names. Test events and events other than
// ObjectCreated name none: the message is done once logged.
func (s *stages) parse(messageID string, body []byte) ([]objectJob, error) {
	n, err := s3event.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w: %w", messageID, ErrBadMessage, err)
	}
	if n.Test {
		s.log.Info("S3 test event acknowledged", "message_id", messageID)
	}
	for _, name := range n.Skipped {
		s.log.Info("event acknowledged without work", "message_id", messageID, "event", name)
	}
	jobs := make([]objectJob, len(n.Objects))
	for i, o := range n.Objects {
		jobs[i] = objectJob{MessageID: messageID, Obj: o}
	}
	return jobs, nil
}

// parseMessage is parse for an SQS message: a body that is no S3 notification fails for good
// (it is sent to the dead-letter queue, when there is one).
func (s *stages) parseMessage(_ context.Context, m sqs.Message) ([]objectJob, error) {
	jobs, err := s.parse(m.ID, []byte(m.Body))
	if errors.Is(err, ErrBadMessage) {
		return nil, sqs.Permanent(err)
	}
	if s.maxWork > 0 && !m.ReceivedAt.IsZero() {
		for i := range jobs {
			jobs[i].Deadline = m.ReceivedAt.Add(s.maxWork)
		}
	}
	return jobs, err
}

// fetch downloads an object into the spool. A missing object is a failure, or nothing at
// all under the skip policy.
func (s *stages) fetch(ctx context.Context, j objectJob) ([]*fetched, error) {
	return bounded(s, ctx, j, func(ctx context.Context) ([]*fetched, error) { return s.download(ctx, j) })
}

func (s *stages) download(ctx context.Context, j objectJob) ([]*fetched, error) {
	o := j.Obj
	body, info, err := object.Open(ctx, s.s3, o.Bucket, o.Key, o.VersionID)
	if err != nil {
		if errors.Is(err, object.ErrNotFound) && s.onMissing == OnMissingSkip {
			s.log.Warn("object not found: skipped", "bucket", o.Bucket, "key", o.Key, "message_id", j.MessageID)
			return nil, nil
		}
		return nil, objectError("fetch", o.Bucket, o.Key, s3Fault(s.s3, o.Bucket, o.Key, o.VersionID, err))
	}
	defer body.Close()
	f := &fetched{job: j, info: info}
	if info.Size >= 0 && info.Size <= s.memLimit {
		f.mem = make([]byte, 0, info.Size+1)
		buf := bytes.NewBuffer(f.mem)
		if _, err := buf.ReadFrom(body); err != nil {
			return nil, objectError("fetch", o.Bucket, o.Key, fmt.Errorf("download: %w", s3Fault(s.s3, o.Bucket, o.Key, o.VersionID, err)))
		}
		f.mem = buf.Bytes()
	} else {
		var spoolErr bool
		if f.file, spoolErr, err = spool(s.spoolDir, body); err != nil {
			if spoolErr {
				return nil, objectError("fetch", o.Bucket, o.Key, fmt.Errorf("spool: %w", dirFault(s.spoolDir, err)))
			}
			return nil, objectError("fetch", o.Bucket, o.Key, fmt.Errorf("download: %w", s3Fault(s.s3, o.Bucket, o.Key, o.VersionID, err)))
		}
	}
	s.log.Debug("downloaded", "bucket", o.Bucket, "key", o.Key, "size", info.Size)
	return []*fetched{f}, nil
}

// spool copies body into an unlinked temporary file in dir and returns it, read from the
// start. spoolErr tells whether err is the spool's (rather than the body's).
func spool(dir string, body io.Reader) (_ *os.File, spoolErr bool, err error) {
	file, err := os.CreateTemp(dir, "palleto-spool-*")
	if err != nil {
		return nil, true, err
	}
	os.Remove(file.Name()) // the open file stays readable; its space is freed on close
	defer func() {
		if err != nil {
			file.Close()
		}
	}()
	w := &tagWriter{w: file}
	if _, err := io.Copy(w, body); err != nil {
		return nil, w.failed, err
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, true, err
	}
	return file, false, nil
}

// tagWriter remembers whether a write failed, so that a copy's error can be told from its
// source's.
type tagWriter struct {
	w      io.Writer
	failed bool
}

func (t *tagWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		t.failed = true
	}
	return n, err
}

// analyse decompresses and counts a spooled object. A corrupt object is a failure: no
// result is written for it.
func (s *stages) analyse(ctx context.Context, f *fetched) (output.Result, error) {
	return bounded(s, ctx, f.job, func(ctx context.Context) (output.Result, error) { return s.count(ctx, f) })
}

func (s *stages) count(ctx context.Context, f *fetched) (output.Result, error) {
	defer f.close()
	o := f.job.Obj
	dec, enc, err := object.Decode(ctxReader{ctx, f.reader()})
	if err != nil {
		return output.Result{}, objectError("analyse", o.Bucket, o.Key, err)
	}
	n, lines, err := object.Count(dec)
	dec.Close()
	if err != nil {
		return output.Result{}, objectError("analyse", o.Bucket, o.Key, err)
	}
	if s.analysed != nil {
		s.analysed(n, lines)
	}
	etag := f.info.ETag
	if etag == "" {
		etag = o.ETag
	}
	version := f.info.VersionID
	if version == "" {
		version = o.VersionID
	}
	return output.Result{
		Bucket: o.Bucket, Key: o.Key, VersionID: version, ETag: etag,
		Size: f.info.Size, Bytes: n, Lines: lines, Encoding: string(enc),
		Sequencer: o.Sequencer, MessageID: f.job.MessageID,
	}, nil
}

// write records a result atomically.
func (s *stages) write(_ context.Context, r output.Result) error {
	path, outcome, err := s.out.Write(r)
	if err != nil {
		dir := filepath.Dir(filepath.Join(s.out.Dir(), output.RelPath(r.Bucket, r.Key)))
		return objectError("write", r.Bucket, r.Key, fmt.Errorf("write result: %w", dirFault(dir, err)))
	}
	s.log.Debug("processed", "bucket", r.Bucket, "key", r.Key, "lines", r.Lines, "bytes", r.Bytes,
		"encoding", r.Encoding, "result", path, "outcome", outcome.String())
	return nil
}

// ctxReader stops reading once ctx ends, so that an aborted run does not first finish
// decompressing a large object.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
