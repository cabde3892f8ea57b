package sqs

import (
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// A Message is an SQS message as the source hands it out. It is a value: the maps are shared
// between copies and must not be modified.
type Message struct {
	ID   string
	Body string

	// ReceiveCount is how many times SQS has delivered the message, this time included.
	ReceiveCount int
	// SentAt is when SQS accepted the message.
	SentAt time.Time
	// FirstReceivedAt is when SQS first delivered it.
	FirstReceivedAt time.Time
	// ReceivedAt is when this source received this delivery, by the local clock: the time
	// from which Config.MaxExtension is counted.
	ReceivedAt time.Time
	// GroupID, DeduplicationID and SequenceNumber are set for messages of FIFO queues.
	GroupID         string
	DeduplicationID string
	SequenceNumber  string

	// Attributes are the system attributes as SQS returned them, by name
	// ("ApproximateReceiveCount", "SentTimestamp", "MessageGroupId", …).
	Attributes map[string]string
	// MessageAttributes are the attributes its sender set.
	MessageAttributes map[string]types.MessageAttributeValue
}

func newMessage(m types.Message) Message {
	a := m.Attributes
	msg := Message{
		ID:                aws.ToString(m.MessageId),
		Body:              aws.ToString(m.Body),
		GroupID:           a[string(types.MessageSystemAttributeNameMessageGroupId)],
		DeduplicationID:   a[string(types.MessageSystemAttributeNameMessageDeduplicationId)],
		SequenceNumber:    a[string(types.MessageSystemAttributeNameSequenceNumber)],
		SentAt:            millis(a[string(types.MessageSystemAttributeNameSentTimestamp)]),
		FirstReceivedAt:   millis(a[string(types.MessageSystemAttributeNameApproximateFirstReceiveTimestamp)]),
		Attributes:        a,
		MessageAttributes: m.MessageAttributes,
	}
	msg.ReceiveCount, _ = strconv.Atoi(a[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	return msg
}

func millis(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
