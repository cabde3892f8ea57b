package local

import (
	"container/heap"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// msgState is where a message is in its life.
type msgState uint8

const (
	stateDelayed  msgState = iota // sent with a delay that has not passed
	stateVisible                  // can be received
	stateInflight                 // received; invisible until its visibility timeout passes
	stateGone                     // deleted, purged or moved to the dead-letter queue
)

// message is one message of a queue. Its fields are guarded by the queue's mutex.
type message struct {
	id       string
	body     string
	md5Body  string
	attrs    map[string]msgAttrValue
	md5Attrs string // over all attrs
	trace    string // AWSTraceHeader system attribute
	sent     time.Time

	groupID, dedupID, seq string
	dlqSource             string // DeadLetterQueueSourceArn once moved

	state        msgState
	visibleAt    time.Time // when delayed or in flight: when it becomes visible
	heapIdx      int       // index in queue.timed; -1 when not there
	receiveCount int
	firstRecv    time.Time
	lastRecv     time.Time
	receipt      string // the receipt handle of the latest receive
}

// timedHeap orders the delayed and in-flight messages by the time they become visible.
type timedHeap []*message

func (h timedHeap) Len() int           { return len(h) }
func (h timedHeap) Less(i, j int) bool { return h[i].visibleAt.Before(h[j].visibleAt) }
func (h timedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}
func (h *timedHeap) Push(x any) {
	m := x.(*message)
	m.heapIdx = len(*h)
	*h = append(*h, m)
}
func (h *timedHeap) Pop() any {
	old := *h
	m := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	m.heapIdx = -1
	return m
}

// msgGroup is one message group of a FIFO queue: its messages in the order they were sent.
type msgGroup struct {
	id       string
	msgs     []*message
	inflight int // while above zero, no message of the group can be received
}

type dedupEntry struct {
	msgID, seq string
	until      time.Time
}

type dedupKey struct {
	key   string
	until time.Time
}

// attempt is what a FIFO receive with a ReceiveRequestAttemptId returned.
type attempt struct {
	msgs     []*message
	receipts []string
	until    time.Time
}

// queue is one queue. All its state is guarded by mu; no goroutine runs per queue or per
// message: messages become visible when an operation, or a long poll's one timer, finds that
// their time has passed.
type queue struct {
	svc     *sqsService
	name    string
	arn     string
	fifo    bool
	created time.Time

	mu       sync.Mutex
	attrs    queueAttrs
	modified time.Time
	gone     bool
	wake     chan struct{} // closed when a receive may find something new; then replaced
	wakeUsed bool          // a long poll waits on wake

	byID  map[string]*message
	ready []*message // standard queues: visible messages, oldest first (gone ones are skipped)
	timed timedHeap
	// counts by state
	nVisible, nInflight, nDelayed int

	// FIFO queues
	groups     map[string]*msgGroup
	groupOrder []*msgGroup
	seq        uint64
	dedup      map[string]dedupEntry
	dedupOrder []dedupKey
	attempts   map[string]*attempt
	recvSeq    uint64 // receipt handles of one queue never repeat
}

func newQueue(s *sqsService, name string, fifo bool, attrs queueAttrs, now time.Time) *queue {
	q := &queue{
		svc: s, name: name, arn: s.queueARN(name), fifo: fifo, created: now,
		attrs: attrs, modified: now,
		wake: make(chan struct{}),
		byID: map[string]*message{},
	}
	if fifo {
		q.groups = map[string]*msgGroup{}
		q.dedup = map[string]dedupEntry{}
		q.attempts = map[string]*attempt{}
		q.seq = uint64(now.UnixNano())
	}
	return q
}

// notifyLocked wakes the long polls waiting on the queue.
func (q *queue) notifyLocked() {
	if q.wakeUsed {
		close(q.wake)
		q.wake = make(chan struct{})
		q.wakeUsed = false
	}
}

// advance makes visible the messages whose delay or visibility timeout has passed.
func (q *queue) advance(now time.Time) {
	for len(q.timed) > 0 && !q.timed[0].visibleAt.After(now) {
		m := heap.Pop(&q.timed).(*message)
		q.makeVisible(m)
	}
}

func (q *queue) makeVisible(m *message) {
	switch m.state {
	case stateDelayed:
		q.nDelayed--
	case stateInflight:
		q.nInflight--
		if q.fifo {
			q.groups[m.groupID].inflight--
		}
	}
	m.state = stateVisible
	q.nVisible++
	if !q.fifo {
		q.ready = append(q.ready, m)
	}
}

// drop removes a message from the queue, whatever its state.
func (q *queue) drop(m *message) {
	switch m.state {
	case stateGone:
		return
	case stateVisible:
		q.nVisible--
	case stateDelayed:
		q.nDelayed--
	case stateInflight:
		q.nInflight--
		if q.fifo {
			q.groups[m.groupID].inflight--
		}
	}
	if m.heapIdx >= 0 {
		heap.Remove(&q.timed, m.heapIdx)
	}
	m.state = stateGone
	delete(q.byID, m.id)
	if q.fifo {
		g := q.groups[m.groupID]
		if i := slices.Index(g.msgs, m); i >= 0 {
			g.msgs = slices.Delete(g.msgs, i, i+1)
		}
		if len(g.msgs) == 0 {
			delete(q.groups, g.id)
			q.groupOrder = slices.DeleteFunc(q.groupOrder, func(x *msgGroup) bool { return x == g })
		}
	}
}

// add puts a new message in the queue, delayed until visibleAt if that is after now.
func (q *queue) add(m *message, now time.Time) {
	m.heapIdx = -1
	q.byID[m.id] = m
	if q.fifo {
		g := q.groups[m.groupID]
		if g == nil {
			g = &msgGroup{id: m.groupID}
			q.groups[m.groupID] = g
			q.groupOrder = append(q.groupOrder, g)
		}
		g.msgs = append(g.msgs, m)
	}
	if m.visibleAt.After(now) {
		m.state = stateDelayed
		q.nDelayed++
		heap.Push(&q.timed, m)
		q.notifyLocked() // a long poll's timer may need to be sooner
		return
	}
	m.state = stateDelayed
	q.nDelayed++
	q.makeVisible(m)
	q.notifyLocked()
}

type sendInput struct {
	QueueUrl                *string
	MessageBody             *string
	DelaySeconds            *int
	MessageAttributes       map[string]msgAttrValue
	MessageSystemAttributes map[string]msgAttrValue
	MessageDeduplicationId  *string
	MessageGroupId          *string
}

type sendOutput struct {
	MessageId                    string
	MD5OfMessageBody             string
	MD5OfMessageAttributes       string `json:",omitempty"`
	MD5OfMessageSystemAttributes string `json:",omitempty"`
	SequenceNumber               string `json:",omitempty"`
}

// send validates and enqueues one message.
func (q *queue) send(now time.Time, in sendInput) (sendOutput, error) {
	if in.MessageBody == nil || *in.MessageBody == "" {
		if in.MessageBody == nil {
			return sendOutput{}, errMissingParameter("MessageBody")
		}
		return sendOutput{}, errInvalidParameter("The request must contain the parameter MessageBody.")
	}
	body := *in.MessageBody
	if !validBody(body) {
		return sendOutput{}, senderError("InvalidMessageContents", "", "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF")
	}
	attrSize, err := validateMsgAttrs(in.MessageAttributes, "user")
	if err != nil {
		return sendOutput{}, err
	}
	m := &message{
		id:      q.svc.ids.uuid(),
		body:    body,
		md5Body: md5Hex(body),
		attrs:   in.MessageAttributes,
		sent:    now,
		heapIdx: -1,
	}
	m.md5Attrs = md5OfAttrs(m.attrs)
	out := sendOutput{MessageId: m.id, MD5OfMessageBody: m.md5Body, MD5OfMessageAttributes: m.md5Attrs}
	for name, v := range in.MessageSystemAttributes {
		if name != "AWSTraceHeader" || v.DataType != "String" || v.StringValue == nil {
			return sendOutput{}, errInvalidParameter("Message system attribute name '%s' is invalid.", name)
		}
		m.trace = *v.StringValue
		out.MD5OfMessageSystemAttributes = md5OfAttrs(in.MessageSystemAttributes)
	}
	if in.MessageGroupId != nil {
		m.groupID = *in.MessageGroupId
	}
	if in.MessageDeduplicationId != nil {
		m.dedupID = *in.MessageDeduplicationId
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gone {
		return sendOutput{}, errQueueDoesNotExist()
	}
	if size := len(body) + attrSize; size > q.attrs.maxSize {
		return sendOutput{}, errInvalidParameter("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", q.attrs.maxSize)
	}
	delay := q.attrs.delay
	if in.DelaySeconds != nil {
		d := *in.DelaySeconds
		if q.fifo {
			return sendOutput{}, errInvalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.", d)
		}
		if d < 0 || d > 900 {
			return sendOutput{}, errInvalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.", d)
		}
		delay = time.Duration(d) * time.Second
	}
	m.visibleAt = now.Add(delay)
	if !q.fifo {
		if in.MessageDeduplicationId != nil {
			return sendOutput{}, errInvalidParameter("The request include parameter MessageDeduplicationId that is not valid for this queue type")
		}
		q.add(m, now)
		return out, nil
	}

	if in.MessageGroupId == nil || m.groupID == "" {
		return sendOutput{}, errMissingParameter("MessageGroupId")
	}
	if m.dedupID == "" {
		if !q.attrs.contentDedup {
			return sendOutput{}, errInvalidParameter("The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly")
		}
		sum := sha256.Sum256([]byte(body))
		m.dedupID = hex.EncodeToString(sum[:])
	}
	key := m.dedupID
	if q.attrs.groupScope {
		key = m.groupID + "\x00" + key
	}
	q.pruneDedup(now)
	if e, ok := q.dedup[key]; ok {
		// Accepted, not delivered again: SQS answers with the first message's id.
		out.MessageId, out.SequenceNumber = e.msgID, e.seq
		return out, nil
	}
	q.seq++
	m.seq = fmt.Sprintf("%020d", q.seq)
	out.SequenceNumber = m.seq
	until := now.Add(dedupInterval)
	q.dedup[key] = dedupEntry{msgID: m.id, seq: m.seq, until: until}
	q.dedupOrder = append(q.dedupOrder, dedupKey{key, until})
	q.add(m, now)
	return out, nil
}

func (q *queue) pruneDedup(now time.Time) {
	i := 0
	for i < len(q.dedupOrder) && !q.dedupOrder[i].until.After(now) {
		if e, ok := q.dedup[q.dedupOrder[i].key]; ok && !e.until.After(now) {
			delete(q.dedup, q.dedupOrder[i].key)
		}
		i++
	}
	if i > 0 {
		q.dedupOrder = slices.Delete(q.dedupOrder, 0, i)
	}
}

// receiveRequest is a validated ReceiveMessage.
type receiveRequest struct {
	max        int
	visibility *time.Duration // nil: the queue's
	sysAll     bool
	sysNames   map[string]bool
	attrNames  []string
	attemptID  string
}

type receivedMessage struct {
	MessageId              string
	ReceiptHandle          string
	MD5OfBody              string
	Body                   string
	Attributes             map[string]string       `json:",omitempty"`
	MD5OfMessageAttributes string                  `json:",omitempty"`
	MessageAttributes      map[string]msgAttrValue `json:",omitempty"`
}

// take receives up to req.max messages now. Messages received more often than the redrive
// policy allows are taken out instead and returned in dead, for the caller to move to dlq
// (resolved by the caller: never look up another queue while holding this one's lock).
// When it returns no messages, wake is closed when something changes and next is when the
// next message becomes visible by itself (zero: none does).
func (q *queue) take(now time.Time, req receiveRequest, dlq *queue) (out []receivedMessage, dead []*message, next time.Time, wake <-chan struct{}, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gone {
		return nil, nil, time.Time{}, nil, errQueueDoesNotExist()
	}
	q.advance(now)
	vis := q.attrs.visibility
	if req.visibility != nil {
		vis = *req.visibility
	}
	maxReceive := 0
	if dlq != nil && dlq != q && q.attrs.dlqName == dlq.name {
		maxReceive = q.attrs.maxReceive
	}

	var got []*message
	pick := func(m *message) bool {
		if !m.sent.Add(q.attrs.retention).After(now) {
			q.drop(m) // past the retention period: SQS deletes it
			return false
		}
		if maxReceive > 0 && m.receiveCount >= maxReceive {
			q.drop(m)
			dead = append(dead, m)
			return false
		}
		got = append(got, m)
		return true
	}
	if q.fifo {
		if a := q.attempts[req.attemptID]; req.attemptID != "" && a != nil && a.until.After(now) && q.sameAttempt(a) {
			for _, m := range a.msgs {
				q.setVisibleAt(m, now.Add(vis))
				out = append(out, q.render(m, req))
			}
			return out, nil, time.Time{}, nil, nil
		}
		groups := slices.Clone(q.groupOrder)
		for _, g := range groups {
			if len(got) >= req.max {
				break
			}
			if g.inflight > 0 {
				continue
			}
			for _, m := range slices.Clone(g.msgs) {
				if len(got) >= req.max || m.state != stateVisible {
					break
				}
				pick(m)
			}
		}
	} else {
		i := 0
		for ; i < len(q.ready) && len(got) < req.max; i++ {
			if m := q.ready[i]; m.state == stateVisible {
				pick(m)
			}
		}
		clear(q.ready[:i])
		q.ready = q.ready[i:]
	}

	for _, m := range got {
		m.receiveCount++
		m.lastRecv = now
		if m.firstRecv.IsZero() {
			m.firstRecv = now
		}
		q.recvSeq++
		m.receipt = makeReceipt(q.name, m.id, q.recvSeq)
		q.nVisible--
		q.nInflight++
		m.state = stateInflight
		if q.fifo {
			q.groups[m.groupID].inflight++
		}
		m.visibleAt = now.Add(vis)
		heap.Push(&q.timed, m)
		out = append(out, q.render(m, req))
	}
	if q.fifo && req.attemptID != "" && len(got) > 0 {
		a := &attempt{msgs: got, until: now.Add(dedupInterval)}
		for _, m := range got {
			a.receipts = append(a.receipts, m.receipt)
		}
		q.attempts[req.attemptID] = a
		maps.DeleteFunc(q.attempts, func(_ string, a *attempt) bool { return !a.until.After(now) })
	}
	if vis == 0 && len(got) > 0 {
		q.advance(now)
	}
	if len(out) == 0 {
		if len(q.timed) > 0 {
			next = q.timed[0].visibleAt
		}
		q.wakeUsed = true
		wake = q.wake
	}
	return out, dead, next, wake, nil
}

// sameAttempt: every message of an earlier receive is still in flight under the receipt
// handle that receive gave it.
func (q *queue) sameAttempt(a *attempt) bool {
	for i, m := range a.msgs {
		if m.state != stateInflight || m.receipt != a.receipts[i] {
			return false
		}
	}
	return true
}

// setVisibleAt moves an in-flight message's visibility timeout.
func (q *queue) setVisibleAt(m *message, at time.Time) {
	m.visibleAt = at
	heap.Fix(&q.timed, m.heapIdx)
}

func (q *queue) render(m *message, req receiveRequest) receivedMessage {
	r := receivedMessage{MessageId: m.id, ReceiptHandle: m.receipt, MD5OfBody: m.md5Body, Body: m.body}
	if req.sysAll || len(req.sysNames) > 0 {
		r.Attributes = map[string]string{}
		want := func(name string) bool { return req.sysAll || req.sysNames[name] }
		ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
		if want("ApproximateReceiveCount") {
			r.Attributes["ApproximateReceiveCount"] = strconv.Itoa(m.receiveCount)
		}
		if want("SentTimestamp") {
			r.Attributes["SentTimestamp"] = ms(m.sent)
		}
		if want("ApproximateFirstReceiveTimestamp") {
			r.Attributes["ApproximateFirstReceiveTimestamp"] = ms(m.firstRecv)
		}
		if want("SenderId") {
			r.Attributes["SenderId"] = Account
		}
		if m.trace != "" && want("AWSTraceHeader") {
			r.Attributes["AWSTraceHeader"] = m.trace
		}
		if m.dlqSource != "" && want("DeadLetterQueueSourceArn") {
			r.Attributes["DeadLetterQueueSourceArn"] = m.dlqSource
		}
		if m.groupID != "" && want("MessageGroupId") {
			r.Attributes["MessageGroupId"] = m.groupID
		}
		if q.fifo {
			if want("MessageDeduplicationId") {
				r.Attributes["MessageDeduplicationId"] = m.dedupID
			}
			if want("SequenceNumber") {
				r.Attributes["SequenceNumber"] = m.seq
			}
		}
		if len(r.Attributes) == 0 {
			r.Attributes = nil
		}
	}
	if sel := selectAttrs(m.attrs, req.attrNames); len(sel) > 0 {
		r.MessageAttributes = sel
		if len(sel) == len(m.attrs) {
			r.MD5OfMessageAttributes = m.md5Attrs
		} else {
			r.MD5OfMessageAttributes = md5OfAttrs(sel)
		}
	}
	return r
}

// deadLetter puts messages taken out of another queue by its redrive policy at the end of
// this one, visible at once, keeping their ids, bodies, attributes and receive counts.
func (q *queue) deadLetter(msgs []*message, source string, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gone {
		return
	}
	for _, old := range msgs {
		m := &message{
			id: old.id, body: old.body, md5Body: old.md5Body, attrs: old.attrs, md5Attrs: old.md5Attrs,
			trace: old.trace, sent: old.sent, groupID: old.groupID, dedupID: old.dedupID,
			receiveCount: old.receiveCount, firstRecv: old.firstRecv, dlqSource: source,
			visibleAt: now,
		}
		if q.fifo {
			if m.groupID == "" {
				continue // a standard queue's message has no place in a FIFO queue
			}
			q.seq++
			m.seq = fmt.Sprintf("%020d", q.seq)
		}
		q.add(m, now)
	}
}

// makeReceipt is a receipt handle: opaque to clients, it names the queue, the message and
// the receive.
func makeReceipt(queueName, msgID string, n uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(msgID + " " + strconv.FormatUint(n, 36) + " " + queueName))
}

// parseReceipt returns the id of the message a receipt handle of this queue names.
func (q *queue) parseReceipt(handle string) (msgID string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(handle)
	if err != nil {
		return "", errReceiptHandleInvalid(handle)
	}
	parts := strings.SplitN(string(b), " ", 3)
	if len(parts) != 3 || parts[2] != q.name {
		return "", errReceiptHandleInvalid(handle)
	}
	return parts[0], nil
}

// deleteMessage deletes the message a receipt handle names. A message already deleted, or a
// receipt handle older than the message's latest receive, succeeds without deleting: SQS
// documents that only the most recent receipt handle deletes.
func (q *queue) deleteMessage(handle string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gone {
		return errQueueDoesNotExist()
	}
	id, err := q.parseReceipt(handle)
	if err != nil {
		return err
	}
	m := q.byID[id]
	if m == nil || m.receipt != handle {
		return nil
	}
	wasInflightFIFO := q.fifo && m.state == stateInflight
	q.drop(m)
	if wasInflightFIFO {
		q.notifyLocked() // the group may be free now
	}
	return nil
}

// changeVisibility makes an in-flight message visible again after d.
func (q *queue) changeVisibility(now time.Time, handle string, d time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gone {
		return errQueueDoesNotExist()
	}
	id, err := q.parseReceipt(handle)
	if err != nil {
		return err
	}
	q.advance(now)
	m := q.byID[id]
	if m == nil || m.receipt != handle {
		return errInvalidParameter("Value %s for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.", handle)
	}
	if m.state != stateInflight {
		return senderError("MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", "The message referred to is not in flight.")
	}
	if now.Add(d).Sub(m.lastRecv) > maxVisibility {
		return errInvalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]", int(d/time.Second))
	}
	q.setVisibleAt(m, now.Add(d))
	if d == 0 {
		q.advance(now)
	}
	q.notifyLocked()
	return nil
}

// purge deletes every message.
func (q *queue) purge() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.byID {
		m.state = stateGone
		m.heapIdx = -1
	}
	clear(q.byID)
	q.ready, q.timed = nil, nil
	q.nVisible, q.nInflight, q.nDelayed = 0, 0, 0
	if q.fifo {
		clear(q.groups)
		q.groupOrder = nil
		clear(q.attempts)
	}
}

// remove ends a deleted queue: its long polls wake and find it gone.
func (q *queue) remove() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.gone = true
	q.wakeUsed = true
	q.notifyLocked()
}
