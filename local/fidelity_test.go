package local_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/local"
)

// The fidelity suite runs one script of calls against the embedded backend and against
// moto_server and compares what comes back, after normalising what differs by nature (ids,
// receipt handles, timestamps, sequence numbers, the endpoint). Differences that are known
// and judged against AWS's documentation are listed in knownSQSDifferences; any other one
// fails the test.

// step is one call of the script; it returns a value to compare (maps, slices, strings) or
// an error, compared by its code.
type step struct {
	name string
	call func(ctx context.Context, c *sqs.Client, v vars) (any, error)
}

// vars carries values from one step to later ones (queue URLs, receipt handles).
type vars map[string]string

// knownSQSDifferences are the steps whose answers differ between the two backends, with
// which one AWS's documentation supports.
var knownSQSDifferences = map[string]string{
	"create .fifo without FifoQueue": "moto creates a standard queue named x.fifo; AWS refuses: without FifoQueue the queue is standard, " +
		"and a standard queue's name allows only alphanumerics, hyphens and underscores (embedded: InvalidParameterValue)",
	"set attributes, out of range":            "moto accepts VisibilityTimeout 43201; AWS documents 0 to 43200 and answers InvalidAttributeValue (embedded too)",
	"set attributes, unknown name":            "moto accepts an unknown attribute; AWS answers InvalidAttributeName (embedded too)",
	"send invalid characters":                 "moto accepts U+0001; AWS documents the allowed characters and refuses others with InvalidMessageContents (embedded too)",
	"send a Number attribute that is not one": "moto accepts Number \"x\"; AWS refuses a Number attribute that does not parse (embedded: InvalidParameterValue)",
	"send with a deduplication id to a standard queue": "moto accepts it (and then reports a SequenceNumber on a standard queue); AWS documents " +
		"MessageDeduplicationId as FIFO only and refuses it (embedded: InvalidParameterValue)",
	"send batch, one delay out of range": "moto encodes SenderFault as the string \"true\" in the JSON protocol, which the Go SDK cannot decode " +
		"(the model says boolean), and accepts DelaySeconds 901; embedded: the entry fails with InvalidParameterValue, the others succeed",
	"counts after sends":     "follows from the sends above that moto accepted and AWS refuses",
	"receive all attributes": "follows from the sends above that moto accepted and AWS refuses",
	"counts after receive":   "follows from the sends above that moto accepted and AWS refuses",
	"counts after deletes":   "follows from the sends above that moto accepted and AWS refuses",
	"change visibility of a message no longer received with that handle": "moto accepts a receipt handle older than the message's latest receive; " +
		"AWS documents that the most recent handle must be used; embedded: InvalidParameterValue",
	"delete batch, 11 entries": "moto reports BatchEntryIdsNotDistinct for ids 0..10 (all distinct); AWS: TooManyEntriesInBatchRequest (embedded too)",
	"delete batch, invalid id": "moto accepts the id \"a.b\"; AWS documents ids of alphanumerics, hyphens and underscores and answers InvalidBatchEntryId (embedded too)",
	"FIFO sends": "both deliver a duplicate once; moto answers a duplicate with a new MessageId, embedded with the first message's id " +
		"(AWS documents duplicates as accepted and not delivered)",
	"FIFO receive 2": "AWS documents that a FIFO receive returns as many messages of one group as it can: embedded gives a1,a2; moto a1,b1. " +
		"moto also leaves out the SequenceNumber attribute that AWS documents for FIFO messages",
	"FIFO receive while group a is locked": "follows from the previous step",
	"receive from dead-letter queue": "embedded adds the DeadLetterQueueSourceArn system attribute (in the API's MessageSystemAttributeName " +
		"enumeration) to a message moved by the redrive policy; moto leaves it out",
	"FIFO receive, all locked": "follows from the previous steps",
}

