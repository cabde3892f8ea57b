package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// sqsTargetPrefix starts the X-Amz-Target header of every SQS call over the JSON protocol.
const sqsTargetPrefix = "AmazonSQS."

// sqsMaxRequest bounds a request body: a batch holds at most 1 MiB of messages, and its JSON
// (with base64 binary attributes) somewhat more.
const sqsMaxRequest = 4 << 20

// sqsService is the SQS half of the server. Each queue has its own mutex; mu guards only
// the set of queues.
type sqsService struct {
	region   string
	endpoint string
	ids      *idSource

	mu     sync.RWMutex
	queues map[string]*queue

	closed    chan struct{} // closed by close: long polls answer at once
	closeOnce sync.Once
}

func newSQSService(region, endpoint string) *sqsService {
	return &sqsService{
		region:   region,
		endpoint: endpoint,
		ids:      newIDSource(),
		queues:   map[string]*queue{},
		closed:   make(chan struct{}),
	}
}

func (s *sqsService) close() { s.closeOnce.Do(func() { close(s.closed) }) }

func (s *sqsService) queueURL(name string) string {
	return s.endpoint + "/" + Account + "/" + name
}

func (s *sqsService) queueARN(name string) string {
	return "arn:aws:sqs:" + s.region + ":" + Account + ":" + name
}

// sqsError is an error as SQS reports it over the JSON protocol: the __type of the body, the
// code and fault of the x-amzn-query-error header (what clients of the older query protocol
// saw, and what the SDKs still report as the error code), and the HTTP status.
type sqsError struct {
	status int
	typ    string // short name; the body's __type is com.amazonaws.sqs#typ
	query  string // the code in x-amzn-query-error; empty means typ
	sender bool   // the fault is the sender's (Sender), else the server's (Receiver)
	msg    string
}

func (e *sqsError) Error() string { return e.typ + ": " + e.msg }

func (e *sqsError) queryCode() string {
	if e.query != "" {
		return e.query
	}
	return e.typ
}

func senderError(typ, query, format string, args ...any) *sqsError {
	return &sqsError{status: http.StatusBadRequest, typ: typ, query: query, sender: true, msg: fmt.Sprintf(format, args...)}
}

