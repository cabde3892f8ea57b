package sqs

import (
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/palleto/palleto/flow"
)

// Acknowledge implements flow.Acknowledger: a success is deleted, a failure made visible again
// after the retry delay (or sent to the dead-letter queue when permanent), a release made
// visible at once. The requests are made by the owner loop, in batches.
func (s *Source) Acknowledge(results []flow.Result) {
	s.mu.Lock()
	now := time.Now()
	for _, r := range results {
		e, ok := r.Token.(*entry)
		if !ok || e.src != s || e.state != out {
			continue // not ours, or released by Close meanwhile
		}
		s.outN--
		switch r.Status {
		case flow.Succeeded:
			s.deleteLocked(e, now)
			s.nextInGroupLocked(e)
		case flow.Released:
			s.releaseGroupLocked(e, now)
			s.releaseLocked(e, now)
		default:
			s.count.Failed.Add(1)
			s.releaseGroupLocked(e, now)
			if s.cfg.DeadLetterQueueURL != "" && errors.Is(r.Err, ErrPermanent) {
				s.deadLetterLocked(e, now)
			} else {
				s.retryLocked(e, now)
			}
		}
	}
	s.serveLocked()
	s.unlock()
	s.wake()
}

func (s *Source) deleteLocked(e *entry, now time.Time) {
	e.to(toDelete)
	e.queuedAt = now
	s.dels = append(s.dels, e)
}

func (s *Source) deleteBatch(items []batchItem) {
	const action = "DeleteMessageBatch"
	s.runBatch(action, items, func(items []batchItem) ([]types.BatchResultErrorEntry, error) {
		entries := make([]types.DeleteMessageBatchRequestEntry, len(items))
		for i, it := range items {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(it.handle)}
		}
		out, err := s.client.DeleteMessageBatch(s.ctx, &awssqs.DeleteMessageBatchInput{
			QueueUrl: aws.String(s.cfg.QueueURL),
			Entries:  entries,
		}, s.opts...)
		s.count.DeleteMessageBatch.Add(1)
		if err != nil {
			return nil, err
		}
		return out.Failed, nil
	}, func(it batchItem, f *types.BatchResultErrorEntry, attempt int) bool {
		if f == nil {
			s.count.Deleted.Add(1)
		} else if s.entryFailedLocked(action, *f, attempt) {
			return true
		}
		s.finishLocked(it.e)
		return false
	})
}