func sqsScript() []step {
	str := aws.String
	attrs := map[string]types.MessageAttributeValue{
		"trace.id":   {DataType: str("String"), StringValue: str("abc")},
		"trace.span": {DataType: str("Number"), StringValue: str("42")},
		"blob":       {DataType: str("Binary"), BinaryValue: []byte{0, 1, 2}},
	}
	url := func(v vars, name string) *string { s := v["url:"+name]; return &s }
	create := func(name string, a map[string]string) func(context.Context, *sqs.Client, vars) (any, error) {
		return func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: str(name), Attributes: a})
			if err != nil {
				return nil, err
			}
			v["url:"+name] = *out.QueueUrl
			return out.QueueUrl, nil
		}
	}
	counts := func(name string) func(context.Context, *sqs.Client, vars) (any, error) {
		return func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url(v, name), AttributeNames: []types.QueueAttributeName{
				"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"}})
			if err != nil {
				return nil, err
			}
			return out.Attributes, nil
		}
	}
	receiveAll := func(name string, max int32, keep string) func(context.Context, *sqs.Client, vars) (any, error) {
		return func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url(v, name), MaxNumberOfMessages: max,
				MessageSystemAttributeNames: []types.MessageSystemAttributeName{"All"}, MessageAttributeNames: []string{"All"}})
			if err != nil {
				return nil, err
			}
			for i, m := range out.Messages {
				v[keep+":"+*m.Body] = *m.ReceiptHandle
				v[keep+":"+strconv.Itoa(i)] = *m.ReceiptHandle
			}
			return messages(out.Messages), nil
		}
	}
	return []step{
		{"create", create("fid", map[string]string{"VisibilityTimeout": "30"})},
		{"create again, same attributes", create("fid", map[string]string{"VisibilityTimeout": "30"})},
		{"create again, other attributes", create("fid", map[string]string{"VisibilityTimeout": "31"})},
		{"create bad name", create("bad name", nil)},
		{"create .fifo without FifoQueue", create("nofifo.fifo", nil)},
		{"get url", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: str("fid")})
			if err != nil {
				return nil, err
			}
			return out.QueueUrl, nil
		}},
		{"get url of a missing queue", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: str("missing")})
		}},
		{"attributes All", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url(v, "fid"), AttributeNames: []types.QueueAttributeName{"All"}})
			if err != nil {
				return nil, err
			}
			return out.Attributes, nil
		}},
		{"attributes, unknown name", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url(v, "fid"), AttributeNames: []types.QueueAttributeName{"Nope"}})
		}},
		{"set attributes, out of range", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: url(v, "fid"), Attributes: map[string]string{"VisibilityTimeout": "43201"}})
		}},
		{"set attributes, unknown name", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: url(v, "fid"), Attributes: map[string]string{"Nope": "1"}})
		}},
		{"send with attributes", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url(v, "fid"), MessageBody: str("hello"), MessageAttributes: attrs})
			if err != nil {
				return nil, err
			}
			return map[string]any{"id": out.MessageId, "md5": out.MD5OfMessageBody, "md5attrs": out.MD5OfMessageAttributes, "seq": out.SequenceNumber}, nil
		}},
		{"send invalid characters", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url(v, "fid"), MessageBody: str("a\x01b")})
		}},
		{"send a Number attribute that is not one", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url(v, "fid"), MessageBody: str("x"),
				MessageAttributes: map[string]types.MessageAttributeValue{"n": {DataType: str("Number"), StringValue: str("x")}}})
		}},
		{"send with a deduplication id to a standard queue", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url(v, "fid"), MessageBody: str("x"), MessageDeduplicationId: str("d")})
		}},
		{"send batch, one delay out of range", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: url(v, "fid"), Entries: []types.SendMessageBatchRequestEntry{
				{Id: str("a"), MessageBody: str("one")},
				{Id: str("b"), MessageBody: str("two"), DelaySeconds: 901},
				{Id: str("c"), MessageBody: str("three")},
			}})
			if err != nil {
				return nil, err
			}
			return batch(out.Successful, out.Failed), nil
		}},
		{"counts after sends", counts("fid")},
		{"receive 11", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url(v, "fid"), MaxNumberOfMessages: 11})
		}},
		{"receive, wait 21 s", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url(v, "fid"), WaitTimeSeconds: 21})
		}},
		{"receive all attributes", receiveAll("fid", 10, "rh")},
		{"counts after receive", counts("fid")},
		{"receive, all in flight", receiveAll("fid", 10, "none")},
		{"change visibility to 0", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: url(v, "fid"), ReceiptHandle: str(v["rh:hello"]), VisibilityTimeout: 0})
		}},
		{"receive attributes by prefix", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: url(v, "fid"), MessageAttributeNames: []string{"trace.*"},
				AttributeNames: []types.QueueAttributeName{"ApproximateReceiveCount"}})
			if err != nil {
				return nil, err
			}
			for _, m := range out.Messages {
				v["rh:hello"] = *m.ReceiptHandle
			}
			return messages(out.Messages), nil
		}},
		{"change visibility of a message no longer received with that handle", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: url(v, "fid"), ReceiptHandle: str(v["rh:0"]), VisibilityTimeout: 10})
		}},
		{"change visibility batch, one bad handle", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: url(v, "fid"), Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
				{Id: str("ok"), ReceiptHandle: str(v["rh:one"]), VisibilityTimeout: 60},
				{Id: str("bad"), ReceiptHandle: str("not-a-handle"), VisibilityTimeout: 60},
			}})
			if err != nil {
				return nil, err
			}
			return batch(out.Successful, out.Failed), nil
		}},
		{"delete, bad handle", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: url(v, "fid"), ReceiptHandle: str("not-a-handle")})
		}},
		{"delete", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: url(v, "fid"), ReceiptHandle: str(v["rh:hello"])})
		}},
		{"delete again", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: url(v, "fid"), ReceiptHandle: str(v["rh:hello"])})
		}},
		{"delete batch, one bad handle", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: url(v, "fid"), Entries: []types.DeleteMessageBatchRequestEntry{
				{Id: str("x"), ReceiptHandle: str(v["rh:one"])},
				{Id: str("y"), ReceiptHandle: str("not-a-handle")},
			}})
			if err != nil {
				return nil, err
			}
			return batch(out.Successful, out.Failed), nil
		}},
		{"delete batch, empty", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: url(v, "fid"), Entries: []types.DeleteMessageBatchRequestEntry{}})
		}},
		{"delete batch, 11 entries", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			var e []types.DeleteMessageBatchRequestEntry
			for i := range 11 {
				e = append(e, types.DeleteMessageBatchRequestEntry{Id: str(strconv.Itoa(i)), ReceiptHandle: str(v["rh:three"])})
			}
			return c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: url(v, "fid"), Entries: e})
		}},
		{"delete batch, ids repeated", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: url(v, "fid"), Entries: []types.DeleteMessageBatchRequestEntry{
				{Id: str("a"), ReceiptHandle: str(v["rh:three"])}, {Id: str("a"), ReceiptHandle: str(v["rh:three"])}}})
		}},
		{"delete batch, invalid id", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: url(v, "fid"), Entries: []types.DeleteMessageBatchRequestEntry{
				{Id: str("a.b"), ReceiptHandle: str(v["rh:three"])}}})
		}},
		{"counts after deletes", counts("fid")},
		{"purge", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: url(v, "fid")})
		}},
		{"counts after purge", counts("fid")},

		{"create dead-letter queue", create("fid-dlq", nil)},
		{"create queue with redrive", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			dlq, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url(v, "fid-dlq"), AttributeNames: []types.QueueAttributeName{"QueueArn"}})
			if err != nil {
				return nil, err
			}
			policy := `{"deadLetterTargetArn":"` + dlq.Attributes["QueueArn"] + `","maxReceiveCount":"1"}`
			return create("fid-src", map[string]string{"RedrivePolicy": policy})(ctx, c, v)
		}},
		{"send to redrive source", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url(v, "fid-src"), MessageBody: str("poison")})
			if err != nil {
				return nil, err
			}
			return out.MessageId, nil
		}},
		{"receive from redrive source", receiveAll("fid-src", 1, "src")},
		{"release to redrive source", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: url(v, "fid-src"), ReceiptHandle: str(v["src:poison"]), VisibilityTimeout: 0})
		}},
		{"receive from redrive source again", receiveAll("fid-src", 1, "src2")},
		{"receive from dead-letter queue", receiveAll("fid-dlq", 1, "dlq")},

		{"create FIFO", create("fid.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})},
		{"FIFO attributes All", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: url(v, "fid.fifo"), AttributeNames: []types.QueueAttributeName{"All"}})
			if err != nil {
				return nil, err
			}
			return out.Attributes, nil
		}},
		{"FIFO sends", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			var ids []any
			for _, m := range []struct{ body, group, dedup string }{{"a1", "a", ""}, {"b1", "b", ""}, {"a2", "a", ""}, {"a1", "a", ""}, {"other", "a", "explicit"}, {"again", "b", "explicit"}} {
				in := &sqs.SendMessageInput{QueueUrl: url(v, "fid.fifo"), MessageBody: str(m.body), MessageGroupId: str(m.group)}
				if m.dedup != "" {
					in.MessageDeduplicationId = str(m.dedup)
				}
				out, err := c.SendMessage(ctx, in)
				if err != nil {
					ids = append(ids, errorOf(err))
					continue
				}
				ids = append(ids, *out.MessageId)
			}
			return ids, nil
		}},
		{"FIFO send with DelaySeconds", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url(v, "fid.fifo"), MessageBody: str("x"), MessageGroupId: str("a"), DelaySeconds: 5})
		}},
		{"FIFO send without group", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url(v, "fid.fifo"), MessageBody: str("x")})
		}},
		{"FIFO counts", counts("fid.fifo")},
		{"FIFO receive 2", receiveAll("fid.fifo", 2, "f1")},
		{"FIFO receive while group a is locked", receiveAll("fid.fifo", 10, "f2")},
		{"FIFO receive, all locked", receiveAll("fid.fifo", 10, "f3")},

		{"list queues by prefix", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			out, err := c.ListQueues(ctx, &sqs.ListQueuesInput{QueueNamePrefix: str("fid")})
			if err != nil {
				return nil, err
			}
			slices.Sort(out.QueueUrls)
			return out.QueueUrls, nil
		}},
		{"delete queue", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: url(v, "fid")})
		}},
		{"send to a deleted queue", func(ctx context.Context, c *sqs.Client, v vars) (any, error) {
			return c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: url(v, "fid"), MessageBody: str("x")})
		}},
	}
}

