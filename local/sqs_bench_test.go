package local

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkSQSCycle measures the server's side of what a consumer does per 10 messages:
// a SendMessageBatch of 10, a ReceiveMessage of 10 and a DeleteMessageBatch of 10, called
// on the handler directly so that no client cost is counted.
func BenchmarkSQSCycle(b *testing.B) {
	s := newServer(Options{}, "http://local.test")
	defer s.Close()
	do := func(action, body string) string {
		req := httptest.NewRequest("POST", "/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", "AmazonSQS."+action)
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("%s: %d %s", action, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	do("CreateQueue", `{"QueueName":"bench"}`)
	url := s.QueueURL("bench")
	var entries []string
	for i := range 10 {
		entries = append(entries, `{"Id":"m`+strconv.Itoa(i)+`","MessageBody":"`+strings.Repeat("x", 100)+`"}`)
	}
	sendBody := `{"QueueUrl":"` + url + `","Entries":[` + strings.Join(entries, ",") + `]}`
	recvBody := `{"QueueUrl":"` + url + `","MaxNumberOfMessages":10,"MessageSystemAttributeNames":["All"]}`
	b.ReportAllocs()
	for b.Loop() {
		do("SendMessageBatch", sendBody)
		var out struct {
			Messages []struct{ ReceiptHandle string }
		}
		if err := json.Unmarshal([]byte(do("ReceiveMessage", recvBody)), &out); err != nil || len(out.Messages) != 10 {
			b.Fatalf("receive: %v, %d messages", err, len(out.Messages))
		}
		var del []string
		for i, m := range out.Messages {
			del = append(del, `{"Id":"d`+strconv.Itoa(i)+`","ReceiptHandle":"`+m.ReceiptHandle+`"}`)
		}
		do("DeleteMessageBatch", `{"QueueUrl":"`+url+`","Entries":[`+strings.Join(del, ",")+`]}`)
	}
}
