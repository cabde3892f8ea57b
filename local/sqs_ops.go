package local

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// sameAttrs: CreateQueue of an existing name succeeds only when the attributes it gives
// are those the queue has.
func (q *queue) sameAttrs(given map[string]string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	want, err := q.attrs.with(given, q.fifo)
	if err != nil {
		return false
	}
	return maps.Equal(want.raw, q.attrs.raw)
}

type getQueueAttributesInput struct {
	QueueUrl       *string
	AttributeNames []string
}

type queueAttributesOutput struct {
	Attributes map[string]string `json:",omitempty"`
}

// computedAttrs are the attributes a queue reports but no one sets.
var computedAttrs = []string{
	"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
	"ApproximateNumberOfMessagesDelayed", "CreatedTimestamp", "LastModifiedTimestamp", "QueueArn",
}

func (s *sqsService) getQueueAttributes(_ *http.Request, in *getQueueAttributesInput) (queueAttributesOutput, error) {
	q, err := s.queueFromURL(in.QueueUrl)
	if err != nil {
		return queueAttributesOutput{}, err
	}
	all := slices.Contains(in.AttributeNames, "All")
	for _, n := range in.AttributeNames {
		if n == "All" || slices.Contains(computedAttrs, n) {
			continue
		}
		if intAttrs[n] == (intAttr{}) && !textAttrs[n] && fifoAttrs[n] == nil && n != "RedrivePolicy" {
			return queueAttributesOutput{}, errInvalidAttributeName(n)
		}
	}
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gone {
		return queueAttributesOutput{}, errQueueDoesNotExist()
	}
	q.advance(now)
	have := maps.Clone(q.attrs.raw)
	have["ApproximateNumberOfMessages"] = strconv.Itoa(q.nVisible)
	have["ApproximateNumberOfMessagesNotVisible"] = strconv.Itoa(q.nInflight)
	have["ApproximateNumberOfMessagesDelayed"] = strconv.Itoa(q.nDelayed)
	have["CreatedTimestamp"] = strconv.FormatInt(q.created.Unix(), 10)
	have["LastModifiedTimestamp"] = strconv.FormatInt(q.modified.Unix(), 10)
	have["QueueArn"] = q.arn
	out := queueAttributesOutput{Attributes: map[string]string{}}
	for k, v := range have {
		if all || slices.Contains(in.AttributeNames, k) {
			out.Attributes[k] = v
		}
	}
	if len(out.Attributes) == 0 {
		out.Attributes = nil
	}
	return out, nil
}

type setQueueAttributesInput struct {
	QueueUrl   *string
	Attributes map[string]string
}

