package s3event

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/palleto/palleto/internal/awstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(awstest.Main(m)) }

// s3Body builds an S3 notification whose records have the given event names
// and (still encoded) keys.
func s3Body(t testing.TB, recs ...[2]string) string {
	t.Helper()
	type obj struct {
		Key       string `json:"key"`
		Size      int64  `json:"size"`
		ETag      string `json:"eTag"`
		Sequencer string `json:"sequencer"`
	}
	var rs []any
	for i, r := range recs {
		rs = append(rs, map[string]any{
			"eventVersion": "2.1",
			"eventSource":  "aws:s3",
			"eventTime":    "2024-05-06T07:08:09.123Z",
			"eventName":    r[0],
			"s3": map[string]any{
				"bucket": map[string]any{"name": "bkt"},
				"object": obj{Key: r[1], Size: int64(10 + i), ETag: "e", Sequencer: "0A"},
			},
		})
	}
	b, err := json.Marshal(map[string]any{"Records": rs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// snsWrap wraps body the way SNS delivers it to a queue without raw delivery.
func snsWrap(t testing.TB, body string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{
		"Type":      "Notification",
		"MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
		"TopicArn":  "arn:aws:sns:us-east-1:123456789012:t",
		"Subject":   "Amazon S3 Notification",
		"Message":   body,
		"Timestamp": "2024-05-06T07:08:09.999Z",
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var t0 = time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)

func obj(key string, size int64) Object {
	return Object{Bucket: "bkt", Key: key, ETag: "e", Sequencer: "0A", EventName: "ObjectCreated:Put", Size: size, EventTime: t0}
}

// The AWS documentation's example notification.
const awsDocBody = `{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-west-2",
"eventTime":"1970-01-01T00:00:00.000Z","eventName":"s3:ObjectCreated:Put",
"userIdentity":{"principalId":"AIDAJDPLRKLG7UEXAMPLE"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},
"responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
"s3":{"s3SchemaVersion":"1.0","configurationId":"testConfigRule",
"bucket":{"name":"amzn-s3-demo-bucket","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},"arn":"arn:aws:s3:::amzn-s3-demo-bucket"},
"object":{"key":"HappyFace.jpg","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e","versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko","sequencer":"0055AED6DCD90281E5"}}}]}`

// The AWS documentation's example EventBridge event.
const ebDocBody = `{"version":"0","id":"17793124-05d4-b198-2fde-7ededc63b103","detail-type":"Object Created",
"source":"aws.s3","account":"111122223333","time":"2021-11-12T00:00:00Z","region":"ca-central-1",
"resources":["arn:aws:s3:::amzn-s3-demo-bucket1"],
"detail":{"version":"0","bucket":{"name":"amzn-s3-demo-bucket1"},
"object":{"key":"example-key","size":5,"etag":"b1946ac92492d2347c6235b4d2611184","version-id":"IYV3p45BT0ac8hjHg1houSdS1a.Mro8e","sequencer":"617f08299329d189"},
"request-id":"N4N7GDK58NMKJ12R","requester":"123456789012","source-ip-address":"1.2.3.4","reason":"PutObject"}}`

// Bodies received from moto_server 5.2.1 (S3 → SQS, S3 → SNS → SQS,
// S3 → EventBridge → SQS) after putting the key "dir/a b+c%2B ü/../x.gz".
const (
	motoS3Body  = `{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-21T14:45:50.372109", "eventName": "ObjectCreated:Put", "s3": {"s3SchemaVersion": "1.0", "configurationId": "vixIMdSdHUAZy6y4x4f0yziOhwz24Tq56gZIwurKqxLnewDp92", "bucket": {"name": "bkt-one", "arn": "arn:aws:s3:::bkt-one"}, "object": {"key": "dir%2Fa+b%2Bc%252B+%C3%BC%2F..%2Fx.gz", "size": 6, "eTag": "b1946ac92492d2347c6235b4d2611184"}}}]}`
	motoRemoved = `{"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-21T14:45:50.382556", "eventName": "ObjectRemoved:Delete", "s3": {"s3SchemaVersion": "1.0", "configurationId": "vixIMdSdHUAZy6y4x4f0yziOhwz24Tq56gZIwurKqxLnewDp92", "bucket": {"name": "bkt-one", "arn": "arn:aws:s3:::bkt-one"}, "object": {"key": "dir%2Fa+b%2Bc%252B+%C3%BC%2F..%2Fx.gz", "size": 6, "eTag": "b1946ac92492d2347c6235b4d2611184"}}}]}`
	motoTest    = `{"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-11-21T14:45:50.272401", "Bucket": "bkt-one"}`
	motoSNSTest = `{
  "Message": "{\"Service\": \"Amazon S3\", \"Event\": \"s3:TestEvent\", \"Time\": \"2026-11-21T14:45:50.272598\", \"Bucket\": \"bkt-one\"}",
  "MessageId": "2e2ba6e2-4d47-40b9-8795-a0529fb324bb",
  "SignatureVersion": "2",
  "Timestamp": "2026-11-21T14:45:50.364Z",
  "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
  "Type": "Notification"
}`
	motoSNS = `{
  "Message": "{\"Records\": [{\"eventVersion\": \"2.1\", \"eventSource\": \"aws:s3\", \"awsRegion\": \"us-east-1\", \"eventTime\": \"2026-11-21T14:45:50.372452\", \"eventName\": \"ObjectCreated:Put\", \"s3\": {\"s3SchemaVersion\": \"1.0\", \"configurationId\": \"JZbgwfTO04mmMfqGjeZ5K5ELzLjCBg9zdz0kfdj9LlxJcugBI8\", \"bucket\": {\"name\": \"bkt-one\", \"arn\": \"arn:aws:s3:::bkt-one\"}, \"object\": {\"key\": \"dir%2Fa+b%2Bc%252B+%C3%BC%2F..%2Fx.gz\", \"size\": 6, \"eTag\": \"b1946ac92492d2347c6235b4d2611184\"}}}]}",
  "MessageId": "37938319-73aa-4ba1-86b0-9dfcc364f207",
  "Timestamp": "2026-11-21T14:45:50.373Z",
  "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
  "Type": "Notification"
}`
	motoEB        = `{"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012", "time": "2026-11-21T14:45:50Z", "region": "us-east-1", "resources": ["arn:aws:s3:::bkt-one"], "detail": {"version": "0", "bucket": {"name": "bkt-one"}, "object": {"key": "dir/a b+c%2B \u00fc/../x.gz", "size": 6, "eTag": "b1946ac92492d2347c6235b4d2611184", "version-id": "null", "sequencer": "617f08299329d189"}, "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "source-ip-address": "1.2.3.4", "reason": "ObjectCreated"}}`
	motoEBTags    = `{"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Tags Added", "source": "aws.s3", "account": "123456789012", "time": "2026-11-21T14:45:50Z", "region": "us-east-1", "resources": ["arn:aws:s3:::bkt-one"], "detail": {"version": "0", "bucket": {"name": "bkt-one"}, "object": {"key": "dir/a b+c%2B \u00fc/../x.gz", "size": 6, "eTag": "b1946ac92492d2347c6235b4d2611184", "version-id": "null", "sequencer": "617f08299329d189"}, "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "source-ip-address": "1.2.3.4", "reason": "ObjectTagging"}}`
	motoEBUnixTim = `{"detail-type": "Object Created", "source": "aws.s3", "time": 1763736350.5, "detail": {"bucket": {"name": "bkt-one"}, "object": {"key": "k", "size": 6, "eTag": "e", "version-id": null, "sequencer": "617f08299329d189"}, "reason": "ObjectCreated"}}`
)

// motoKey is the key that the moto bodies above announce.
const motoKey = "dir/a b+c%2B ü/../x.gz"

type parseCase struct {
	name string
	body string
	want Notification
}

func parseCases(t testing.TB) []parseCase {
	motoObj := Object{Bucket: "bkt-one", Key: motoKey, ETag: "b1946ac92492d2347c6235b4d2611184", EventName: "ObjectCreated:Put", Size: 6}
	motoAt := func(o Object, usec int) Object {
		o.EventTime = time.Date(2026, 11, 21, 14, 45, 50, usec*1000, time.UTC)
		return o
	}
	motoEBObj := motoObj
	motoEBObj.Sequencer = "617f08299329d189"
	motoEBObj.EventName = "ObjectCreated:ObjectCreated"
	motoEBObj.EventTime = time.Date(2026, 11, 21, 14, 45, 50, 0, time.UTC)

	return []parseCase{
		{"aws doc example", awsDocBody, Notification{Objects: []Object{{
			Bucket: "amzn-s3-demo-bucket", Key: "HappyFace.jpg", VersionID: "096fKKXTRTtl3on89fVO.nfljtsv6qko",
			ETag: "d41d8cd98f00b204e9800998ecf8427e", Sequencer: "0055AED6DCD90281E5", EventName: "ObjectCreated:Put",
			Size: 1024, EventTime: time.Unix(0, 0).UTC(),
		}}}},
		{"several records", s3Body(t,
			[2]string{"ObjectCreated:Put", "a.gz"},
			[2]string{"s3:ObjectRemoved:Delete", "b.gz"},
			[2]string{"ObjectCreated:Put", "c.gz"},
			[2]string{"ObjectRestore:Completed", "d.gz"}),
			Notification{Objects: []Object{obj("a.gz", 10), obj("c.gz", 12)}, Skipped: []string{"ObjectRemoved:Delete", "ObjectRestore:Completed"}}},
		{"only removed", s3Body(t, [2]string{"ObjectRemoved:DeleteMarkerCreated", "x"}),
			Notification{Skipped: []string{"ObjectRemoved:DeleteMarkerCreated"}}},
		{"s3 prefix stripped", s3Body(t, [2]string{"s3:ObjectCreated:Put", "k"}), Notification{Objects: []Object{obj("k", 10)}}},
		{"plus is space", s3Body(t, [2]string{"ObjectCreated:Put", "red+flower.jpg"}), Notification{Objects: []Object{obj("red flower.jpg", 10)}}},
		{"%20 is space too", s3Body(t, [2]string{"ObjectCreated:Put", "red%20flower.jpg"}), Notification{Objects: []Object{obj("red flower.jpg", 10)}}},
		{"%2B is plus", s3Body(t, [2]string{"ObjectCreated:Put", "c%2B%2B+notes"}), Notification{Objects: []Object{obj("c++ notes", 10)}}},
		{"%25 is percent", s3Body(t, [2]string{"ObjectCreated:Put", "100%25%2Bx"}), Notification{Objects: []Object{obj("100%+x", 10)}}},
		{"escaped unicode", s3Body(t, [2]string{"ObjectCreated:Put", "caf%C3%A9/%E6%97%A5%E6%9C%AC.txt"}), Notification{Objects: []Object{obj("café/日本.txt", 10)}}},
		{"raw unicode", s3Body(t, [2]string{"ObjectCreated:Put", "café/日本.txt"}), Notification{Objects: []Object{obj("café/日本.txt", 10)}}},
		{"dot dot kept", s3Body(t, [2]string{"ObjectCreated:Put", "..%2F..%2Fetc%2Fpasswd"}), Notification{Objects: []Object{obj("../../etc/passwd", 10)}}},
		{"dot dot raw slashes", s3Body(t, [2]string{"ObjectCreated:Put", "a/../../b"}), Notification{Objects: []Object{obj("a/../../b", 10)}}},
		{"leading slash", s3Body(t, [2]string{"ObjectCreated:Put", "/abs/path"}), Notification{Objects: []Object{obj("/abs/path", 10)}}},
		{"leading escaped slash", s3Body(t, [2]string{"ObjectCreated:Put", "%2F%2Fdouble"}), Notification{Objects: []Object{obj("//double", 10)}}},
		{"control and NUL kept", s3Body(t, [2]string{"ObjectCreated:Put", "a%00b%0Ac"}), Notification{Objects: []Object{obj("a\x00b\nc", 10)}}},
		{"test event", `{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-05-06T07:08:09.123Z","Bucket":"bkt","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}`,
			Notification{Test: true}},
		{"sns wrapped", snsWrap(t, s3Body(t, [2]string{"ObjectCreated:Put", "a+b"}, [2]string{"ObjectRemoved:Delete", "c"})),
			Notification{Objects: []Object{obj("a b", 10)}, Skipped: []string{"ObjectRemoved:Delete"}}},
		{"sns wrapped test event", snsWrap(t, `{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"bkt"}`), Notification{Test: true}},
		{"sns wrapped eventbridge", snsWrap(t, ebDocBody), Notification{Objects: []Object{{
			Bucket: "amzn-s3-demo-bucket1", Key: "example-key", VersionID: "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
			ETag: "b1946ac92492d2347c6235b4d2611184", Sequencer: "617f08299329d189", EventName: "ObjectCreated:Put",
			Size: 5, EventTime: time.Date(2021, 11, 12, 0, 0, 0, 0, time.UTC),
		}}}},
		{"eventbridge doc example", ebDocBody, Notification{Objects: []Object{{
			Bucket: "amzn-s3-demo-bucket1", Key: "example-key", VersionID: "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
			ETag: "b1946ac92492d2347c6235b4d2611184", Sequencer: "617f08299329d189", EventName: "ObjectCreated:Put",
			Size: 5, EventTime: time.Date(2021, 11, 12, 0, 0, 0, 0, time.UTC),
		}}}},
		{"eventbridge keys are not decoded", `{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"a+b%2B c/../d:e","size":1},"reason":"CompleteMultipartUpload"}}`,
			Notification{Objects: []Object{{Bucket: "b", Key: "a+b%2B c/../d:e", EventName: "ObjectCreated:CompleteMultipartUpload", Size: 1}}}},
		{"eventbridge unknown reason", `{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"k"},"reason":"RestoreObject"}}`,
			Notification{Objects: []Object{{Bucket: "b", Key: "k", EventName: "ObjectCreated:RestoreObject"}}}},
		{"eventbridge deleted", `{"detail-type":"Object Deleted","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"k"},"reason":"DeleteObject","deletion-type":"Permanently Deleted"}}`,
			Notification{Skipped: []string{"Object Deleted"}}},
		{"moto s3", motoS3Body, Notification{Objects: []Object{motoAt(motoObj, 372109)}}},
		{"moto removed", motoRemoved, Notification{Skipped: []string{"ObjectRemoved:Delete"}}},
		{"moto test event", motoTest, Notification{Test: true}},
		{"moto sns test event", motoSNSTest, Notification{Test: true}},
		{"moto sns", motoSNS, Notification{Objects: []Object{motoAt(motoObj, 372452)}}},
		{"moto eventbridge", motoEB, Notification{Objects: []Object{motoEBObj}}},
		{"moto eventbridge tags", motoEBTags, Notification{Skipped: []string{"Object Tags Added"}}},
		{"moto eventbridge unix time", motoEBUnixTim, Notification{Objects: []Object{{
			Bucket: "bkt-one", Key: "k", ETag: "e", Sequencer: "617f08299329d189", EventName: "ObjectCreated:ObjectCreated",
			Size: 6, EventTime: time.Unix(1763736350, 5e8).UTC(),
		}}}},
		{"unknown time layout is zero", strings.Replace(s3Body(t, [2]string{"ObjectCreated:Put", "k"}), "2024-05-06T07:08:09.123Z", "yesterday", 1),
			Notification{Objects: []Object{{Bucket: "bkt", Key: "k", ETag: "e", Sequencer: "0A", EventName: "ObjectCreated:Put", Size: 10}}}},
	}
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got.Test != tc.want.Test {
				t.Errorf("Test = %v, want %v", got.Test, tc.want.Test)
			}
			if !slices.Equal(got.Skipped, tc.want.Skipped) {
				t.Errorf("Skipped = %q, want %q", got.Skipped, tc.want.Skipped)
			}
			if !slices.Equal(got.Objects, tc.want.Objects) {
				t.Errorf("Objects:\n got %+v\nwant %+v", got.Objects, tc.want.Objects)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     string
		envelope string
		record   int
	}{
		{"empty", ``, "", -1},
		{"not json", `hello`, "", -1},
		{"truncated", `{"Records":[`, "", -1},
		{"json array", `[{"Records":[]}]`, "", -1},
		{"json null", `null`, "", -1},
		{"json string", `"Records"`, "", -1},
		{"empty object", `{}`, "", -1},
		{"other json", `{"hello":"world"}`, "", -1},
		{"trailing garbage", awsDocBody + `x`, "", -1},
		{"records null", `{"Records":null}`, "s3", -1},
		{"records not a list", `{"Records":{"eventName":"ObjectCreated:Put"}}`, "s3", -1},
		{"records empty", `{"Records":[]}`, "s3", -1},
		{"record not an object", `{"Records":[1]}`, "s3", 0},
		{"no event name", `{"Records":[{"s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}`, "s3", 0},
		{"no s3 section", `{"Records":[{"eventName":"ObjectCreated:Put"}]}`, "s3", 0},
		{"no bucket", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"object":{"key":"k"}}}]}`, "s3", 0},
		{"no key", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"size":1}}}]}`, "s3", 0},
		{"empty key", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":""}}}]}`, "s3", 0},
		{"key not a string", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":7}}}]}`, "s3", 0},
		{"bad escape", s3Body(t, [2]string{"ObjectCreated:Put", "ok"}, [2]string{"ObjectCreated:Put", "a%zzb"}), "s3", 1},
		{"truncated escape", s3Body(t, [2]string{"ObjectCreated:Put", "abc%2"}), "s3", 0},
		{"lone percent", s3Body(t, [2]string{"ObjectCreated:Put", "100%"}), "s3", 0},
		{"not utf-8", s3Body(t, [2]string{"ObjectCreated:Put", "a%FFb"}), "s3", 0},
		{"negative size", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k","size":-1}}}]}`, "s3", 0},
		{"fractional size", `{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k","size":1.5}}}]}`, "s3", 0},
		{"unknown service event", `{"Service":"Amazon S3","Event":"s3:SomethingElse"}`, "", -1},
		{"sns subscription confirmation", `{"Type":"SubscriptionConfirmation","Message":"You have chosen to subscribe","SubscribeURL":"https://example.com"}`, "sns", -1},
		{"sns without message", `{"Type":"Notification","MessageId":"x"}`, "sns", -1},
		{"sns message not json", snsWrap(t, "hello"), "sns", -1},
		{"sns message other json", snsWrap(t, `{"hello":1}`), "sns", -1},
		{"sns inside sns", snsWrap(t, snsWrap(t, awsDocBody)), "sns", -1},
		{"sns bad record", snsWrap(t, s3Body(t, [2]string{"ObjectCreated:Put", "%"})), "s3", 0},
		{"eventbridge other source", `{"detail-type":"Object Created","source":"aws.ec2","detail":{"bucket":{"name":"b"},"object":{"key":"k"}}}`, "eventbridge", -1},
		{"eventbridge no detail-type", `{"source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"k"}}}`, "eventbridge", -1},
		{"eventbridge no detail", `{"detail-type":"Object Created","source":"aws.s3"}`, "eventbridge", -1},
		{"eventbridge detail not object", `{"detail-type":"Object Created","source":"aws.s3","detail":[1]}`, "eventbridge", -1},
		{"eventbridge no bucket", `{"detail-type":"Object Created","source":"aws.s3","detail":{"object":{"key":"k"}}}`, "eventbridge", -1},
		{"eventbridge no key", `{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{}}}`, "eventbridge", -1},
		{"eventbridge negative size", `{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"b"},"object":{"key":"k","size":-5}}}`, "eventbridge", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Parse([]byte(tc.body))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", n)
			}
			if !errors.Is(err, ErrNotNotification) {
				t.Errorf("error %v does not match ErrNotNotification", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if pe.Envelope != tc.envelope || pe.Record != tc.record {
				t.Errorf("envelope, record = %q, %d; want %q, %d (%v)", pe.Envelope, pe.Record, tc.envelope, tc.record, err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "s3event: ") {
				t.Errorf("message %q is not one line starting with the package name", msg)
			}
			if len(n.Objects) != 0 || len(n.Skipped) != 0 || n.Test {
				t.Errorf("Parse returned %+v along with the error", n)
			}
		})
	}
}

func TestParseErrorUnwrapsCause(t *testing.T) {
	_, err := Parse([]byte(`{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`))
	var ee url.EscapeError
	if !errors.As(err, &ee) {
		t.Fatalf("error %v does not wrap the url.EscapeError", err)
	}
	_, err = Parse([]byte(`{"Records":`))
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("error %v does not wrap the *json.SyntaxError", err)
	}
}

func TestCompareSequencer(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"0055AED6DCD90281E5", "0055AED6DCD90281E5", 0},
		{"0055AED6DCD90281E5", "0055AED6DCD90281E6", -1},
		{"0055AED6DCD90281F0", "0055AED6DCD90281E6", 1},
		{"0055aed6dcd90281e5", "0055AED6DCD90281E5", 0},
		// Right padding: the shorter is a prefix of the longer, extended
		// with zeros.
		{"0055AED6DCD90281E5", "0055AED6DCD90281E500", 0},
		{"0055AED6DCD90281E5", "0055AED6DCD90281E501", -1},
		{"0056", "0055AED6DCD90281E5", 1},
		{"", "01", -1},
		{"", "", 0},
		{"", "000", 0},
	} {
		if got := CompareSequencer(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareSequencer(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareSequencer(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareSequencer(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases(f) {
		f.Add([]byte(tc.body))
	}
	f.Add([]byte(`{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`))
	f.Add([]byte(`{"Type":"Notification","Message":"{\"Type\":\"Notification\",\"Message\":\"{}\"}"}`))
	f.Add([]byte(`{"detail-type":"Object Created","source":"aws.s3","time":1e300,"detail":{"bucket":{"name":"b"},"object":{"key":"k"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := Parse(body)
		// The one-pass reading gives what reading record by record gives.
		n2, err2 := parseEach(body, true)
		if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(n, n2) {
			t.Fatalf("Parse = %+v, %v; record by record: %+v, %v", n, err, n2, err2)
		}
		if err != nil {
			var pe *ParseError
			if !errors.Is(err, ErrNotNotification) || !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError matching ErrNotNotification", err)
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error message %q spans lines", err)
			}
			return
		}
		if !n.Test && len(n.Objects) == 0 && len(n.Skipped) == 0 {
			t.Fatalf("Parse returned an empty notification without error")
		}
		for _, o := range n.Objects {
			if o.Bucket == "" || o.Key == "" || !utf8.ValidString(o.Key) || o.Size < 0 {
				t.Fatalf("Parse returned an unusable object %+v", o)
			}
			if !strings.HasPrefix(o.EventName, "ObjectCreated:") {
				t.Fatalf("object with event %q", o.EventName)
			}
		}
	})
}

// FuzzKeyRoundTrip checks that any key, encoded the way AWS (slashes kept) or
// moto (slashes escaped) encode it, comes back as it was, and that
// EventBridge keys come back untouched.
func FuzzKeyRoundTrip(f *testing.F) {
	for _, k := range []string{"a", "red flower.jpg", "c++ notes", "100%", "../x", "/abs", "ü/日本", "a%2Bb", "+", " "} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if key == "" || !utf8.ValidString(key) {
			t.Skip()
		}
		enc := url.QueryEscape(key)
		for _, encoded := range []string{enc, strings.ReplaceAll(enc, "%2F", "/")} {
			n, err := Parse([]byte(s3Body(t, [2]string{"ObjectCreated:Put", encoded})))
			if err != nil {
				t.Fatalf("Parse of key %q encoded as %q: %v", key, encoded, err)
			}
			if len(n.Objects) != 1 || n.Objects[0].Key != key {
				t.Fatalf("key %q encoded as %q: got %+v", key, encoded, n.Objects)
			}
		}
		eb, err := json.Marshal(map[string]any{
			"detail-type": "Object Created", "source": "aws.s3",
			"detail": map[string]any{"bucket": map[string]any{"name": "b"}, "object": map[string]any{"key": key}},
		})
		if err != nil {
			t.Fatal(err)
		}
		n, err := Parse(eb)
		if err != nil {
			t.Fatalf("Parse of EventBridge key %q: %v", key, err)
		}
		if len(n.Objects) != 1 || n.Objects[0].Key != key {
			t.Fatalf("EventBridge key %q: got %+v", key, n.Objects)
		}
	})
}

func TestLongKeyClippedInError(t *testing.T) {
	key := strings.Repeat("k", 5000) + "%zz"
	_, err := Parse([]byte(s3Body(t, [2]string{"ObjectCreated:Put", key})))
	if !errors.Is(err, ErrNotNotification) {
		t.Fatalf("err = %v, want ErrNotNotification", err)
	}
	if n := len(err.Error()); n > 400 {
		t.Errorf("message of %d bytes for a bad key of %d", n, len(key))
	}
}

// Reading an S3 notification in one pass, against reading it record by record (what Parse
// did before and still does for a body that does not decode in one pass).
//
//	go test -run '^$' -bench Parse ./s3event
func BenchmarkParse(b *testing.B) {
	body := []byte(awsDocBody)
	for _, c := range []struct {
		name  string
		parse func([]byte, bool) (Notification, error)
	}{{"one pass", parse}, {"record by record", parseEach}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.parse(body, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
