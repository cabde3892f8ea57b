package sqs

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
)

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
	if s.fifo {
		in.MessageGroupId = aws.String(e.msg.GroupID)
		if e.msg.GroupID == "" {
			in.MessageGroupId = aws.String(e.msg.ID)
		}
		in.MessageDeduplicationId = aws.String(e.msg.ID)
	}
	for attempt := 0; ; attempt++ {
		_, err := s.client.SendMessage(s.ctx, in)
		s.mu.Lock()
		s.stats.Requests.SendMessage++
		s.mu.Unlock()
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
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.stats.DeadLettered++
	s.deleteLocked(e, time.Now())
	s.mu.Unlock()
}