func (s *sqsService) setQueueAttributes(_ *http.Request, in *setQueueAttributesInput) (empty, error) {
	q, err := s.queueFromURL(in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	if in.Attributes == nil {
		return empty{}, errMissingParameter("Attributes")
	}
	now := time.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.gone {
		return empty{}, errQueueDoesNotExist()
	}
	a, err := q.attrs.with(in.Attributes, q.fifo)
	if err != nil {
		return empty{}, err
	}
	q.attrs = a
	q.modified = now
	q.notifyLocked() // a shorter wait or a new redrive policy changes what long polls do
	return empty{}, nil
}

func (s *sqsService) sendMessage(_ *http.Request, in *sendInput) (sendOutput, error) {
	q, err := s.queueFromURL(in.QueueUrl)
	if err != nil {
		return sendOutput{}, err
	}
	return q.send(time.Now(), *in)
}

// batchEntryID is the Id of a batch entry, checked for the whole batch before any entry runs.
type batchEntryID struct{ Id string }

type batchFailure struct {
	Id          string
	SenderFault bool
	Code        string
	Message     string
}

// checkBatch applies the rules of a batch as a whole: 1 to 10 entries, ids of 1–80
// alphanumerics, hyphens and underscores, no id twice.
func checkBatch(ids []string, entryKind string) error {
	if len(ids) == 0 {
		return senderError("EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest",
			"There should be at least one %s in the request.", entryKind)
	}
	if len(ids) > 10 {
		return senderError("TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
			"Maximum number of entries per request are 10. You have sent %d.", len(ids))
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if !validBatchID(id) {
			return senderError("InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId",
				"A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.")
		}
		if seen[id] {
			return senderError("BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
				"Id %s repeated.", id)
		}
		seen[id] = true
	}
	return nil
}

func validBatchID(id string) bool {
	if id == "" || len(id) > 80 {
		return false
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// failure is the Failed entry of a batch for err.
func failure(id string, err error) batchFailure {
	se, ok := err.(*sqsError)
	if !ok {
		return batchFailure{Id: id, Code: "InternalError", Message: err.Error()}
	}
	return batchFailure{Id: id, SenderFault: se.sender, Code: se.queryCode(), Message: se.msg}
}

type sendBatchEntry struct {
	Id string
	sendInput
}

type sendBatchInput struct {
	QueueUrl *string
	Entries  []sendBatchEntry
}

type sendBatchResult struct {
	Id string
	sendOutput
}

type sendBatchOutput struct {
	Successful []sendBatchResult
	Failed     []batchFailure
}

func (s *sqsService) sendMessageBatch(_ *http.Request, in *sendBatchInput) (sendBatchOutput, error) {
	q, err := s.queueFromURL(in.QueueUrl)
	if err != nil {
		return sendBatchOutput{}, err
	}
	ids := make([]string, len(in.Entries))
	size := 0
	for i, e := range in.Entries {
		ids[i] = e.Id
		if e.MessageBody != nil {
			size += len(*e.MessageBody)
		}
		for name, v := range e.MessageAttributes {
			size += len(name) + len(v.DataType) + len(v.BinaryValue)
			if v.StringValue != nil {
				size += len(*v.StringValue)
			}
		}
	}
	if err := checkBatch(ids, "SendMessageBatchRequestEntry"); err != nil {
		return sendBatchOutput{}, err
	}
	if size > maxMessageBytes {
		return sendBatchOutput{}, senderError("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong",
			"Batch requests cannot be longer than %d bytes. You have sent %d bytes.", maxMessageBytes, size)
	}
	out := sendBatchOutput{Successful: []sendBatchResult{}, Failed: []batchFailure{}}
	now := time.Now()
	for _, e := range in.Entries {
		r, err := q.send(now, e.sendInput)
		if err != nil {
			if se, ok := err.(*sqsError); ok && se.typ == "QueueDoesNotExist" {
				return sendBatchOutput{}, err
			}
			out.Failed = append(out.Failed, failure(e.Id, err))
			continue
		}
		out.Successful = append(out.Successful, sendBatchResult{e.Id, r})
	}
	return out, nil
}

type receiveInput struct {
	QueueUrl                    *string
	AttributeNames              []string
	MessageSystemAttributeNames []string
	MessageAttributeNames       []string
	MaxNumberOfMessages         *int
	VisibilityTimeout           *int
	WaitTimeSeconds             *int
	ReceiveRequestAttemptId     *string
}

type receiveOutput struct {
	Messages []receivedMessage `json:",omitempty"`
}

func (s *sqsService) receiveMessage(r *http.Request, in *receiveInput) (receiveOutput, error) {
	q, err := s.queueFromURL(in.QueueUrl)
	if err != nil {
		return receiveOutput{}, err
	}
	req := receiveRequest{max: 1, attrNames: in.MessageAttributeNames}
	if in.MaxNumberOfMessages != nil {
		req.max = *in.MaxNumberOfMessages
		if req.max < 1 || req.max > 10 {
			return receiveOutput{}, errInvalidParameter("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", req.max)
		}
	}
	if in.VisibilityTimeout != nil {
		v := *in.VisibilityTimeout
		if v < 0 || v > 43200 {
			return receiveOutput{}, errInvalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.", v)
		}
		d := time.Duration(v) * time.Second
		req.visibility = &d
	}
	for _, names := range [][]string{in.AttributeNames, in.MessageSystemAttributeNames} {
		for _, n := range names {
			if n == "All" {
				req.sysAll = true
				continue
			}
			if req.sysNames == nil {
				req.sysNames = map[string]bool{}
			}
			req.sysNames[n] = true
		}
	}
	if in.ReceiveRequestAttemptId != nil {
		req.attemptID = *in.ReceiveRequestAttemptId
	}

	q.mu.Lock()
	wait := q.attrs.wait
	dlqName := q.attrs.dlqName
	q.mu.Unlock()
	if in.WaitTimeSeconds != nil {
		w := *in.WaitTimeSeconds
		if w < 0 || w > 20 {
			return receiveOutput{}, errInvalidParameter("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", w)
		}
		wait = time.Duration(w) * time.Second
	}
	var dlq *queue
	if dlqName != "" {
		dlq, _ = s.queue(dlqName) // a missing dead-letter queue leaves messages where they are
	}

	deadline := time.Now().Add(wait)
	for {
		now := time.Now()
		msgs, dead, next, wake, err := q.take(now, req, dlq)
		if len(dead) > 0 {
			dlq.deadLetter(dead, q.arn, now)
		}
		if err != nil {
			return receiveOutput{}, err
		}
		if len(msgs) > 0 || !now.Before(deadline) {
			return receiveOutput{Messages: msgs}, nil
		}
		until := deadline
		if !next.IsZero() && next.Before(until) {
			until = next
		}
		t := time.NewTimer(until.Sub(now))
		select {
		case <-wake:
		case <-t.C:
		case <-s.closed:
			t.Stop()
			return receiveOutput{}, nil
		case <-r.Context().Done():
			t.Stop()
			return receiveOutput{}, r.Context().Err()
		}
		t.Stop()
	}
}

type receiptInput struct {
	QueueUrl      *string
	ReceiptHandle *string
}

func (s *sqsService) deleteMessage(_ *http.Request, in *receiptInput) (empty, error) {
	q, err := s.queueFromURL(in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	if in.ReceiptHandle == nil {
		return empty{}, errMissingParameter("ReceiptHandle")
	}
	return empty{}, q.deleteMessage(*in.ReceiptHandle)
}

type receiptBatchEntry struct {
	Id                string
	ReceiptHandle     *string
	VisibilityTimeout *int
}

type receiptBatchInput struct {
	QueueUrl *string
	Entries  []receiptBatchEntry
}

type batchOutput struct {
	Successful []batchEntryID
	Failed     []batchFailure
}

// eachEntry runs f for every entry of a checked batch and answers per entry; only a queue
// that no longer exists fails the whole call.
func (s *sqsService) eachEntry(in *receiptBatchInput, kind string, f func(q *queue, e receiptBatchEntry) error) (batchOutput, error) {
	q, err := s.queueFromURL(in.QueueUrl)
	if err != nil {
		return batchOutput{}, err
	}
	ids := make([]string, len(in.Entries))
	for i, e := range in.Entries {
		ids[i] = e.Id
	}
	if err := checkBatch(ids, kind); err != nil {
		return batchOutput{}, err
	}
	out := batchOutput{Successful: []batchEntryID{}, Failed: []batchFailure{}}
	for _, e := range in.Entries {
		if e.ReceiptHandle == nil {
			out.Failed = append(out.Failed, failure(e.Id, errMissingParameter("ReceiptHandle")))
			continue
		}
		if err := f(q, e); err != nil {
			if se, ok := err.(*sqsError); ok && se.typ == "QueueDoesNotExist" {
				return batchOutput{}, err
			}
			out.Failed = append(out.Failed, failure(e.Id, err))
			continue
		}
		out.Successful = append(out.Successful, batchEntryID{e.Id})
	}
	return out, nil
}

func (s *sqsService) deleteMessageBatch(_ *http.Request, in *receiptBatchInput) (batchOutput, error) {
	return s.eachEntry(in, "DeleteMessageBatchRequestEntry", func(q *queue, e receiptBatchEntry) error {
		return q.deleteMessage(*e.ReceiptHandle)
	})
}

type changeVisibilityInput struct {
	QueueUrl          *string
	ReceiptHandle     *string
	VisibilityTimeout *int
}

func visibilityArg(v *int) (time.Duration, error) {
	if v == nil {
		return 0, errMissingParameter("VisibilityTimeout")
	}
	if *v < 0 || *v > 43200 {
		return 0, errInvalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200, if provided.", *v)
	}
	return time.Duration(*v) * time.Second, nil
}

func (s *sqsService) changeMessageVisibility(_ *http.Request, in *changeVisibilityInput) (empty, error) {
	q, err := s.queueFromURL(in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	if in.ReceiptHandle == nil {
		return empty{}, errMissingParameter("ReceiptHandle")
	}
	d, err := visibilityArg(in.VisibilityTimeout)
	if err != nil {
		return empty{}, err
	}
	return empty{}, q.changeVisibility(time.Now(), *in.ReceiptHandle, d)
}

func (s *sqsService) changeMessageVisibilityBatch(_ *http.Request, in *receiptBatchInput) (batchOutput, error) {
	now := time.Now()
	return s.eachEntry(in, "ChangeMessageVisibilityBatchRequestEntry", func(q *queue, e receiptBatchEntry) error {
		d, err := visibilityArg(e.VisibilityTimeout)
		if err != nil {
			return err
		}
		return q.changeVisibility(now, *e.ReceiptHandle, d)
	})
}
