package sqs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// fakeSQS is an in-memory SQS with the semantics the source depends on: visibility timeouts,
// receipt handles that change with each delivery, long polls that wait for messages or their
// context, FIFO groups that are locked while one of their messages is in flight. It records
// every call with the time it was made, so that tests under synctest can check timing.
type fakeSQS struct {
	mu      sync.Mutex
	queues  map[string]*fakeQueue
	changed chan struct{} // closed and replaced whenever a message may have become available

	calls      []fakeCall
	receiving  int // receives in flight
	maxRecv    int
	inFlightAt func(n int) // called with the receives in flight at each new receive

	// Hooks, each called with the lock held; a nil hook does nothing.
	receiveErr func(n int) error // error for the nth receive (from 1), before it acts
	deleteErr  func(n int) error // error for the nth delete batch
	changeErr  func(n int) error // error for the nth visibility batch
	sendErr    func(n int) error // error for the nth SendMessage
	// sendFault, if not nil, may fail an entry of a SendMessageBatch: the nth try of body.
	sendFault     func(n int, body string) (types.BatchResultErrorEntry, bool)
	sendTries     map[string]int       // SendMessageBatch tries by body
	sendDedups    map[string][]string  // the deduplication ids of those tries
	entryFault    func(id string) bool // fail this entry of a delete or visibility batch (server side)
	maxPerReceive int                  // if positive, the most messages one receive returns
	// blindCounts makes GetQueueAttributes count no message at all, as SQS's approximate
	// counts (or moto, for a message that turns visible as it counts) may.
	blindCounts bool
	// transit is how long a receive's answer takes to arrive once its messages are handed
	// out: a receive aborted meanwhile loses them until their visibility timeout, as on SQS.
	transit    time.Duration
	blockBatch chan struct{} // if not nil, batch requests wait for it to close or their ctx
	blocked    int           // batch requests waiting for blockBatch

	nextID int
}

type fakeQueue struct {
	url     string
	fifo    bool
	redrive string // RedrivePolicy attribute; empty: none
	msgs    []*fakeMsg
	seq     int
}

type fakeMsg struct {
	id, body, group string
	attrs           map[string]types.MessageAttributeValue
	sent            time.Time
	visibleAt       time.Time
	receives        int
	handle          string
	firstReceive    time.Time
	deleted         bool
	seq             int
}

type fakeCall struct {
	Action  string
	At      time.Time
	Max     int32       // ReceiveMessage
	Wait    int32       // ReceiveMessage
	Attempt string      // ReceiveMessage: ReceiveRequestAttemptId
	Entries []fakeEntry // batches
	Queue   string      // SendMessage
	Body    string      // SendMessage
	Send    *awssqs.SendMessageInput
	Ended   time.Time // when the call returned
	Err     error
}

type fakeEntry struct {
	ID      string // message id
	Timeout int32
	Group   string // SendMessageBatch: MessageGroupId
	Dedup   string // SendMessageBatch: MessageDeduplicationId
}

func newFake(urls ...string) *fakeSQS {
	f := &fakeSQS{queues: map[string]*fakeQueue{}, changed: make(chan struct{})}
	for _, u := range urls {
		f.queues[u] = &fakeQueue{url: u, fifo: isFIFO(u)}
	}
	return f
}

func (f *fakeSQS) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// put adds messages with the given bodies; for a FIFO queue, group "g:body" puts body in g.
func (f *fakeSQS) put(url string, bodies ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.queues[url]
	var ids []string
	for _, b := range bodies {
		f.nextID++
		q.seq++
		m := &fakeMsg{id: "m" + strconv.Itoa(f.nextID), body: b, sent: time.Now(), seq: q.seq}
		if q.fifo {
			for i := range len(b) {
				if b[i] == ':' {
					m.group = b[:i]
					break
				}
			}
		}
		q.msgs = append(q.msgs, m)
		ids = append(ids, m.id)
	}
	f.notifyLocked()
	return ids
}

func (f *fakeSQS) putWithAttrs(url, body string, attrs map[string]types.MessageAttributeValue) {
	f.put(url, body)
	f.mu.Lock()
	q := f.queues[url]
	q.msgs[len(q.msgs)-1].attrs = attrs
	f.mu.Unlock()
}

