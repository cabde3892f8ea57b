package local

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func TestSystemAttributes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := inProcess(t)
		ctx := context.Background()
		url := createQueue(t, c, "sys", nil)
		sent := time.Now()
		send(t, c, url, "m")
		time.Sleep(3 * time.Second)
		all := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, VisibilityTimeout: 1,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"}})[0].Attributes
		ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
		want := map[string]string{
			"ApproximateReceiveCount":          "1",
			"SentTimestamp":                    ms(sent),
			"ApproximateFirstReceiveTimestamp": ms(sent.Add(3 * time.Second)),
			"SenderId":                         Account,
		}
		for k, v := range want {
			if all[k] != v {
				t.Errorf("All: %s = %q, want %q (all: %v)", k, all[k], v, all)
			}
		}
		if _, ok := all["SequenceNumber"]; ok {
			t.Errorf("a standard queue's message has a SequenceNumber: %v", all)
		}
		time.Sleep(time.Second)
		// The legacy AttributeNames, one name: only that one.
		one := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, VisibilityTimeout: 1,
			AttributeNames: []types.QueueAttributeName{"ApproximateReceiveCount"}})[0].Attributes
		if len(one) != 1 || one["ApproximateReceiveCount"] != "2" {
			t.Errorf("AttributeNames [ApproximateReceiveCount]: %v", one)
		}
		time.Sleep(time.Second)
		// First receive stays the first; none asked, none given.
		none := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url})[0]
		if none.Attributes != nil {
			t.Errorf("no names asked, attributes %v", none.Attributes)
		}

		fifo := createQueue(t, c, "sys.fifo", map[string]string{"FifoQueue": "true"})
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &fifo, MessageBody: aws.String("f"),
			MessageGroupId: aws.String("g1"), MessageDeduplicationId: aws.String("d1")}); err != nil {
			t.Fatal(err)
		}
		fa := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &fifo,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{"MessageGroupId", "MessageDeduplicationId", "SequenceNumber"}})[0].Attributes
		if fa["MessageGroupId"] != "g1" || fa["MessageDeduplicationId"] != "d1" || len(fa["SequenceNumber"]) != 20 || len(fa) != 3 {
			t.Errorf("FIFO attributes %v", fa)
		}
	})
}

func TestMessageAttributes(t *testing.T) {
	_, c := inProcess(t)
	ctx := context.Background()
	url := createQueue(t, c, "attrs", nil)
	attrs := map[string]types.MessageAttributeValue{
		"trace.id":   {DataType: aws.String("String"), StringValue: aws.String("abc")},
		"trace.span": {DataType: aws.String("Number"), StringValue: aws.String("42")},
		"blob":       {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2}},
	}
	out, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("m"), MessageAttributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	full := *out.MD5OfMessageAttributes
	if len(full) != 32 {
		t.Fatalf("MD5OfMessageAttributes %q", full)
	}
	tests := []struct {
		names []string
		want  string // sorted names returned
	}{
		{[]string{"All"}, "blob,trace.id,trace.span"},
		{[]string{".*"}, "blob,trace.id,trace.span"},
		{[]string{"trace.*"}, "trace.id,trace.span"},
		{[]string{"blob"}, "blob"},
		{[]string{"nope"}, ""},
		{nil, ""},
	}
	for _, tt := range tests {
		m := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, VisibilityTimeout: 0, MessageAttributeNames: tt.names})
		if len(m) != 1 {
			// The SDK leaves VisibilityTimeout 0 out; make it visible again ourselves.
			t.Fatalf("%v: %d messages", tt.names, len(m))
		}
		var got []string
		for k := range m[0].MessageAttributes {
			got = append(got, k)
		}
		if s := strings.Join(slices.Sorted(slices.Values(got)), ","); s != tt.want {
			t.Errorf("%v: attributes %s, want %s", tt.names, s, tt.want)
		}
		switch {
		case tt.want == "blob,trace.id,trace.span":
			if m[0].MD5OfMessageAttributes == nil || *m[0].MD5OfMessageAttributes != full {
				t.Errorf("%v: MD5 %v, want the send's %s", tt.names, m[0].MD5OfMessageAttributes, full)
			}
			if string(m[0].MessageAttributes["blob"].BinaryValue) != "\x00\x01\x02" || *m[0].MessageAttributes["trace.span"].DataType != "Number" {
				t.Errorf("values %+v", m[0].MessageAttributes)
			}
		case tt.want == "":
			if m[0].MD5OfMessageAttributes != nil {
				t.Errorf("%v: MD5 %q with no attributes returned", tt.names, *m[0].MD5OfMessageAttributes)
			}
		default:
			if sub := md5OfAttrs(selectAttrs(map[string]msgAttrValue{
				"trace.id": {DataType: "String", StringValue: aws.String("abc")}, "trace.span": {DataType: "Number", StringValue: aws.String("42")},
				"blob": {DataType: "Binary", BinaryValue: []byte{0, 1, 2}}}, tt.names)); m[0].MD5OfMessageAttributes == nil || *m[0].MD5OfMessageAttributes != sub {
				t.Errorf("%v: MD5 %v, want that of the returned attributes %s", tt.names, m[0].MD5OfMessageAttributes, sub)
			}
		}
		if _, err := c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: m[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("m"),
		MessageAttributes: map[string]types.MessageAttributeValue{"n": {DataType: aws.String("Number"), StringValue: aws.String("x")}}})
	if errorCode(err) != "InvalidParameterValue" {
		t.Errorf("a Number attribute that is not a number: %v", err)
	}
}