func errQueueDoesNotExist() *sqsError {
	return senderError("QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
}

func errInvalidParameter(format string, args ...any) *sqsError {
	return senderError("InvalidParameterValue", "", format, args...)
}

func errMissingParameter(name string) *sqsError {
	return senderError("MissingParameter", "", "The request must contain the parameter %s.", name)
}

func errReceiptHandleInvalid(handle string) *sqsError {
	return senderError("ReceiptHandleIsInvalid", "", "The input receipt handle %q is not a valid receipt handle.", handle)
}

func errInvalidAttributeName(name string) *sqsError {
	return senderError("InvalidAttributeName", "", "Unknown Attribute %s.", name)
}

func errInvalidAttributeValue(name, reason string) *sqsError {
	return senderError("InvalidAttributeValue", "", "Invalid value for the parameter %s. Reason: %s", name, reason)
}

// sqsOp is one SQS action: it decodes its input from the request body and returns the value
// to encode as the answer.
type sqsOp func(s *sqsService, r *http.Request, body []byte) (any, error)

var sqsOps map[string]sqsOp

func init() {
	// Filled in init: the operations refer to the service, which refers to this table.
	sqsOps = map[string]sqsOp{
		"CreateQueue":                  op((*sqsService).createQueue),
		"GetQueueUrl":                  op((*sqsService).getQueueURL),
		"ListQueues":                   op((*sqsService).listQueues),
		"DeleteQueue":                  op((*sqsService).deleteQueue),
		"PurgeQueue":                   op((*sqsService).purgeQueue),
		"GetQueueAttributes":           op((*sqsService).getQueueAttributes),
		"SetQueueAttributes":           op((*sqsService).setQueueAttributes),
		"SendMessage":                  op((*sqsService).sendMessage),
		"SendMessageBatch":             op((*sqsService).sendMessageBatch),
		"ReceiveMessage":               op((*sqsService).receiveMessage),
		"DeleteMessage":                op((*sqsService).deleteMessage),
		"DeleteMessageBatch":           op((*sqsService).deleteMessageBatch),
		"ChangeMessageVisibility":      op((*sqsService).changeMessageVisibility),
		"ChangeMessageVisibilityBatch": op((*sqsService).changeMessageVisibilityBatch),
	}
}

// op adapts a typed action to sqsOp: the body decodes into In.
func op[In any, Out any](f func(*sqsService, *http.Request, *In) (Out, error)) sqsOp {
	return func(s *sqsService, r *http.Request, body []byte) (any, error) {
		in := new(In)
		if len(body) > 0 {
			if err := json.Unmarshal(body, in); err != nil {
				return nil, &sqsError{status: http.StatusBadRequest, typ: "SerializationException", sender: true,
					msg: "the request body is not the JSON the action takes: " + err.Error()}
			}
		}
		return f(s, r, in)
	}
}

func (s *sqsService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), sqsTargetPrefix)
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("x-amzn-RequestId", s.ids.uuid())
	f, ok := sqsOps[action]
	if !ok {
		writeSQSError(w, &sqsError{status: http.StatusBadRequest, typ: "UnsupportedOperation",
			query: "AWS.SimpleQueueService.UnsupportedOperation", sender: true,
			msg: fmt.Sprintf("the local SQS does not serve %q", action)})
		return
	}
	if r.Method != http.MethodPost {
		writeSQSError(w, senderError("InvalidAction", "", "SQS calls over the JSON protocol are POST requests, not %s.", r.Method))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, sqsMaxRequest))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeSQSError(w, senderError("BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong",
				"the request is larger than %d bytes", sqsMaxRequest))
		}
		return // the client went away
	}
	out, err := f(s, r, body)
	if err != nil {
		var se *sqsError
		if !errors.As(err, &se) {
			se = &sqsError{status: http.StatusInternalServerError, typ: "InternalError", msg: err.Error()}
		}
		writeSQSError(w, se)
		return
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeSQSError(w, &sqsError{status: http.StatusInternalServerError, typ: "InternalError", msg: err.Error()})
		return
	}
	_, _ = w.Write(b)
}

func writeSQSError(w http.ResponseWriter, e *sqsError) {
	fault := "Receiver"
	if e.sender {
		fault = "Sender"
	}
	w.Header().Set("x-amzn-query-error", e.queryCode()+";"+fault)
	w.WriteHeader(e.status)
	b, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{"com.amazonaws.sqs#" + e.typ, e.msg})
	_, _ = w.Write(b)
}

// queueFromURL finds the queue a QueueUrl names: by its last path segment, whatever host the
// URL holds (clients reach the server under many names).
func (s *sqsService) queueFromURL(url *string) (*queue, error) {
	if url == nil || *url == "" {
		return nil, errMissingParameter("QueueUrl")
	}
	u := strings.TrimRight(*url, "/")
	name := u[strings.LastIndexByte(u, '/')+1:]
	return s.queue(name)
}

func (s *sqsService) queue(name string) (*queue, error) {
	s.mu.RLock()
	q := s.queues[name]
	s.mu.RUnlock()
	if q == nil {
		return nil, errQueueDoesNotExist()
	}
	return q, nil
}

// urlFor is the URL of a queue as a client that sent r reaches it.
func (s *sqsService) urlFor(r *http.Request, name string) string {
	if r != nil && r.Host != "" {
		return "http://" + r.Host + "/" + Account + "/" + name
	}
	return s.queueURL(name)
}

// notify delivers body as one message to the queue an ARN names
// (arn:aws:sqs:REGION:ACCOUNT:NAME): how S3 event notifications reach their queue.
func (s *sqsService) notify(queueARN, body string) error {
	parts := strings.Split(queueARN, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" {
		return errInvalidParameter("%q is not the ARN of a queue", queueARN)
	}
	q, err := s.queue(parts[5])
	if err != nil {
		return err
	}
	if q.fifo {
		return errInvalidParameter("S3 cannot send event notifications to the FIFO queue %s", q.name)
	}
	_, err = q.send(time.Now(), sendInput{MessageBody: &body})
	return err
}