func (f *fakeSQS) countLocked(action string) int {
	n := 0
	for _, c := range f.calls {
		if c.Action == action {
			n++
		}
	}
	return n
}

func (f *fakeSQS) record(c fakeCall) int {
	f.calls = append(f.calls, c)
	return len(f.calls) - 1
}

// callsOf returns the calls of one action made so far.
func (f *fakeSQS) callsOf(action string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var cs []fakeCall
	for _, c := range f.calls {
		if c.Action == action {
			cs = append(cs, c)
		}
	}
	return cs
}

func (f *fakeSQS) inFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.receiving
}

// visible counts messages not deleted and visible now; invisible those in flight.
func (f *fakeSQS) counts(url string) (visible, invisible int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	for _, m := range f.queues[url].msgs {
		if m.deleted {
			continue
		}
		if now.Before(m.visibleAt) {
			invisible++
		} else {
			visible++
		}
	}
	return visible, invisible
}

func (f *fakeSQS) msg(url, id string) fakeMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.queues[url].msgs {
		if m.id == id {
			return *m
		}
	}
	panic("no message " + id)
}

func (f *fakeSQS) queue(in *string) (*fakeQueue, error) {
	q := f.queues[aws.ToString(in)]
	if q == nil {
		return nil, &types.QueueDoesNotExist{Message: aws.String("The specified queue does not exist.")}
	}
	return q, nil
}

func (f *fakeSQS) ReceiveMessage(ctx context.Context, in *awssqs.ReceiveMessageInput, _ ...func(*awssqs.Options)) (*awssqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	i := f.record(fakeCall{Action: "ReceiveMessage", At: time.Now(), Max: in.MaxNumberOfMessages, Wait: in.WaitTimeSeconds, Attempt: aws.ToString(in.ReceiveRequestAttemptId)})
	n := f.countLocked("ReceiveMessage")
	f.receiving++
	f.maxRecv = max(f.maxRecv, f.receiving)
	if f.inFlightAt != nil {
		f.inFlightAt(f.receiving)
	}
	end := func(err error) {
		f.receiving--
		f.calls[i].Ended = time.Now()
		f.calls[i].Err = err
		f.mu.Unlock()
	}
	if f.receiveErr != nil {
		if err := f.receiveErr(n); err != nil {
			end(err)
			return nil, err
		}
	}
	q, err := f.queue(in.QueueUrl)
	if err != nil {
		end(err)
		return nil, err
	}
	deadline := time.Now().Add(time.Duration(in.WaitTimeSeconds) * time.Second)
	for {
		now := time.Now()
		var got []types.Message
		locked := map[string]bool{}
		if q.fifo {
			for _, m := range q.msgs {
				if !m.deleted && now.Before(m.visibleAt) {
					locked[m.group] = true
				}
			}
		}
		var next time.Time
		for _, m := range q.msgs {
			if len(got) == int(in.MaxNumberOfMessages) || f.maxPerReceive > 0 && len(got) == f.maxPerReceive {
				break
			}
			if m.deleted || locked[m.group] {
				continue
			}
			if now.Before(m.visibleAt) {
				if next.IsZero() || m.visibleAt.Before(next) {
					next = m.visibleAt
				}
				continue
			}
			m.receives++
			if m.firstReceive.IsZero() {
				m.firstReceive = now
			}
			m.handle = fmt.Sprintf("%s#%d", m.id, m.receives)
			m.visibleAt = now.Add(time.Duration(in.VisibilityTimeout) * time.Second)
			attrs := map[string]string{
				"ApproximateReceiveCount":          strconv.Itoa(m.receives),
				"SentTimestamp":                    strconv.FormatInt(m.sent.UnixMilli(), 10),
				"ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.firstReceive.UnixMilli(), 10),
			}
			if q.fifo {
				attrs["MessageGroupId"] = m.group
				attrs["SequenceNumber"] = strconv.Itoa(m.seq)
				attrs["MessageDeduplicationId"] = m.id
			}
			got = append(got, types.Message{
				MessageId:         aws.String(m.id),
				Body:              aws.String(m.body),
				ReceiptHandle:     aws.String(m.handle),
				Attributes:        attrs,
				MessageAttributes: m.attrs,
			})
		}
		if len(got) > 0 && f.transit > 0 {
			f.mu.Unlock()
			select {
			case <-time.After(f.transit):
			case <-ctx.Done():
			}
			f.mu.Lock()
			if err := ctx.Err(); err != nil {
				end(err)
				return nil, err
			}
		}
		if len(got) > 0 || !now.Before(deadline) {
			end(nil)
			return &awssqs.ReceiveMessageOutput{Messages: got}, nil
		}
		wake := f.changed
		f.mu.Unlock()
		wait := deadline.Sub(now)
		if !next.IsZero() {
			wait = min(wait, next.Sub(now))
		}
		t := time.NewTimer(wait)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			f.mu.Lock()
			end(ctx.Err())
			return nil, ctx.Err()
		}
		t.Stop()
		f.mu.Lock()
	}
}

