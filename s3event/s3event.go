// Package s3event turns the body of an SQS message into the S3 objects it
// announces.
//
// Parse understands three envelopes:
//
//   - S3's own event notification, {"Records":[...]}, with one or more
//     records. The event name may carry the "s3:" prefix or not; Object and
//     Notification always report it without.
//   - The same notification (or an s3:TestEvent) wrapped by SNS, when the
//     queue is subscribed to a topic without raw message delivery:
//     {"Type":"Notification","Message":"<the notification as a string>"}.
//   - An EventBridge event from source "aws.s3", delivered to the queue by a
//     rule: {"detail-type":"Object Created","detail":{...}}.
//
// Only object creation is work. An s3:TestEvent (sent by S3 when a bucket's
// notification configuration changes) sets Notification.Test, and records of
// any other event (ObjectRemoved:Delete, "Object Deleted", ...) are listed in
// Notification.Skipped: both are facts to acknowledge, not errors.
//
// # Object keys
//
// S3 notifications carry the key URL-encoded with form semantics: a space
// arrives as "+", a plus sign as "%2B", non-ASCII bytes as %XX. Parse decodes
// it, so Object.Key is the key as stored in S3. AWS leaves "/" as is; moto
// escapes it as %2F; both decode to the same key. A key that is not valid
// form encoding, or that decodes to bytes that are not UTF-8 (S3 keys are
// UTF-8), is an error.
//
// EventBridge keys are taken as they come, without decoding. AWS documents
// the EventBridge message without saying either way, and public code
// disagrees (AWS Lambda Powertools for Python and OpenSearch Data Prepper
// form-decode them), but what has been observed points to raw keys: events
// published from real buckets show characters such as ":" unescaped where a
// notification for the same key would carry %3A, and at least one project
// (aws-solutions-library-samples/guidance-for-medialake-on-aws, pull request
// 21) had to stop form-decoding EventBridge keys because keys holding a
// literal "+" turned into spaces. moto_server also sends EventBridge keys
// raw. Decoding a raw key would corrupt every key containing "+" or "%";
// not decoding an encoded one would only fail to find keys that contain
// characters needing escapes, so raw is also the safer mistake.
//
// # Other fields
//
// EventTime is the record's eventTime (S3) or the event's time
// (EventBridge). It is zero when absent or in a layout this package does not
// know: it is informative, and a message should not fail for it. moto writes
// S3 event times without a zone (read as UTC) and may write EventBridge
// times as Unix seconds; both are understood.
//
// VersionID "null" is how S3 names the version of an object written while
// versioning was off or suspended; it is reported as "", like an absent
// version, so that readers fetch the current object.
//
// Sequencer orders the events of one key; see CompareSequencer. moto does not
// send it in S3 notifications, and sends a fixed value in EventBridge events.
package s3event

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrNotNotification is matched (errors.Is) by every error of Parse: the body
// is not an S3 notification in any supported envelope, or is one that names
// an object it cannot identify. Such a message will not get better by being
// retried.
var ErrNotNotification = errors.New("s3event: not an S3 notification")

// ParseError tells why a body was refused. It matches ErrNotNotification.
type ParseError struct {
	// Envelope is "s3", "sns" or "eventbridge" once recognised, else "".
	Envelope string
	// Record is the index of the offending record in an S3 notification, or
	// -1 when the fault is not in one record.
	Record int
	// Reason is a short explanation, without the envelope and record.
	Reason string
	// Err is the underlying error (a JSON or URL decoding error), if any.
	Err error
}

func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("s3event: ")
	if e.Envelope != "" {
		b.WriteString(e.Envelope)
		b.WriteString(" ")
	}
	if e.Record >= 0 {
		fmt.Fprintf(&b, "record %d: ", e.Record)
	} else if e.Envelope != "" {
		b.WriteString("envelope: ")
	}
	b.WriteString(e.Reason)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Is reports whether target is ErrNotNotification.
