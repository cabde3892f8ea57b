package local

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// notifier delivers the body of a message to the queue named by an SQS ARN,
// arn:aws:sqs:REGION:ACCOUNT:NAME. The embedded SQS is one.
type notifier interface {
	notify(queueARN, body string) error
}

// s3Service is the embedded S3: gofakes3 over its in-memory backend, plus
// bucket notifications to queues, which gofakes3 does not have.
//
// Requests that change objects (PutObject, CopyObject,
// CompleteMultipartUpload, DeleteObject, DeleteObjects) run one at a time,
// each with the event records it causes, so that the sequencer of a key
// grows in the order its changes took effect and every record is in its
// queue before the client has its answer.
type s3Service struct {
	region  string
	backend *s3mem.Backend
	fake    http.Handler
	queues  notifier
	now     func() time.Time

	mu      sync.Mutex // serialises object changes with their records
	configs map[string]notificationConfiguration
	seq     uint64 // the last sequencer handed out
	ids     uint64 // names queue configurations sent without an Id
}

func newS3(region string, queues notifier) *s3Service {
	backend := s3mem.New()
	return &s3Service{
		region:  region,
		backend: backend,
		fake:    gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server(),
		queues:  queues,
		now:     time.Now,
		configs: map[string]notificationConfiguration{},
	}
}

// ServeHTTP serves S3's REST API with path-style addressing
// (http://host/bucket/key).
func (s *s3Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	switch {
	case bucket == "":
		s.fake.ServeHTTP(w, r)
	case key == "" && q.Has("notification"):
		switch r.Method {
		case http.MethodPut:
			s.putNotification(w, r, bucket)
		case http.MethodGet:
			s.getNotification(w, r, bucket)
		default:
			writeS3Error(w, r, http.StatusMethodNotAllowed, "MethodNotAllowed", "The specified method is not allowed against this resource.", bucket)
		}
	case key == "" && r.Method == http.MethodDelete && !subresource(q):
		s.mu.Lock()
		defer s.mu.Unlock()
		rec := newResponseBuffer()
		s.fake.ServeHTTP(rec, r)
		if rec.ok() {
			delete(s.configs, bucket)
		}
		rec.copyTo(w)
	case key == "" && r.Method == http.MethodPost && q.Has("delete"):
		s.change(w, r, bucket, "", deleteMulti)
	case key != "" && r.Method == http.MethodPut && !q.Has("uploadId") && !subresource(q):
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			s.change(w, r, bucket, key, copyObject)
		} else {
			s.change(w, r, bucket, key, putObject)
		}
	case key != "" && r.Method == http.MethodPost && q.Get("uploadId") != "":
		s.change(w, r, bucket, key, completeUpload)
	case key != "" && r.Method == http.MethodDelete && q.Get("uploadId") == "" && !subresource(q):
		s.change(w, r, bucket, key, deleteObject)
	case key != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !q.Has("uploadId") &&
		(r.Header.Get("If-Match") != "" || r.Header.Get("If-Unmodified-Since") != ""):
		if !s.preconditionFailed(w, r, bucket, key) {
			s.fake.ServeHTTP(w, r)
		}
	default:
		s.fake.ServeHTTP(w, r)
	}
}