// TestMD5OfMessageAttributesKnownValue pins the digest to the value moto_server (and AWS)
// give for the same attributes.
func TestMD5OfMessageAttributesKnownValue(t *testing.T) {
	got := md5OfAttrs(map[string]msgAttrValue{
		"s": {DataType: "String", StringValue: aws.String("hello")},
		"n": {DataType: "Number", StringValue: aws.String("1")},
		"b": {DataType: "Binary", BinaryValue: []byte("bin")},
	})
	if want := "b421681b793bd14c59bd111bf6b79445"; got != want {
		t.Errorf("md5OfAttrs = %s, want %s", got, want)
	}
	// A receive that returns some of the attributes digests those.
	got = md5OfAttrs(map[string]msgAttrValue{"s": {DataType: "String", StringValue: aws.String("hello")}})
	if want := "fd15bc9b7ccd66cc924b9196cafb1576"; got != want {
		t.Errorf("md5OfAttrs of one = %s, want %s", got, want)
	}
}

func TestRedriveToDeadLetterQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, c := inProcess(t)
		dlq := createQueue(t, c, "dead", nil)
		policy := `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dead","maxReceiveCount":"2"}`
		src := createQueue(t, c, "src", map[string]string{"RedrivePolicy": policy})
		id := send(t, c, src, "poison")
		for i := range 2 {
			if got := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &src, VisibilityTimeout: 1}); len(got) != 1 {
				t.Fatalf("receive %d: %d messages", i+1, len(got))
			}
			time.Sleep(time.Second)
		}
		if got := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &src}); len(got) != 0 {
			t.Fatalf("the third receive got %v; the message should be in the dead-letter queue", bodies(got))
		}
		if got := counts(t, c, src); got != "0/0/0" {
			t.Errorf("source counts %s", got)
		}
		got := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &dlq, MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"}})
		if len(got) != 1 || *got[0].MessageId != id || *got[0].Body != "poison" ||
			got[0].Attributes["DeadLetterQueueSourceArn"] != s.sqs.queueARN("src") {
			t.Fatalf("dead-letter queue holds %+v", got)
		}
		out, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: &src, AttributeNames: []types.QueueAttributeName{"RedrivePolicy", "QueueArn"}})
		if err != nil || out.Attributes["RedrivePolicy"] != policy || out.Attributes["QueueArn"] != "arn:aws:sqs:us-east-1:000000000000:src" {
			t.Errorf("attributes %v, %v", out.Attributes, err)
		}
	})
}

