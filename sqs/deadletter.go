package sqs

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
)

// deadLetterLocked queues e, which failed for good, for the dead-letter queue.
func (s *Source) deadLetterLocked(e *entry, now time.Time) {
	e.to(toSend)
	e.queuedAt = now
	s.sends = append(s.sends, e)
}

// sendDeadLetter sends a message that failed for good to the dead-letter queue, then has it
// deleted. If it cannot be sent, it is retried like any failed message.
func (s *Source) sendDeadLetter(e *entry) {
	defer s.wg.Done()
	defer s.batchDone()
	in := &awssqs.SendMessageInput{
		QueueUrl:    aws.String(s.cfg.DeadLetterQueueURL),
		MessageBody: aws.String(e.msg.Body),
	}
	if len(e.msg.MessageAttributes) > 0 {
		in.MessageAttributes = e.msg.MessageAttributes
	}
	s.fifoDeadLetter(in, e.msg)
	for attempt := 0; ; attempt++ {
		_, err := s.client.SendMessage(s.ctx, in, s.opts...)
		s.count.SendMessage.Add(1)
		if err == nil {
			break
		}
		if s.batchFailed("SendMessage", s.cfg.DeadLetterQueueURL, err, attempt) {
			continue
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.lost++
			s.finishLocked(e)
		} else {
			s.retryLocked(e, time.Now())
		}
		s.unlock()
		return
	}
	s.mu.Lock()
	s.count.DeadLettered.Add(1)
	s.deleteLocked(e, time.Now())
	s.unlock()
}
