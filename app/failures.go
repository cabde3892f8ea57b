package app

import (
	"errors"
	"time"

	"github.com/palleto/palleto/sqs"
)

// logFailure logs the failure of a message of a run, once, with what happens next.
func (c Config) logFailure(m *ticket, err error) {
	c.Logger.Warn("message failed", "message_id", m.id, "attempt", m.attempt, "err", err, "next", c.nextAfterFailure(m.attempt, err))
}

// nextAfterFailure says what the SQS source of a run does with a message that failed.
func (c Config) nextAfterFailure(attempt int, err error) string {
	if c.DLQURL != "" && errors.Is(err, sqs.ErrPermanent) {
		return "moved to the dead-letter queue"
	}
	step := c.sqsConfig().Retry.Step(attempt) // the delay before jitter takes a part off
	if step <= 0 {
		return "retried at once, unless the queue's redrive policy moves it"
	}
	return "retried within " + step.Round(time.Millisecond).String() + ", unless the queue's redrive policy moves it"
}