// messages is what comparing a receive looks at, in body order (neither backend promises an
// order across messages of a standard queue).
func messages(ms []types.Message) []map[string]any {
	var out []map[string]any
	for _, m := range ms {
		attrs := map[string]string{}
		for k, v := range m.MessageAttributes {
			s := aws.ToString(v.DataType) + ":" + aws.ToString(v.StringValue) + string(v.BinaryValue)
			attrs[k] = s
		}
		out = append(out, map[string]any{
			"id": m.MessageId, "body": m.Body, "md5": m.MD5OfBody, "md5attrs": m.MD5OfMessageAttributes,
			"receipt": m.ReceiptHandle, "attributes": m.Attributes, "messageAttributes": attrs,
		})
	}
	slices.SortFunc(out, func(a, b map[string]any) int { return strings.Compare(*a["body"].(*string), *b["body"].(*string)) })
	return out
}

func batch[S any](ok []S, failed []types.BatchResultErrorEntry) map[string]any {
	var f []string
	for _, e := range failed {
		f = append(f, fmt.Sprintf("%s:%s:sender=%v", aws.ToString(e.Id), aws.ToString(e.Code), e.SenderFault))
	}
	return map[string]any{"successful": len(ok), "failed": f}
}

func errorOf(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return "error " + ae.ErrorCode()
	}
	return "error " + err.Error()
}