func fifoSend(t *testing.T, c *sqs.Client, url, body, group, dedup string) *sqs.SendMessageOutput {
	t.Helper()
	in := &sqs.SendMessageInput{QueueUrl: &url, MessageBody: &body, MessageGroupId: &group}
	if dedup != "" {
		in.MessageDeduplicationId = &dedup
	}
	out, err := c.SendMessage(context.Background(), in)
	if err != nil {
		t.Fatalf("SendMessage %s: %v", body, err)
	}
	return out
}

func TestFIFOGroupsAreLockedAndOrdered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := inProcess(t)
		ctx := context.Background()
		url := createQueue(t, c, "jobs.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
		for _, m := range []struct{ body, group string }{{"a1", "a"}, {"b1", "b"}, {"a2", "a"}, {"a3", "a"}, {"b2", "b"}} {
			fifoSend(t, c, url, m.body, m.group, "")
		}
		rcv := func(n int32) []types.Message {
			return receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: n, VisibilityTimeout: 30})
		}
		first := rcv(2)
		if got := bodies(first); got != "a1,a2" {
			t.Fatalf("first receive %q, want a1,a2 (one group, in order)", got)
		}
		if got := bodies(rcv(10)); got != "b1,b2" {
			t.Fatalf("second receive %q, want b1,b2: group a is locked while a1 and a2 are in flight", got)
		}
		if got := rcv(10); len(got) != 0 {
			t.Fatalf("both groups are locked, yet received %q", bodies(got))
		}
		// Deleting a1 leaves a2 in flight: group a stays locked.
		if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: first[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
		if got := rcv(10); len(got) != 0 {
			t.Fatalf("group a is still locked by a2, yet received %q", bodies(got))
		}
		// a2's timeout passes: it comes back before a3.
		time.Sleep(30 * time.Second)
		if got := bodies(rcv(10)); got != "a2,a3,b1,b2" {
			t.Fatalf("after the timeout, received %q, want a2,a3,b1,b2", got)
		}
	})
}

func TestFIFODeduplication(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := inProcess(t)
		url := createQueue(t, c, "dedup.fifo", map[string]string{"FifoQueue": "true"})
		first := fifoSend(t, c, url, "x", "g", "d1")
		again := fifoSend(t, c, url, "other body", "g", "d1")
		if *again.MessageId != *first.MessageId || *again.SequenceNumber != *first.SequenceNumber {
			t.Errorf("a duplicate got id %s seq %s, want the first's %s %s", *again.MessageId, *again.SequenceNumber, *first.MessageId, *first.SequenceNumber)
		}
		time.Sleep(5*time.Minute - time.Second)
		fifoSend(t, c, url, "x", "g", "d1")
		if got := counts(t, c, url); got != "1/0/0" {
			t.Errorf("counts %s within the deduplication interval, want 1/0/0", got)
		}
		time.Sleep(time.Second)
		third := fifoSend(t, c, url, "x", "g", "d1")
		if *third.MessageId == *first.MessageId || *third.SequenceNumber <= *first.SequenceNumber {
			t.Errorf("after 5 minutes the same id is a new message: %s seq %s", *third.MessageId, *third.SequenceNumber)
		}
		if got := counts(t, c, url); got != "2/0/0" {
			t.Errorf("counts %s after the interval, want 2/0/0", got)
		}

		// Without a deduplication id and without content-based deduplication: refused.
		_, err := c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("x"), MessageGroupId: aws.String("g")})
		if errorCode(err) != "InvalidParameterValue" {
			t.Errorf("no deduplication id: %v", err)
		}
		_, err = c.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("x"), MessageDeduplicationId: aws.String("z")})
		if errorCode(err) != "MissingParameter" {
			t.Errorf("no group: %v", err)
		}

		// Content-based: the body's SHA-256 is the id.
		cb := createQueue(t, c, "content.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
		a := fifoSend(t, c, cb, "same", "g", "")
		b := fifoSend(t, c, cb, "same", "h", "")
		fifoSend(t, c, cb, "different", "g", "")
		if *a.MessageId != *b.MessageId {
			t.Error("the same body was not deduplicated")
		}
		if got := counts(t, c, cb); got != "2/0/0" {
			t.Errorf("content-based counts %s, want 2/0/0", got)
		}
	})
}

