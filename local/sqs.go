package local

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// sqsTargetPrefix starts the X-Amz-Target header of every SQS call over the JSON protocol.
const sqsTargetPrefix = "AmazonSQS."

// sqsService is the SQS half of the server.
type sqsService struct {
	region   string
	endpoint string

	closed    chan struct{}
	closeOnce sync.Once
}

func newSQSService(region, endpoint string) *sqsService {
	return &sqsService{region: region, endpoint: endpoint, closed: make(chan struct{})}
}

func (s *sqsService) close() { s.closeOnce.Do(func() { close(s.closed) }) }

func (s *sqsService) queueURL(name string) string {
	return s.endpoint + "/" + Account + "/" + name
}

// notify delivers body as one message to the queue an ARN names
// (arn:aws:sqs:REGION:ACCOUNT:NAME): how S3 event notifications reach their queue.
func (s *sqsService) notify(queueARN, _ string) error {
	return &notifyError{queueARN}
}

type notifyError struct{ arn string }

func (e *notifyError) Error() string { return "QueueDoesNotExist: " + e.arn }

func (s *sqsService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	action := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), sqsTargetPrefix)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("x-amzn-query-error", "AWS.SimpleQueueService.UnsupportedOperation;Sender")
	w.WriteHeader(http.StatusBadRequest)
	b, _ := json.Marshal(map[string]string{"__type": "com.amazonaws.sqs#UnsupportedOperation", "message": "not served yet: " + action})
	_, _ = w.Write(b)
}