type createQueueInput struct {
	QueueName  *string
	Attributes map[string]string
	Tags       map[string]string `json:"tags"`
}

type queueURLOutput struct {
	QueueUrl string
}

func (s *sqsService) createQueue(r *http.Request, in *createQueueInput) (queueURLOutput, error) {
	if in.QueueName == nil {
		return queueURLOutput{}, errMissingParameter("QueueName")
	}
	name := *in.QueueName
	fifo := strings.HasSuffix(name, ".fifo")
	if !validQueueName(name) {
		return queueURLOutput{}, errInvalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	now := time.Now()
	attrs, err := newQueueAttrs(in.Attributes, fifo)
	if err != nil {
		return queueURLOutput{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if q, ok := s.queues[name]; ok {
		if !q.sameAttrs(in.Attributes) {
			return queueURLOutput{}, senderError("QueueNameExists", "QueueAlreadyExists",
				"A queue already exists with the same name and a different value for attribute(s)")
		}
		return queueURLOutput{s.urlFor(r, name)}, nil
	}
	s.queues[name] = newQueue(s, name, fifo, attrs, now)
	return queueURLOutput{s.urlFor(r, name)}, nil
}

// validQueueName: 1–80 characters, alphanumeric, hyphens and underscores; FIFO queues end
// in .fifo (counted in the 80).
func validQueueName(name string) bool {
	if len(name) == 0 || len(name) > 80 {
		return false
	}
	base := strings.TrimSuffix(name, ".fifo")
	if base == "" {
		return false
	}
	for _, c := range []byte(base) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

type getQueueURLInput struct {
	QueueName              *string
	QueueOwnerAWSAccountId *string
}

func (s *sqsService) getQueueURL(r *http.Request, in *getQueueURLInput) (queueURLOutput, error) {
	if in.QueueName == nil {
		return queueURLOutput{}, errMissingParameter("QueueName")
	}
	if _, err := s.queue(*in.QueueName); err != nil {
		return queueURLOutput{}, err
	}
	return queueURLOutput{s.urlFor(r, *in.QueueName)}, nil
}

type listQueuesInput struct {
	QueueNamePrefix *string
	MaxResults      *int
	NextToken       *string
}

type listQueuesOutput struct {
	QueueUrls []string `json:",omitempty"`
	NextToken string   `json:",omitempty"`
}

func (s *sqsService) listQueues(r *http.Request, in *listQueuesInput) (listQueuesOutput, error) {
	limit := 1000
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 1000 {
			return listQueuesOutput{}, errInvalidParameter("Value %d for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000.", *in.MaxResults)
		}
		limit = *in.MaxResults
	}
	prefix := ""
	if in.QueueNamePrefix != nil {
		prefix = *in.QueueNamePrefix
	}
	s.mu.RLock()
	names := make([]string, 0, len(s.queues))
	for n := range s.queues {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	s.mu.RUnlock()
	slices.Sort(names)
	if in.NextToken != nil && *in.NextToken != "" {
		// The token is the last name of the previous page.
		i, _ := slices.BinarySearch(names, *in.NextToken)
		for i < len(names) && names[i] <= *in.NextToken {
			i++
		}
		names = names[i:]
	}
	var out listQueuesOutput
	if len(names) > limit {
		names = names[:limit]
		if in.MaxResults != nil {
			out.NextToken = names[len(names)-1]
		}
	}
	for _, n := range names {
		out.QueueUrls = append(out.QueueUrls, s.urlFor(r, n))
	}
	return out, nil
}

type queueURLInput struct {
	QueueUrl *string
}

type empty struct{}

func (s *sqsService) deleteQueue(_ *http.Request, in *queueURLInput) (empty, error) {
	q, err := s.queueFromURL(in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	s.mu.Lock()
	if s.queues[q.name] == q {
		delete(s.queues, q.name)
	}
	s.mu.Unlock()
	q.remove()
	return empty{}, nil
}

func (s *sqsService) purgeQueue(_ *http.Request, in *queueURLInput) (empty, error) {
	q, err := s.queueFromURL(in.QueueUrl)
	if err != nil {
		return empty{}, err
	}
	q.purge()
	return empty{}, nil
}