func TestFIFOReceiveRequestAttemptId(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := inProcess(t)
		url := createQueue(t, c, "retry.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
		fifoSend(t, c, url, "1", "g", "")
		fifoSend(t, c, url, "2", "h", "")
		in := &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 1, VisibilityTimeout: 10, ReceiveRequestAttemptId: aws.String("try-1")}
		first := receive(t, c, in)
		time.Sleep(5 * time.Second)
		retry := receive(t, c, in)
		if len(first) != 1 || len(retry) != 1 || *retry[0].ReceiptHandle != *first[0].ReceiptHandle || *retry[0].Body != "1" {
			t.Fatalf("a retry with the same attempt id got %v, want the first answer %v", retry, first)
		}
		// The retry reset the visibility timeout: still invisible 9 s after it.
		time.Sleep(9 * time.Second)
		other := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10})
		if bodies(other) != "2" {
			t.Fatalf("another receive got %q, want 2", bodies(other))
		}
	})
}

func TestBatchesAnswerPerEntry(t *testing.T) {
	_, c := inProcess(t)
	ctx := context.Background()
	url := createQueue(t, c, "batch", nil)
	sent, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &url, Entries: []types.SendMessageBatchRequestEntry{
		{Id: aws.String("a"), MessageBody: aws.String("one")},
		{Id: aws.String("b"), MessageBody: aws.String("two"), DelaySeconds: 901},
		{Id: aws.String("c"), MessageBody: aws.String("three")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent.Successful) != 2 || len(sent.Failed) != 1 || *sent.Failed[0].Id != "b" || *sent.Failed[0].Code != "InvalidParameterValue" || !sent.Failed[0].SenderFault {
		t.Fatalf("SendMessageBatch: %+v", sent)
	}
	msgs := receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10})
	if len(msgs) != 2 {
		t.Fatalf("received %d", len(msgs))
	}
	vis, err := c.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &url, Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
		{Id: aws.String("ok"), ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 100},
		{Id: aws.String("bad"), ReceiptHandle: aws.String("not-a-handle!"), VisibilityTimeout: 100},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(vis.Successful) != 1 || len(vis.Failed) != 1 || *vis.Failed[0].Code != "ReceiptHandleIsInvalid" {
		t.Errorf("ChangeMessageVisibilityBatch: %+v", vis)
	}
	del, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: []types.DeleteMessageBatchRequestEntry{
		{Id: aws.String("x"), ReceiptHandle: msgs[0].ReceiptHandle},
		{Id: aws.String("y"), ReceiptHandle: aws.String("garbage!")},
		{Id: aws.String("z"), ReceiptHandle: msgs[1].ReceiptHandle},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(del.Successful) != 2 || len(del.Failed) != 1 || *del.Failed[0].Id != "y" || *del.Failed[0].Code != "ReceiptHandleIsInvalid" {
		t.Errorf("DeleteMessageBatch: %+v", del)
	}
	if got := counts(t, c, url); got != "0/0/0" {
		t.Errorf("counts %s after the batch delete", got)
	}

	entries := func(ids ...string) []types.DeleteMessageBatchRequestEntry {
		e := []types.DeleteMessageBatchRequestEntry{} // empty, not nil: the SDK refuses nil itself
		for _, id := range ids {
			e = append(e, types.DeleteMessageBatchRequestEntry{Id: aws.String(id), ReceiptHandle: msgs[0].ReceiptHandle})
		}
		return e
	}
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, strconv.Itoa(i))
	}
	for _, tt := range []struct {
		ids  []string
		code string
	}{
		{nil, "AWS.SimpleQueueService.EmptyBatchRequest"},
		{eleven, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"},
		{[]string{"a", "a"}, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"},
		{[]string{"a.b"}, "AWS.SimpleQueueService.InvalidBatchEntryId"},
	} {
		_, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: entries(tt.ids...)})
		if got := errorCode(err); got != tt.code {
			t.Errorf("batch of %v: %q, want %q", tt.ids, got, tt.code)
		}
	}
	var tooMany *types.TooManyEntriesInBatchRequest
	_, err = c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: entries(eleven...)})
	if !errors.As(err, &tooMany) {
		t.Errorf("11 entries: %T, want *types.TooManyEntriesInBatchRequest", err)
	}
}

