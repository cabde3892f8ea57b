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
		// Close gave up: what is still queued will not be done.
		for _, e := range s.dels {
			s.finishLocked(e)
		}
		for _, e := range s.sends {
			s.finishLocked(e)
		}
		s.lost += len(s.dels) + len(s.sends)
		for _, e := range s.vis {
			if e.beat == beatQueued {
				e.beat = beatIdle // an extension not made is no loss
			}
			if e.state == toRelease || e.state == toRetry {
				s.lost++
				s.finishLocked(e)
			}
		}
		s.dels, s.sends, s.vis = nil, nil, nil
		return
	}
	free := func() bool { return s.batches < s.cfg.MaxBatchRequests }
	// Draining, with nothing handed out or waiting to be: no more outcomes will join a batch.
	last := s.cfg.Drain && s.outN == 0 && len(s.ready) == 0
	due := func(n int, oldest time.Time) bool {
		return n >= maxBatch || s.closing || last || !now.Before(oldest.Add(s.cfg.FlushInterval))
	}

	for len(s.dels) > 0 && free() && due(len(s.dels), s.dels[0].queuedAt) {
		k := min(maxBatch, len(s.dels))
		batch := make([]batchItem, k)
		for i, e := range s.dels[:k] {
			batch[i] = batchItem{e: e, handle: e.handle}
			e.to(deleting)
		}
		clear(s.dels[:k])
		s.dels = s.dels[k:]
		s.batches++
		s.wg.Add(1)
		s.req.do(func() { s.deleteBatch(batch) })
	}

	for len(s.sends) > 0 && free() {
		e := s.sends[0]
		s.sends = s.sends[1:]
		e.to(sending)
		s.batches++
		s.wg.Add(1)
		s.req.do(func() { s.sendDeadLetter(e) })
	}

	// Visibility changes: those of a message with an extension in flight wait for it;
	// extensions of messages that have had their outcome meanwhile are dropped.
	var ready []*entry
	kept := s.vis[:0]
	urgent := false
	for _, e := range s.vis {
		switch {
		case e.beat == beatQueued && !e.mine():
			e.beat = beatIdle
		case e.beat == beatBusy:
			kept = append(kept, e)
		default:
			kept = append(kept, e)
			ready = append(ready, e)
			urgent = urgent || e.state != toRetry
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
			it := batchItem{e: e, handle: e.handle, to: e.hide}
			switch e.state {
			case toRelease:
				it.kind = visRelease
				e.to(changing)
			case toRetry:
				it.kind = visRetry
				e.to(changing)
			default:
				it.kind = visExtend
				e.beat = beatBusy
			}
			batch[i] = it
			taken[e] = true
		}
		ready = ready[k:]
		s.batches++
		s.wg.Add(1)
		s.req.do(func() { s.changeBatch(batch) })
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
	t := time.NewTimer(s.pause.DelayAt(attempt+1, s.rand()))
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
	s.count.FailedRequests.Add(1)
	if s.ctx.Err() != nil {
		return false
	}
	kind := classify(err)
	if kind == ErrQueueNotFound || kind == ErrAccessDenied {
		// Every later request would fail the same way, and messages that cannot be deleted
		// would be processed again and again.
		s.mu.Lock()
		s.failLocked(&Error{Action: action, Queue: queue, Kind: kind, Err: err})
		s.unlock()
		return false
	}
	retry := kind == ErrUnavailable && attempt+1 < batchAttempts
	s.log.LogAttrs(context.Background(), slog.LevelWarn, action+" failed",
		slog.Int("attempt", attempt+1), slog.Bool("retrying", retry), slog.Any("err", err))
	return retry && s.retryPause(attempt)
}

func (s *Source) batchDone() {
	s.mu.Lock()
	s.batches--
	s.unlock()
	s.wake()
}

// entryFailed reports an entry of a batch answer that failed. It tells whether to try it again.
func (s *Source) entryFailedLocked(action string, f types.BatchResultErrorEntry, attempt int) bool {
	if !f.SenderFault && attempt+1 < batchAttempts {
		return true
	}
	if f.SenderFault {
		s.count.Invalid.Add(1)
	} else {
		s.count.Dropped.Add(1)
	}
	s.logLocked(slog.LevelWarn, action+" refused an entry",
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
			s.unlock()
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
		s.unlock()
		items = again
		if len(items) > 0 && !s.retryPause(attempt) {
			s.mu.Lock()
			s.giveUpLocked(items)
			s.unlock()
			return
		}
	}
}

// giveUpLocked forgets items whose request could not be made. Their messages come back when
// their visibility runs out (a heartbeat is simply tried again at the next tick).
func (s *Source) giveUpLocked(items []batchItem) {
	for _, it := range items {
		if it.kind == visExtend {
			s.extendedLocked(it)
			continue
		}
		if s.ctx.Err() != nil {
			s.lost++
		} else {
			s.count.Dropped.Add(1)
		}
		s.finishLocked(it.e)
	}
}
