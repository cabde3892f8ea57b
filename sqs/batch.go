package sqs

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// flushLocked starts the batch requests that are due: full batches at once, others after
// Config.FlushInterval, everything at once when closing.
func (s *Source) flushLocked(now time.Time) {
	if s.ctx.Err() != nil {
		// Close gave up: what is still pending will not be done.
		for _, e := range s.dels {
			s.finishLocked(e)
		}
		for _, e := range s.sends {
			s.finishLocked(e)
		}
		for _, e := range s.vis {
			e.visQueued = false
			if !e.visBusy {
				s.finishLocked(e)
			}
		}
		s.lost += len(s.dels) + len(s.sends)
		for _, e := range s.vis {
			if !e.visBusy { // a busy one is counted when its request ends
				s.lost++
			}
		}
		s.dels, s.sends, s.vis = nil, nil, nil
		return
	}
	free := func() bool { return s.batches < s.cfg.MaxBatchRequests }
	due := func(n int, oldest time.Time) bool {
		return n >= maxBatch || s.closing || !now.Before(oldest.Add(s.cfg.FlushInterval))
	}

	for len(s.dels) > 0 && free() && due(len(s.dels), s.dels[0].queuedAt) {
		k := min(maxBatch, len(s.dels))
		batch := make([]batchItem, k)
		for i, e := range s.dels[:k] {
			batch[i] = batchItem{e: e, handle: e.handle}
			e.delBusy = true
		}
		clear(s.dels[:k])
		s.dels = s.dels[k:]
		s.batches++
		s.wg.Add(1)
		go s.deleteBatch(batch)
	}

	for len(s.sends) > 0 && free() {
		e := s.sends[0]
		s.sends = s.sends[1:]
		s.batches++
		s.wg.Add(1)
		go s.sendDeadLetter(e)
	}

	// Visibility changes: those of a message with a change in flight wait for it; heartbeats
	// of messages that have had their outcome meanwhile are dropped.
	var ready []*entry
	kept := s.vis[:0]
	urgent := false
	for _, e := range s.vis {
		switch {
		case e.visKind == visExtend && e.state != stHeld && e.state != stOut:
			e.visQueued = false
		case e.visBusy:
			kept = append(kept, e)
		default:
			kept = append(kept, e)
			ready = append(ready, e)
			urgent = urgent || e.visUrgent
		}
	}
	clear(s.vis[len(kept):])
	s.vis = kept
	if len(ready) == 0 || !free() {
		return
	}
	if !urgent && !due(len(ready), ready[0].queuedAt) {
		return
	}
	taken := map[*entry]bool{}
	for len(ready) > 0 && free() {
		k := min(maxBatch, len(ready))
		batch := make([]batchItem, k)
		for i, e := range ready[:k] {
			batch[i] = batchItem{e: e, handle: e.handle, kind: e.visKind, to: e.visTo}
			e.visQueued, e.visBusy = false, true
			taken[e] = true
		}
		ready = ready[k:]
		s.batches++
		s.wg.Add(1)
		go s.changeBatch(batch)
	}
	kept = s.vis[:0]
	for _, e := range s.vis {
		if !taken[e] {
			kept = append(kept, e)
		}
	}
	clear(s.vis[len(kept):])
	s.vis = kept
}

// A batchItem is one entry of a batch request, with what was asked for it when it was sent.
type batchItem struct {
	e      *entry
	handle string
	kind   visKind
	to     time.Duration
}

// retryPause waits before the next attempt of a batch request; false means Close gave up.
func (s *Source) retryPause(attempt int) bool {
	t := time.NewTimer(s.jitter(grow(s.cfg.PollBackoff, s.cfg.MaxPollBackoff, attempt)))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// batchFailed handles the error of a whole batch request: it tells whether to try again.
func (s *Source) batchFailed(action, queue string, err error, attempt int) bool {
	s.mu.Lock()
	s.stats.Requests.Failed++
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return false
	}
	kind := classify(err)
	if kind == ErrQueueNotFound || kind == ErrAccessDenied {
		// Every later request would fail the same way, and messages that cannot be deleted
		// would be processed again and again.
		s.failLocked(&Error{Action: action, Queue: queue, Kind: kind, Err: err})
		s.mu.Unlock()
		return false
	}
	retry := kind == ErrUnavailable && attempt+1 < batchAttempts
	s.log.LogAttrs(context.Background(), slog.LevelWarn, action+" failed",
		slog.Int("attempt", attempt+1), slog.Bool("retrying", retry), slog.Any("err", err))
	s.mu.Unlock()
	return retry && s.retryPause(attempt)
}

func (s *Source) batchDone() {
	s.mu.Lock()
	s.batches--
	s.mu.Unlock()
	s.wake()
}

// entryFailed reports an entry of a batch answer that failed. It tells whether to try it again.
func (s *Source) entryFailedLocked(action string, f types.BatchResultErrorEntry, attempt int) bool {
	if !f.SenderFault && attempt+1 < batchAttempts {
		return true
	}
	if f.SenderFault {
		s.stats.Invalid++
	} else {
		s.stats.Dropped++
	}
	s.log.LogAttrs(context.Background(), slog.LevelWarn, action+" refused an entry",
		slog.String("code", aws.ToString(f.Code)), slog.String("message", aws.ToString(f.Message)),
		slog.Bool("sender_fault", f.SenderFault))
	return false
}

// runBatch makes one batch request for items with send, and again for the entries that SQS
// failed on its side, until each item has its answer. handle is called, with the lock held,
// for every item: with nil when its entry succeeded, with the error entry otherwise; it
// returns true to send the item again. A request that fails as a whole is retried
// (batchFailed) or given up.
func (s *Source) runBatch(action string, items []batchItem,
	send func([]batchItem) ([]types.BatchResultErrorEntry, error),
	handle func(it batchItem, f *types.BatchResultErrorEntry, attempt int) (again bool)) {
	defer s.wg.Done()
	defer s.batchDone()
	for attempt := 0; len(items) > 0; attempt++ {
		failed, err := send(items)
		if err != nil {
			if s.batchFailed(action, s.cfg.QueueURL, err, attempt) {
				continue
			}
			s.mu.Lock()
			s.giveUpLocked(items)
			s.mu.Unlock()
			return
		}
		byIndex := make(map[int]*types.BatchResultErrorEntry, len(failed))
		for j := range failed {
			i, err := strconv.Atoi(aws.ToString(failed[j].Id))
			if err != nil || i < 0 || i >= len(items) || byIndex[i] != nil {
				continue // an Id that names no entry of ours
			}
			byIndex[i] = &failed[j]
		}
		var again []batchItem
		s.mu.Lock()
		for i, it := range items {
			if handle(it, byIndex[i], attempt) {
				again = append(again, it)
			}
		}
		s.mu.Unlock()
		items = again
		if len(items) > 0 && !s.retryPause(attempt) {
			s.mu.Lock()
			s.giveUpLocked(items)
			s.mu.Unlock()
			return
		}
	}
}

// giveUpLocked forgets items whose request could not be made. Their messages come back when
// their visibility runs out (a heartbeat is simply tried again at the next tick).
func (s *Source) giveUpLocked(items []batchItem) {
	for _, it := range items {
		e := it.e
		e.visBusy = false
		if it.kind == visExtend {
			continue
		}
		if s.ctx.Err() != nil {
			s.lost++
		} else {
			s.stats.Dropped++
		}
		if !e.visQueued {
			s.finishLocked(e)
		}
	}
}
