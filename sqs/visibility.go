package sqs

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

type visKind uint8

const (
	visExtend  visKind = iota + 1 // heartbeat
	visRelease                    // unfinished: visible at once
	visRetry                      // failed: visible after the retry delay
)

// releaseLocked queues e to be made visible at once: it is unfinished.
func (s *Source) releaseLocked(e *entry, now time.Time) {
	s.changeLocked(e, toRelease, 0, now)
}

// retryLocked queues e to be made visible after the retry delay: it failed. A message that
// failed on the delivery that the queue's redrive policy allows last is made visible at once
// instead: SQS delivers it no more, but moves it to the dead-letter queue at the next receive,
// and a delay would only put that off (and a drain's end with it).
//
// SQS delivers no message more often than the policy allows, so a message that comes more
// often says that the policy changed since Check read it (it was raised, or removed). Which
// delivery is the last is then not known: from then on every failure waits its retry delay,
// as on a queue without a policy. Without this, a policy removed while the source runs would
// have every failure of a poison message redelivered at once, again and again.
func (s *Source) retryLocked(e *entry, now time.Time) {
	n := e.msg.ReceiveCount
	hide := s.cfg.Retry.Delay(max(n, 1))
	switch {
	case s.redriveMax > 0 && n > s.redriveMax:
		s.logLocked(slog.LevelWarn, "the queue's redrive policy has changed since start-up: a message came more often than its maxReceiveCount; failures now wait their retry delay on every delivery",
			slog.Int("max_receive_count", s.redriveMax), slog.Int("receive_count", n))
		s.redriveMax = 0
	case s.lastDeliveryLocked(n):
		hide = 0
	}
	s.changeLocked(e, toRetry, hide, now)
}

// LastDelivery reports whether a message delivered for the receiveCount-th time is on the last
// delivery that the queue's redrive policy allows, as Check read it: made visible again, it
// would be moved to the dead-letter queue at its next receive. False when no policy is known.
func (s *Source) LastDelivery(receiveCount int) bool {
	s.mu.Lock()
	defer s.unlock()
	return s.lastDeliveryLocked(receiveCount)
}

func (s *Source) lastDeliveryLocked(receiveCount int) bool {
	return s.redriveMax > 0 && receiveCount >= s.redriveMax
}

// changeLocked moves e to next (toRelease or toRetry) and queues the visibility change. An
// extension of e still queued is replaced, keeping its place; one in flight is let finish
// first, so that the last change asked for is the last made.
func (s *Source) changeLocked(e *entry, next state, hide time.Duration, now time.Time) {
	queued := e.inVis()
	e.to(next)
	e.hide = hide
	if e.beat == beatQueued {
		e.beat = beatIdle
	}
	if !queued {
		e.queuedAt = now
		s.vis = append(s.vis, e)
	}
}

// heartbeatLocked asks for the visibility of every held message to be extended once a third
// of it has passed, until Config.MaxExtension since its receipt.
func (s *Source) heartbeatLocked(now time.Time) {
	vt := s.cfg.VisibilityTimeout
	for _, e := range s.byID {
		if !e.mine() || e.beat != beatIdle {
			continue
		}
		if now.Before(e.expires.Add(-vt * 2 / 3)) {
			continue
		}
		// The last extension is shorter: a message cannot be kept past MaxExtension.
		to := min(vt, e.receivedAt.Add(s.cfg.MaxExtension).Sub(now))
		if to <= 0 {
			e.beat = beatOff
			continue
		}
		e.beat = beatQueued
		e.hide = to
		e.queuedAt = now
		s.vis = append(s.vis, e)
	}
}

// extendedLocked ends the extension it of a message, made or given up: the heartbeat goes on
// unless it was the last one.
func (s *Source) extendedLocked(it batchItem) {
	it.e.beat = beatIdle
	if it.to < s.cfg.VisibilityTimeout {
		it.e.beat = beatOff
	}
}

// notInflight are the batch entry error codes of SQS for a message that is visible already
// (the second is how the query protocol spells it).
var notInflight = map[string]bool{"MessageNotInflight": true, "AWS.SimpleQueueService.MessageNotInflight": true}

func (s *Source) changeBatch(items []batchItem) {
	const action = "ChangeMessageVisibilityBatch"
	var sent time.Time // when the request that succeeded was sent: extensions count from it
	s.runBatch(action, items, func(items []batchItem) ([]types.BatchResultErrorEntry, error) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(items))
		for i, it := range items {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id:                aws.String(strconv.Itoa(i)),
				ReceiptHandle:     aws.String(it.handle),
				VisibilityTimeout: seconds(it.to),
			}
		}
		sent = time.Now()
		out, err := s.client.ChangeMessageVisibilityBatch(s.ctx, &awssqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(s.cfg.QueueURL),
			Entries:  entries,
		}, s.opts...)
		s.count.ChangeMessageVisibilityBatch.Add(1)
		if err != nil {
			return nil, err
		}
		return out.Failed, nil
	}, func(it batchItem, f *types.BatchResultErrorEntry, attempt int) bool {
		e := it.e
		if f != nil && it.kind == visRelease && notInflight[aws.ToString(f.Code)] {
			f = nil // visible already: released all the same
		}
		if f != nil {
			if s.entryFailedLocked(action, *f, attempt) {
				return true
			}
			// The handle is stale or the message no longer in flight: nothing more can be
			// done with it by this source.
			if it.kind == visExtend {
				e.beat = beatOff
			} else {
				s.finishLocked(e)
			}
			return false
		}
		switch it.kind {
		case visExtend:
			s.count.Extended.Add(1)
			s.extendedLocked(it)
			if e.mine() {
				e.expires = sent.Add(it.to)
			}
		case visRelease:
			s.count.Released.Add(1)
			s.backLocked(sent, it.to)
			s.finishLocked(e)
		case visRetry:
			s.backLocked(sent, it.to)
			s.finishLocked(e)
		}
		return false
	})
}

// backLocked notes that a message made visible again by a request sent at sent, hidden for
// hide, is due back in the queue then (SQS counts in whole seconds).
func (s *Source) backLocked(sent time.Time, hide time.Duration) {
	if due := sent.Add(time.Duration(seconds(hide)) * time.Second); due.After(s.back) {
		s.back = due
	}
}