// waitBatch blocks a batch request while blockBatch is set.
func (f *fakeSQS) waitBatch(ctx context.Context) error {
	f.mu.Lock()
	b := f.blockBatch
	f.mu.Unlock()
	if b == nil {
		return nil
	}
	f.mu.Lock()
	f.blocked++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.blocked--
		f.mu.Unlock()
	}()
	select {
	case <-b:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeSQS) find(q *fakeQueue, handle string) *fakeMsg {
	for _, m := range q.msgs {
		if m.handle == handle && !m.deleted {
			return m
		}
	}
	return nil
}

func invalid(id string) types.BatchResultErrorEntry {
	return types.BatchResultErrorEntry{Id: aws.String(id), Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true,
		Message: aws.String("The input receipt handle is not a valid receipt handle.")}
}

func internal(id string) types.BatchResultErrorEntry {
	return types.BatchResultErrorEntry{Id: aws.String(id), Code: aws.String("InternalError"), SenderFault: false}
}

func (f *fakeSQS) DeleteMessageBatch(ctx context.Context, in *awssqs.DeleteMessageBatchInput, _ ...func(*awssqs.Options)) (*awssqs.DeleteMessageBatchOutput, error) {
	if err := f.waitBatch(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := fakeCall{Action: "DeleteMessageBatch", At: time.Now()}
	if f.deleteErr != nil {
		if err := f.deleteErr(f.countLocked(c.Action) + 1); err != nil {
			c.Err = err
			f.record(c)
			return nil, err
		}
	}
	q, err := f.queue(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	out := &awssqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		m := f.find(q, aws.ToString(e.ReceiptHandle))
		switch {
		case m == nil:
			out.Failed = append(out.Failed, invalid(aws.ToString(e.Id)))
		case f.entryFault != nil && f.entryFault(m.id):
			out.Failed = append(out.Failed, internal(aws.ToString(e.Id)))
		default:
			m.deleted = true
			c.Entries = append(c.Entries, fakeEntry{ID: m.id})
			out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
		}
	}
	f.record(c)
	f.notifyLocked()
	return out, nil
}

func (f *fakeSQS) ChangeMessageVisibilityBatch(ctx context.Context, in *awssqs.ChangeMessageVisibilityBatchInput, _ ...func(*awssqs.Options)) (*awssqs.ChangeMessageVisibilityBatchOutput, error) {
	if err := f.waitBatch(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c := fakeCall{Action: "ChangeMessageVisibilityBatch", At: time.Now()}
	if f.changeErr != nil {
		if err := f.changeErr(f.countLocked(c.Action) + 1); err != nil {
			c.Err = err
			f.record(c)
			return nil, err
		}
	}
	q, err := f.queue(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	out := &awssqs.ChangeMessageVisibilityBatchOutput{}
	now := time.Now()
	for _, e := range in.Entries {
		m := f.find(q, aws.ToString(e.ReceiptHandle))
		switch {
		case m == nil:
			out.Failed = append(out.Failed, invalid(aws.ToString(e.Id)))
		case f.entryFault != nil && f.entryFault(m.id):
			out.Failed = append(out.Failed, internal(aws.ToString(e.Id)))
		case !now.Before(m.visibleAt):
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("MessageNotInflight"), SenderFault: true})
		default:
			m.visibleAt = now.Add(time.Duration(e.VisibilityTimeout) * time.Second)
			c.Entries = append(c.Entries, fakeEntry{ID: m.id, Timeout: e.VisibilityTimeout})
			out.Successful = append(out.Successful, types.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
		}
	}
	f.record(c)
	f.notifyLocked()
	return out, nil
}

func (f *fakeSQS) SendMessage(ctx context.Context, in *awssqs.SendMessageInput, _ ...func(*awssqs.Options)) (*awssqs.SendMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := fakeCall{Action: "SendMessage", At: time.Now(), Queue: aws.ToString(in.QueueUrl), Body: aws.ToString(in.MessageBody), Send: in}
	if f.sendErr != nil {
		if err := f.sendErr(f.countLocked(c.Action) + 1); err != nil {
			c.Err = err
			f.record(c)
			return nil, err
		}
	}
	f.record(c)
	q, err := f.queue(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	f.nextID++
	q.seq++
	q.msgs = append(q.msgs, &fakeMsg{id: "m" + strconv.Itoa(f.nextID), body: aws.ToString(in.MessageBody),
		group: aws.ToString(in.MessageGroupId), attrs: in.MessageAttributes, sent: time.Now(), seq: q.seq})
	f.notifyLocked()
	return &awssqs.SendMessageOutput{MessageId: aws.String("m" + strconv.Itoa(f.nextID))}, nil
}

func (f *fakeSQS) GetQueueAttributes(ctx context.Context, in *awssqs.GetQueueAttributesInput, _ ...func(*awssqs.Options)) (*awssqs.GetQueueAttributesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(fakeCall{Action: "GetQueueAttributes", At: time.Now()})
	q, err := f.queue(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	var visible, invisible int
	now := time.Now()
	for _, m := range q.msgs {
		switch {
		case m.deleted, f.blindCounts:
		case now.Before(m.visibleAt):
			invisible++
		default:
			visible++
		}
	}
	out := &awssqs.GetQueueAttributesOutput{Attributes: map[string]string{
		"ApproximateNumberOfMessages":           strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(invisible),
		"ApproximateNumberOfMessagesDelayed":    "0",
		"QueueArn":                              "arn:aws:sqs:us-east-1:123456789012:" + q.url,
	}}
	if q.redrive != "" {
		out.Attributes["RedrivePolicy"] = q.redrive
	}
	return out, nil
}

func (f *fakeSQS) GetQueueUrl(ctx context.Context, in *awssqs.GetQueueUrlInput, _ ...func(*awssqs.Options)) (*awssqs.GetQueueUrlOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record(fakeCall{Action: "GetQueueUrl", At: time.Now(), Queue: aws.ToString(in.QueueName)})
	for u := range f.queues {
		if strings.HasSuffix(u, "/"+aws.ToString(in.QueueName)) {
			return &awssqs.GetQueueUrlOutput{QueueUrl: aws.String(u)}, nil
		}
	}
	return nil, &types.QueueDoesNotExist{Message: aws.String("The specified queue does not exist.")}
}

// SendMessageBatch records, as the call's Entries, the ids of the messages it accepted.
func (f *fakeSQS) SendMessageBatch(ctx context.Context, in *awssqs.SendMessageBatchInput, _ ...func(*awssqs.Options)) (*awssqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := fakeCall{Action: "SendMessageBatch", At: time.Now(), Queue: aws.ToString(in.QueueUrl)}
	q, err := f.queue(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if f.sendTries == nil {
		f.sendTries, f.sendDedups = map[string]int{}, map[string][]string{}
	}
	out := &awssqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		body := aws.ToString(e.MessageBody)
		f.sendTries[body]++
		f.sendDedups[body] = append(f.sendDedups[body], aws.ToString(e.MessageDeduplicationId))
		if f.sendFault != nil {
			if fe, ok := f.sendFault(f.sendTries[body], body); ok {
				fe.Id = e.Id
				out.Failed = append(out.Failed, fe)
				continue
			}
		}
		f.nextID++
		q.seq++
		m := &fakeMsg{id: "m" + strconv.Itoa(f.nextID), body: body, group: aws.ToString(e.MessageGroupId), sent: time.Now(), seq: q.seq}
		q.msgs = append(q.msgs, m)
		c.Entries = append(c.Entries, fakeEntry{ID: m.id, Group: m.group, Dedup: aws.ToString(e.MessageDeduplicationId)})
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String(m.id)})
	}
	f.record(c)
	f.notifyLocked()
	return out, nil
}