// run runs the script and returns each step's normalised answer, and each error's message
// (not compared: the wording differs everywhere).
func run(t *testing.T, c *sqs.Client, endpoint string) (answers, messages []string) {
	ctx := context.Background()
	v := vars{}
	n := &normaliser{endpoint: endpoint, ids: map[string]string{}}
	for _, s := range sqsScript() {
		if strings.HasPrefix(s.name, "create") {
			// Ids are numbered afresh for each queue, so that a message that one backend
			// accepted and the other refused shifts no later numbers.
			n.ids = map[string]string{}
		}
		out, err := s.call(ctx, c, v)
		if err != nil {
			answers = append(answers, errorOf(err))
			messages = append(messages, err.Error())
			continue
		}
		answers = append(answers, n.normalise(out))
		messages = append(messages, "")
	}
	return answers, messages
}

type normaliser struct {
	endpoint string
	ids      map[string]string
}

// normalise renders v as JSON with the values that differ by nature replaced.
func (n *normaliser) normalise(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "unmarshalable: " + err.Error()
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		return string(b)
	}
	tree = n.walk("", tree)
	b, _ = json.Marshal(tree)
	return string(b)
}

func (n *normaliser) walk(key string, v any) any {
	switch x := v.(type) {
	case map[string]any:
		if _, sdk := x["ResultMetadata"]; sdk {
			return "ok" // an SDK output with nothing else to compare
		}
		for k, e := range x {
			x[k] = n.walk(k, e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = n.walk(key, e)
		}
		return x
	case string:
		switch {
		case key == "receipt":
			return "<receipt>"
		case strings.HasSuffix(key, "Timestamp"):
			return "<time>"
		case key == "SequenceNumber" || key == "seq":
			return "<seq>"
		case key == "SenderId":
			return "<sender>"
		case key == "id" || isUUID(x):
			if _, ok := n.ids[x]; !ok {
				n.ids[x] = fmt.Sprintf("<id%d>", len(n.ids)+1)
			}
			return n.ids[x]
		}
		x = strings.ReplaceAll(x, n.endpoint, "<endpoint>")
		// The account: moto's is 123456789012, the embedded one's 000000000000.
		x = strings.ReplaceAll(x, "123456789012", "<account>")
		return strings.ReplaceAll(x, local.Account, "<account>")
	}
	return v
}

func isUUID(s string) bool {
	return len(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-'
}

func TestFidelitySQS(t *testing.T) {
	emb, err := local.Start(t.Context(), local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	got, gotMsgs := run(t, emb.SQSClient(), emb.Endpoint())

	m, err := moto.Start(t.Context(), nil)
	if errors.Is(err, moto.ErrNotInstalled) {
		// The embedded backend ran the script; there is nothing to compare it with. This
		// skips, or fails under PALLETO_MOTO=required (CI).
		moto.SkipIfMissing(t)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	want, wantMsgs := run(t, m.SQS(), m.URL())

	for i, s := range sqsScript() {
		if got[i] == want[i] {
			continue
		}
		if why, known := knownSQSDifferences[s.name]; known {
			t.Logf("known difference in %q (%s):\n  embedded: %s\n  moto:     %s", s.name, why, got[i], want[i])
			continue
		}
		t.Errorf("%q differs:\n  embedded: %s %s\n  moto:     %s %s", s.name, got[i], gotMsgs[i], want[i], wantMsgs[i])
	}
}
