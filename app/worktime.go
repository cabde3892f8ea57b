package app

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DefaultMaxWorkTime is Config.MaxWorkTime's default.
const DefaultMaxWorkTime = time.Hour

// workMargin is how much longer than --max-work-time the SQS source keeps a message hidden,
// so that the release at the limit reaches SQS before the heartbeat lets the message go.
const workMargin = time.Minute

// maxVisibility is the longest SQS keeps a message hidden, counted from its receipt.
const maxVisibility = 12 * time.Hour

// An overtime is the error of work on a message's object cut off at --max-work-time. The
// ledger releases the message (it is visible again at once and no failure is counted) and
// logs one warning for it.
type overtime struct {
	messageID, bucket, key string
	limit                  time.Duration
}

func (e *overtime) Error() string {
	return fmt.Sprintf("message %s: s3://%s/%s still in work after --max-work-time %v", e.messageID, e.bucket, e.key, e.limit)
}

// bounded runs fn on j under j's work deadline, when it has one. Work cut off by the
// deadline fails with an *overtime, whatever error fn made of the cancellation (a timed-out
// download must not pass for a fault of S3).
func bounded[U any](s *stages, ctx context.Context, j objectJob, fn func(context.Context) (U, error)) (U, error) {
	if j.Deadline.IsZero() {
		return fn(ctx)
	}
	over := &overtime{messageID: j.MessageID, bucket: j.Obj.Bucket, key: j.Obj.Key, limit: s.maxWork}
	wctx, cancel := context.WithDeadlineCause(ctx, j.Deadline, over)
	defer cancel()
	u, err := fn(wctx)
	if err != nil && errors.Is(context.Cause(wctx), over) && ctx.Err() == nil {
		var zero U
		return zero, over
	}
	return u, err
}