// preconditionFailed answers 412 PreconditionFailed to a GET or HEAD whose
// If-Match or If-Unmodified-Since does not hold, which gofakes3 leaves
// unchecked. As in S3, the condition is checked before the range, and
// If-Match, when present, decides alone.
func (s *s3Service) preconditionFailed(w http.ResponseWriter, r *http.Request, bucket, key string) bool {
	var obj *gofakes3.Object
	var err error
	if v := r.URL.Query().Get("versionId"); v != "" && v != "null" {
		obj, err = s.backend.HeadObjectVersion(bucket, key, gofakes3.VersionID(v))
	} else {
		obj, err = s.backend.HeadObject(bucket, key)
	}
	if err != nil {
		return false // gofakes3 answers for a missing bucket, key or version
	}
	_ = obj.Contents.Close()
	ok := true
	if m := r.Header.Get("If-Match"); m != "" {
		etag := gofakes3.FormatETag(obj.Hash)
		ok = false
		for _, want := range strings.Split(m, ",") {
			want = strings.TrimSpace(want)
			if want == "*" || want == etag || `"`+want+`"` == etag {
				ok = true
			}
		}
	} else if since, err := http.ParseTime(r.Header.Get("If-Unmodified-Since")); err == nil {
		if mod, err := http.ParseTime(obj.Metadata["Last-Modified"]); err == nil && mod.After(since) {
			ok = false
		}
	}
	if !ok {
		writeS3Error(w, r, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", "")
	}
	return !ok
}

// subresource reports whether the query names a subresource of an object
// (its tags, ACL, ...) rather than the object itself.
func subresource(q map[string][]string) bool {
	for k := range q {
		switch k {
		case "versionId", "x-id":
		default:
			return true
		}
	}
	return false
}

type change int

const (
	putObject change = iota
	copyObject
	completeUpload
	deleteObject
	deleteMulti
)

// change serves a request that changes objects and sends the records it
// causes before the client gets its answer.
func (s *s3Service) change(w http.ResponseWriter, r *http.Request, bucket, key string, c change) {
	// Read the body before taking the lock, so that a slow client does not
	// hold up the others.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away; there is no one to answer
	}
	r.Body = io.NopCloser(bytes.NewReader(body))

	s.mu.Lock()
	defer s.mu.Unlock()
	rec := newResponseBuffer()
	s.fake.ServeHTTP(rec, r)
	if rec.ok() {
		if cfg, ok := s.configs[bucket]; ok && len(cfg.QueueConfigurations) > 0 {
			for _, ev := range s.events(bucket, key, c, r.URL.Query().Has("versionId"), body, rec) {
				s.publish(bucket, cfg, ev, rec.Header().Get("x-amz-request-id"))
			}
		} else {
			s.seq++ // the key changed all the same
		}
	}
	rec.copyTo(w)
}

// objectEvent is one change of one object.
type objectEvent struct {
	name      string // "ObjectCreated:Put", without the "s3:" prefix
	key       string
	size      int64
	etag      string // without quotes
	versionID string
	created   bool
}

// events lists the changes that a successful request made.
// byVersion says the request named a version of the object.
// versioned: the bucket's versioning is enabled. gofakes3's memory backend keeps a version
// id for every object even when it is not; S3's records carry one only when it is.
func (s *s3Service) versioned(bucket string) bool {
	v, err := s.backend.VersioningConfiguration(bucket)
	return err == nil && v.Enabled()
}

func (s *s3Service) events(bucket, key string, c change, byVersion bool, reqBody []byte, rec *responseBuffer) []objectEvent {
	switch c {
	case putObject, copyObject, completeUpload:
		ev := objectEvent{key: key, created: true, versionID: rec.Header().Get("x-amz-version-id")}
		switch c {
		case putObject:
			ev.name = "ObjectCreated:Put"
		case copyObject:
			ev.name = "ObjectCreated:Copy"
			ev.versionID = "" // gofakes3 answers with the source's version
		case completeUpload:
			ev.name = "ObjectCreated:CompleteMultipartUpload"
		}
		// The ETag is the one GET and HEAD report, so that a reader can
		// fetch the object with If-Match. (gofakes3 answers a multipart
		// completion with S3's "-N" ETag but reports the MD5 of the whole
		// object afterwards.)
		var obj *gofakes3.Object
		var err error
		if ev.versionID != "" {
			obj, err = s.backend.HeadObjectVersion(bucket, key, gofakes3.VersionID(ev.versionID))
		} else {
			obj, err = s.backend.HeadObject(bucket, key)
		}
		if err == nil {
			_ = obj.Contents.Close()
			ev.size = obj.Size
			if ev.versionID == "" && s.versioned(bucket) {
				ev.versionID = string(obj.VersionID)
			}
			// s3mem gives every object a version; S3 names one only in a
			// bucket whose versioning was ever turned on ("null" while it
			// is suspended).
			switch v, _ := s.backend.VersioningConfiguration(bucket); v.Status {
			case gofakes3.VersioningEnabled:
			case gofakes3.VersioningSuspended:
				ev.versionID = "null"
			default:
				ev.versionID = ""
			}
			ev.etag = strings.Trim(gofakes3.FormatETag(obj.Hash), `"`)
		}
		return []objectEvent{ev}
	case deleteObject:
		ev := objectEvent{key: key, name: "ObjectRemoved:Delete", versionID: rec.Header().Get("x-amz-version-id")}
		if rec.Header().Get("x-amz-delete-marker") == "true" && !byVersion {
			ev.name = "ObjectRemoved:DeleteMarkerCreated"
		}
		return []objectEvent{ev}
	case deleteMulti:
		var in gofakes3.DeleteRequest
		var out gofakes3.MultiDeleteResult
		if xml.Unmarshal(reqBody, &in) != nil || xml.Unmarshal(rec.body.Bytes(), &out) != nil {
			return nil
		}
		failed := map[string]bool{}
		for _, e := range out.Error {
			failed[e.Key] = true
		}
		marker := s.versioned(bucket)
		var evs []objectEvent
		for _, o := range in.Objects {
			if failed[o.Key] {
				continue
			}
			ev := objectEvent{key: o.Key, name: "ObjectRemoved:Delete", versionID: o.VersionID}
			if marker && o.VersionID == "" {
				ev.name = "ObjectRemoved:DeleteMarkerCreated"
			}
			evs = append(evs, ev)
		}
		return evs
	}
	return nil
}