func (e *ParseError) Is(target error) bool { return target == ErrNotNotification }

// Unwrap returns the underlying decoding error, if any.
func (e *ParseError) Unwrap() error { return e.Err }

// Object is one S3 object announced as created.
type Object struct {
	Bucket    string
	Key       string // decoded: the key as stored in S3
	VersionID string // "" when the bucket is not versioned
	ETag      string
	Sequencer string
	// EventName is the event without the "s3:" prefix, e.g.
	// "ObjectCreated:Put". EventBridge reasons are mapped to the same
	// names where they have one (PutObject is ObjectCreated:Put).
	EventName string
	Size      int64
	EventTime time.Time
}

// Notification is what one SQS message body holds.
type Notification struct {
	// Objects created, in the order of the records.
	Objects []Object
	// Test is set for an s3:TestEvent, which names no object.
	Test bool
	// Skipped holds the event names of records that announce something
	// other than a creation ("ObjectRemoved:Delete", "Object Deleted"), in
	// the order of the records.
	Skipped []string
}

// Parse reads an SQS message body. Every error it returns matches
// ErrNotNotification and is a *ParseError.
func Parse(body []byte) (Notification, error) {
	return parse(body, true)
}

// envelope holds the fields that tell the supported envelopes apart.
// encoding/json matches names without regard to case, which also lets
// "eTag" (moto) fill "etag" (AWS) below.
type envelope struct {
	Records json.RawMessage `json:"Records"`
	others
}

// recordsEnvelope is envelope with its records decoded in the same pass: the
// common case, S3's own notification, read once (see parse).
type recordsEnvelope struct {
	Records []record `json:"Records"`
	others
}

// others are the fields of the envelopes other than S3's own.
type others struct {
	// SNS
	Type    string  `json:"Type"`
	Message *string `json:"Message"`

	// s3:TestEvent
	Service string `json:"Service"`
	Event   string `json:"Event"`

	// EventBridge
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Time       json.RawMessage `json:"time"`
	Detail     json.RawMessage `json:"detail"`
}

// parse reads body in one pass when it is an S3 notification whose records all decode, and
// otherwise as envelope, record by record: the answer is the same either way, and only the
// second tells which record is malformed.
func parse(body []byte, allowSNS bool) (Notification, error) {
	var env recordsEnvelope
	if json.Unmarshal(body, &env) == nil && len(env.Records) > 0 {
		var n Notification
		for i := range env.Records {
			if err := n.add(i, &env.Records[i]); err != nil {
				return Notification{}, err
			}
		}
		return n, nil
	}
	return parseEach(body, allowSNS)
}

// parseEach reads body as envelope, then its records one by one.
func parseEach(body []byte, allowSNS bool) (Notification, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Notification{}, &ParseError{Record: -1, Reason: "body is not a JSON object", Err: err}
	}
	switch {
	case env.Records != nil:
		return parseRecords(env.Records)
	case env.Event != "" || env.Service != "":
		if env.Event != "s3:TestEvent" {
			return Notification{}, &ParseError{Record: -1, Reason: fmt.Sprintf("unknown event %q from service %q", env.Event, env.Service)}
		}
		return Notification{Test: true}, nil
	case env.Type != "" || env.Message != nil:
		if !allowSNS {
			return Notification{}, &ParseError{Envelope: "sns", Record: -1, Reason: "SNS message inside an SNS message"}
		}
		if env.Type != "Notification" {
			return Notification{}, &ParseError{Envelope: "sns", Record: -1, Reason: fmt.Sprintf("message type %q is not Notification", env.Type)}
		}
		if env.Message == nil {
			return Notification{}, &ParseError{Envelope: "sns", Record: -1, Reason: "no Message"}
		}
		n, err := parse([]byte(*env.Message), false)
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) && pe.Envelope == "" {
				pe.Envelope = "sns"
			}
			return Notification{}, err
		}
		return n, nil
	case env.DetailType != "" || env.Detail != nil:
		return parseEventBridge(&env)
	}
	return Notification{}, &ParseError{Record: -1, Reason: "no Records, SNS Message, s3:TestEvent or EventBridge detail"}
}

