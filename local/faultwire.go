package local

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
)

// protocol is the wire protocol of a request, which decides how an injected
// error must look for the SDK to read it as the service's own.
type protocol int

const (
	restXML  protocol = iota // S3
	awsJSON                  // SQS in aws-sdk-go-v2: AWS JSON 1.0 with X-Amz-Target
	awsQuery                 // SQS in older SDKs: form-encoded Action=...
)

// classify finds the protocol and the action of a request.
func classify(r *http.Request, body []byte) (protocol, string) {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		// "AmazonSQS.ReceiveMessage": the action follows the last dot.
		return awsJSON, t[strings.LastIndexByte(t, '.')+1:]
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Action") != "" {
			return awsQuery, v.Get("Action")
		}
	}
	if id := r.URL.Query().Get("x-id"); id != "" {
		return restXML, "S3." + id
	}
	return restXML, "S3." + r.Method
}

// writeFault answers as the service would when it fails or throttles.
// Throttling follows what the SDK's retryer reads as throttling: for SQS over
// JSON, the modelled RequestThrottled error with the query-compatible code in
// x-amzn-query-error (SQS's own answer); for S3, 503 SlowDown.
func writeFault(w http.ResponseWriter, proto protocol, kind fault) {
	status, code, side, msg := http.StatusInternalServerError, "InternalFailure", "Receiver", "We encountered an internal error. Please try again."
	switch kind {
	case error503:
		status, code, side, msg = http.StatusServiceUnavailable, "ServiceUnavailable", "Receiver", "Service is unable to handle request."
	case throttle:
		status, code, side, msg = http.StatusBadRequest, "RequestThrottled", "Sender", "Rate exceeded"
	}
	id := requestID()
	h := w.Header()
	h.Set("X-Amzn-Requestid", id)
	switch proto {
	case awsJSON:
		h.Set("Content-Type", "application/x-amz-json-1.0")
		h.Set("X-Amzn-Query-Error", code+";"+side)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":"com.amazonaws.sqs#%s","message":%q}`, code, msg)
	case awsQuery:
		h.Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0"?><ErrorResponse><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
			side, code, msg, id)
	default:
		switch kind {
		case error500:
			code = "InternalError"
		case throttle:
			status, code, msg = http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate."
		}
		h.Set("Content-Type", "application/xml")
		h.Set("X-Amz-Request-Id", id)
		w.WriteHeader(status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId></Error>`,
			code, msg, id)
	}
}

func requestID() string {
	return fmt.Sprintf("local-%016x", rand.Uint64())
}