func TestQueueManagement(t *testing.T) {
	_, c := inProcess(t)
	ctx := context.Background()
	for _, n := range []string{"b-1", "a-1", "a-2", "c"} {
		createQueue(t, c, n, nil)
	}
	out, err := c.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: aws.String("a-")})
	if err != nil || len(out.QueueUrls) != 2 || !strings.HasSuffix(out.QueueUrls[0], "/000000000000/a-1") {
		t.Fatalf("ListQueues a-: %v %v", out.QueueUrls, err)
	}
	page, err := c.ListQueues(ctx, &sqs.ListQueuesInput{MaxResults: aws.Int32(3)})
	if err != nil || len(page.QueueUrls) != 3 || page.NextToken == nil {
		t.Fatalf("first page %v %v", page, err)
	}
	rest, err := c.ListQueues(ctx, &sqs.ListQueuesInput{MaxResults: aws.Int32(3), NextToken: page.NextToken})
	if err != nil || len(rest.QueueUrls) != 1 || !strings.HasSuffix(rest.QueueUrls[0], "/c") || rest.NextToken != nil {
		t.Fatalf("second page %v %v", rest, err)
	}

	url := createQueue(t, c, "purge", nil)
	for range 3 {
		send(t, c, url, "m")
	}
	receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url})
	if _, err := c.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: &url}); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, c, url); got != "0/0/0" {
		t.Errorf("counts after purge %s", got)
	}
	if _, err := c.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &url}); err != nil {
		t.Fatal(err)
	}
	var qdne *types.QueueDoesNotExist
	if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String("m")}); !errors.As(err, &qdne) {
		t.Errorf("send to a deleted queue: %v", err)
	}
	attrs, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(createQueue(t, c, "f.fifo", map[string]string{"FifoQueue": "true"})), AttributeNames: []types.QueueAttributeName{"All"}})
	if err != nil || attrs.Attributes["FifoQueue"] != "true" || attrs.Attributes["VisibilityTimeout"] != "30" || attrs.Attributes["QueueArn"] != "arn:aws:sqs:us-east-1:000000000000:f.fifo" {
		t.Errorf("FIFO queue attributes %v %v", attrs, err)
	}
	if _, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("nofifo.fifo")}); errorCode(err) != "InvalidParameterValue" {
		t.Errorf(".fifo name without FifoQueue: %v", err)
	}
}

func TestNotifyDeliversToTheQueueAnARNNames(t *testing.T) {
	s, c := inProcess(t)
	url := createQueue(t, c, "events", nil)
	if err := s.sqs.notify("arn:aws:sqs:us-east-1:000000000000:events", `{"Records":[]}`); err != nil {
		t.Fatal(err)
	}
	if got := bodies(receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url})); got != `{"Records":[]}` {
		t.Errorf("received %q", got)
	}
	err := s.sqs.notify("arn:aws:sqs:us-east-1:000000000000:missing", "x")
	var se *sqsError
	if !errors.As(err, &se) || se.typ != "QueueDoesNotExist" {
		t.Errorf("notify to a missing queue: %v", err)
	}
}

func TestMessagesOlderThanTheRetentionPeriodAreDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c := inProcess(t)
		url := createQueue(t, c, "short", map[string]string{"MessageRetentionPeriod": "60"})
		send(t, c, url, "old")
		time.Sleep(30 * time.Second)
		send(t, c, url, "young")
		time.Sleep(30 * time.Second)
		if got := bodies(receive(t, c, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 10})); got != "young" {
			t.Errorf("received %q 60 s after the first send, want only the younger message", got)
		}
		if got := counts(t, c, url); got != "0/1/0" {
			t.Errorf("counts %s, want 0/1/0", got)
		}
	})
}
