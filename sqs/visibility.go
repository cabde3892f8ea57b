package sqs

import (
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

func (s *Source) releaseLocked(e *entry, now time.Time) {
	e.state = stChanging
	s.queueVisLocked(e, visRelease, 0, true, now)
}

func (s *Source) retryLocked(e *entry, now time.Time) {
	e.state = stChanging
	s.queueVisLocked(e, visRetry, s.cfg.Retry.Delay(max(e.msg.ReceiveCount, 1)), false, now)
}

// queueVisLocked asks for a visibility change of e, replacing one that has not been sent yet.
// One that is in flight is let finish first, so that the last one asked for is the last made.
func (s *Source) queueVisLocked(e *entry, kind visKind, to time.Duration, urgent bool, now time.Time) {
	e.visKind, e.visTo, e.visUrgent = kind, to, urgent
	if !e.visQueued {
		e.visQueued = true
		e.queuedAt = now
		s.vis = append(s.vis, e)
	}
}

// heartbeatLocked asks for the visibility of every held message to be extended once a third
// of it has passed, until Config.MaxExtension since its receipt.
func (s *Source) heartbeatLocked(now time.Time) {
	vt := s.cfg.VisibilityTimeout
	for _, e := range s.byID {
		if (e.state != stHeld && e.state != stOut) || e.noExtend || e.visQueued || e.visBusy {
			continue
		}
		if now.Before(e.expires.Add(-vt * 2 / 3)) {
			continue
		}
		to := min(vt, e.receivedAt.Add(s.cfg.MaxExtension).Sub(now))
		if to < vt {
			// The last one: a message cannot be kept past MaxExtension.
			e.noExtend = true
		}
		if to <= 0 {
			continue
		}
		s.queueVisLocked(e, visExtend, to, true, now)
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
		})
		s.mu.Lock()
		s.stats.Requests.ChangeMessageVisibilityBatch++
		s.mu.Unlock()
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
			e.visBusy = false
			if it.kind == visExtend {
				e.noExtend = true
			} else if !e.visQueued {
				s.finishLocked(e)
			}
			return false
		}
		e.visBusy = false
		switch it.kind {
		case visExtend:
			s.stats.Extended++
			if e.state == stHeld || e.state == stOut {
				e.expires = sent.Add(it.to)
			}
		case visRelease:
			s.stats.Released++
			s.finishLocked(e)
		case visRetry:
			s.finishLocked(e)
		}
		return false
	})
}