type record struct {
	EventName string `json:"eventName"`
	EventTime string `json:"eventTime"`
	S3        *struct {
		Bucket struct {
			Name string `json:"name"`
		} `json:"bucket"`
		Object struct {
			Key       *string `json:"key"`
			Size      int64   `json:"size"`
			ETag      string  `json:"eTag"`
			VersionID string  `json:"versionId"`
			Sequencer string  `json:"sequencer"`
		} `json:"object"`
	} `json:"s3"`
}

func parseRecords(raw json.RawMessage) (Notification, error) {
	var recs []json.RawMessage
	if err := json.Unmarshal(raw, &recs); err != nil || recs == nil {
		return Notification{}, &ParseError{Envelope: "s3", Record: -1, Reason: "Records is not a list", Err: err}
	}
	if len(recs) == 0 {
		return Notification{}, &ParseError{Envelope: "s3", Record: -1, Reason: "Records is empty"}
	}
	var n Notification
	for i, rr := range recs {
		var r record
		if err := json.Unmarshal(rr, &r); err != nil {
			return Notification{}, &ParseError{Envelope: "s3", Record: i, Reason: "malformed record", Err: err}
		}
		if err := n.add(i, &r); err != nil {
			return Notification{}, err
		}
	}
	return n, nil
}

// add adds record i to n: an object created, or a skipped event.
func (n *Notification) add(i int, r *record) error {
	fail := func(reason string, err error) error {
		return &ParseError{Envelope: "s3", Record: i, Reason: reason, Err: err}
	}
	name := strings.TrimPrefix(r.EventName, "s3:")
	if name == "" {
		return fail("no eventName", nil)
	}
	if !strings.HasPrefix(name, "ObjectCreated:") {
		n.Skipped = append(n.Skipped, name)
		return nil
	}
	if r.S3 == nil {
		return fail("no s3 section", nil)
	}
	o := r.S3.Object
	if r.S3.Bucket.Name == "" {
		return fail("no bucket name", nil)
	}
	if o.Key == nil || *o.Key == "" {
		return fail("no object key", nil)
	}
	key, err := url.QueryUnescape(*o.Key)
	if err != nil {
		return fail(fmt.Sprintf("object key %q is not form-encoded", clip(*o.Key)), err)
	}
	if reason := checkKey(key); reason != "" {
		return fail(reason, nil)
	}
	if o.Size < 0 {
		return fail(fmt.Sprintf("negative size %d", o.Size), nil)
	}
	n.Objects = append(n.Objects, Object{
		Bucket:    r.S3.Bucket.Name,
		Key:       key,
		VersionID: versionID(o.VersionID),
		ETag:      o.ETag,
		Sequencer: o.Sequencer,
		EventName: name,
		Size:      o.Size,
		EventTime: parseTime(r.EventTime),
	})
	return nil
}

type ebDetail struct {
	Bucket struct {
		Name string `json:"name"`
	} `json:"bucket"`
	Object struct {
		Key       *string `json:"key"`
		Size      int64   `json:"size"`
		ETag      string  `json:"etag"`
		VersionID string  `json:"version-id"`
		Sequencer string  `json:"sequencer"`
	} `json:"object"`
	Reason string `json:"reason"`
}

// ebReasons maps the reasons S3 gives for "Object Created" to the event names
// of its notifications.
var ebReasons = map[string]string{
	"PutObject":               "ObjectCreated:Put",
	"POST Object":             "ObjectCreated:Post",
	"CopyObject":              "ObjectCreated:Copy",
	"CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
}

