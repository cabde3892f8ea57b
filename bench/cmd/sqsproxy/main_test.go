package main

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The watcher follows messages by receipt handle: deleted or made visible at
// once, they are no longer unacked; a heartbeat keeps them so.
func TestWatcher(t *testing.T) {
	w := newWatcher()
	w.observe("ReceiveMessage", []byte(`{}`), []byte(`{"Messages":[
		{"MessageId":"a","ReceiptHandle":"ha"},
		{"MessageId":"b","ReceiptHandle":"hb"},
		{"MessageId":"c","ReceiptHandle":"hc"},
		{"MessageId":"d","ReceiptHandle":"hd"}]}`))
	// The entry for hb failed: b stays.
	w.observe("DeleteMessageBatch",
		[]byte(`{"Entries":[{"Id":"0","ReceiptHandle":"ha"},{"Id":"1","ReceiptHandle":"hb"}]}`),
		[]byte(`{"Successful":[{"Id":"0"}],"Failed":[{"Id":"1","Code":"ReceiptHandleIsInvalid","SenderFault":true}]}`))
	// c is released, d extended.
	w.observe("ChangeMessageVisibilityBatch",
		[]byte(`{"Entries":[{"Id":"0","ReceiptHandle":"hc","VisibilityTimeout":0},{"Id":"1","ReceiptHandle":"hd","VisibilityTimeout":30}]}`),
		[]byte(`{"Successful":[{"Id":"0"},{"Id":"1"}]}`))
	w.observe("DeleteMessage", []byte(`not json`), nil)

	w.mu.Lock()
	defer w.mu.Unlock()
	unacked := map[string]bool{}
	for id := range w.unacked {
		unacked[id] = true
	}
	if len(unacked) != 2 || !unacked["b"] || !unacked["d"] {
		t.Errorf("unacked = %v, want b and d", unacked)
	}
	if w.maxUnacked != 4 || w.received != 4 || w.deleted != 1 || w.unparsed != 1 {
		t.Errorf("max unacked %d, received %d, deleted %d, unparsed %d; want 4, 4, 1, 1",
			w.maxUnacked, w.received, w.deleted, w.unparsed)
	}
}