// publish sends the record of ev to every queue configured for it, each
// record in a message of its own, as S3 does.
func (s *s3Service) publish(bucket string, cfg notificationConfiguration, ev objectEvent, requestID string) {
	s.seq++
	seq := fmt.Sprintf("%016X", s.seq)
	for _, qc := range cfg.QueueConfigurations {
		if !qc.matches(ev.name, ev.key) {
			continue
		}
		obj := eventObject{Key: eventKey(ev.key), Sequencer: seq, VersionID: ev.versionID}
		if ev.created {
			obj.Size = &ev.size
			obj.ETag = ev.etag
		}
		body, err := json.Marshal(eventMessage{Records: []eventRecord{{
			EventVersion:      "2.1",
			EventSource:       "aws:s3",
			AWSRegion:         s.region,
			EventTime:         s.now().UTC().Format("2006-01-02T15:04:05.000Z"),
			EventName:         ev.name,
			UserIdentity:      principal{PrincipalID: localPrincipal},
			RequestParameters: map[string]string{"sourceIPAddress": "127.0.0.1"},
			ResponseElements:  map[string]string{"x-amz-request-id": requestID, "x-amz-id-2": requestID},
			S3: eventS3{
				SchemaVersion:   "1.0",
				ConfigurationID: qc.ID,
				Bucket: eventBucket{
					Name:          bucket,
					OwnerIdentity: principal{PrincipalID: localPrincipal},
					ARN:           "arn:aws:s3:::" + bucket,
				},
				Object: obj,
			},
		}}})
		if err != nil {
			continue // cannot happen: the values are plain strings and numbers
		}
		// S3 delivers notifications on its own time and drops those whose
		// queue has gone: the client's request has succeeded regardless.
		_ = s.queues.notify(qc.Queue, string(body))
	}
}

// localPrincipal stands for the owner of everything in the embedded S3.
const localPrincipal = "LOCAL"

type eventMessage struct {
	Records []eventRecord `json:"Records"`
}

type eventRecord struct {
	EventVersion      string            `json:"eventVersion"`
	EventSource       string            `json:"eventSource"`
	AWSRegion         string            `json:"awsRegion"`
	EventTime         string            `json:"eventTime"`
	EventName         string            `json:"eventName"`
	UserIdentity      principal         `json:"userIdentity"`
	RequestParameters map[string]string `json:"requestParameters"`
	ResponseElements  map[string]string `json:"responseElements"`
	S3                eventS3           `json:"s3"`
}

type principal struct {
	PrincipalID string `json:"principalId"`
}

type eventS3 struct {
	SchemaVersion   string      `json:"s3SchemaVersion"`
	ConfigurationID string      `json:"configurationId"`
	Bucket          eventBucket `json:"bucket"`
	Object          eventObject `json:"object"`
}

type eventBucket struct {
	Name          string    `json:"name"`
	OwnerIdentity principal `json:"ownerIdentity"`
	ARN           string    `json:"arn"`
}

type eventObject struct {
	Key       string `json:"key"`
	Size      *int64 `json:"size,omitempty"`
	ETag      string `json:"eTag,omitempty"`
	VersionID string `json:"versionId,omitempty"`
	Sequencer string `json:"sequencer"`
}

// eventKey encodes an object key as S3 writes it in event records: form
// encoding (a space is "+", "+" itself is "%2B"), every byte outside
// A-Z a-z 0-9 - _ . * escaped as %XX, except "/", which AWS leaves as is.
func eventKey(key string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '*', c == '/':
			b.WriteByte(c)
		case c == ' ':
			b.WriteByte('+')
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// writeS3Error answers with S3's XML error document.
func writeS3Error(w http.ResponseWriter, r *http.Request, status int, code, message, bucket string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	type s3Error struct {
		XMLName    xml.Name `xml:"Error"`
		Code       string   `xml:"Code"`
		Message    string   `xml:"Message"`
		BucketName string   `xml:"BucketName,omitempty"`
		RequestID  string   `xml:"RequestId"`
	}
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(s3Error{Code: code, Message: message, BucketName: bucket, RequestID: w.Header().Get("x-amz-request-id")})
}