func parseEventBridge(env *envelope) (Notification, error) {
	fail := func(reason string, err error) (Notification, error) {
		return Notification{}, &ParseError{Envelope: "eventbridge", Record: -1, Reason: reason, Err: err}
	}
	if env.Source != "aws.s3" {
		return fail(fmt.Sprintf("source %q is not aws.s3", env.Source), nil)
	}
	if env.DetailType == "" {
		return fail("no detail-type", nil)
	}
	if env.DetailType != "Object Created" {
		return Notification{Skipped: []string{env.DetailType}}, nil
	}
	var d ebDetail
	if env.Detail == nil {
		return fail("no detail", nil)
	}
	if err := json.Unmarshal(env.Detail, &d); err != nil {
		return fail("malformed detail", err)
	}
	if d.Bucket.Name == "" {
		return fail("no bucket name", nil)
	}
	if d.Object.Key == nil || *d.Object.Key == "" {
		return fail("no object key", nil)
	}
	key := *d.Object.Key
	if reason := checkKey(key); reason != "" {
		return fail(reason, nil)
	}
	if d.Object.Size < 0 {
		return fail(fmt.Sprintf("negative size %d", d.Object.Size), nil)
	}
	name, ok := ebReasons[d.Reason]
	if !ok {
		name = "ObjectCreated:" + d.Reason
	}
	return Notification{Objects: []Object{{
		Bucket:    d.Bucket.Name,
		Key:       key,
		VersionID: versionID(d.Object.VersionID),
		ETag:      d.Object.ETag,
		Sequencer: d.Object.Sequencer,
		EventName: name,
		Size:      d.Object.Size,
		EventTime: parseRawTime(env.Time),
	}}}, nil
}

// checkKey returns why a non-empty decoded key cannot name an S3 object, or "".
func checkKey(key string) string {
	if !utf8.ValidString(key) {
		return fmt.Sprintf("object key %q is not UTF-8", clip(key))
	}
	return ""
}

// CompareSequencer orders two sequencers of events on the same key: -1 if a
// is older than b, 0 if equal, +1 if a is newer. Sequencers of different keys
// are not comparable. Following S3's documentation, the shorter one is padded
// with zeros on the right, then both are compared as strings (hex digits
// without regard to case). Older versions of that documentation said to pad
// on the left; the current one, which this follows, says right. An empty
// sequencer (moto sends none) is older than any other but "0".
func CompareSequencer(a, b string) int {
	// Byte by byte, without allocating: output compares sequencers on every write.
	for i := range max(len(a), len(b)) {
		x, y := seqDigit(a, i), seqDigit(b, i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// seqDigit is s[i] in upper case, or the '0' that pads s on the right.
func seqDigit(s string, i int) byte {
	if i >= len(s) {
		return '0'
	}
	c := s[i]
	if 'a' <= c && c <= 'z' {
		c -= 'a' - 'A'
	}
	return c
}

// clip shortens a key quoted in an error: a message body can hold one of
// hundreds of kilobytes.
func clip(s string) string {
	const n = 128
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func versionID(v string) string {
	if v == "null" {
		return ""
	}
	return v
}

// timeLayouts are tried in order: AWS writes RFC 3339 with milliseconds and
// "Z"; moto writes microseconds and no zone.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
}

func parseTime(s string) time.Time {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

// parseRawTime reads an EventBridge time: a string, or (from moto) a number
// of Unix seconds.
func parseRawTime(raw json.RawMessage) time.Time {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return parseTime(s)
	}
	var f json.Number
	if json.Unmarshal(raw, &f) != nil {
		return time.Time{}
	}
	sec, err := strconv.ParseFloat(f.String(), 64)
	// Beyond ±2^53 seconds the conversion below is meaningless.
	if err != nil || sec < -(1<<53) || sec > 1<<53 {
		return time.Time{}
	}
	whole := int64(sec)
	return time.Unix(whole, int64((sec-float64(whole))*1e9)).UTC()
}
