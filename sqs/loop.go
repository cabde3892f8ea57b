package sqs

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// run is the owner loop: the one place that starts requests. It wakes when demand, outcomes or
// answers arrive, when a flush or backoff is due, and on heartbeat ticks.
func (s *Source) run() {
	defer close(s.done)
	defer s.cancel()

	var tick <-chan time.Time
	if s.cfg.MaxExtension > 0 {
		// A message is extended once a third of its visibility has passed; ticking at a
		// tenth keeps every extension well before half of it.
		t := time.NewTicker(s.cfg.VisibilityTimeout / 10)
		defer t.Stop()
		tick = t.C
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	beat := false
	for {
		s.mu.Lock()
		now := time.Now()
		if beat && !s.closing {
			s.heartbeatLocked(now)
		}
		beat = false
		s.startPollsLocked(now)
		s.flushLocked(now)
		finished := s.closing && len(s.polls) == 0 && s.batches == 0 && !s.checking &&
			len(s.dels) == 0 && len(s.vis) == 0 && len(s.sends) == 0
		next := s.nextWakeLocked(now)
		s.mu.Unlock()
		if finished {
			s.wg.Wait()
			return
		}
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(next.Sub(now))
		}
		select {
		case <-s.kick:
		case <-timer.C:
		case <-tick:
			beat = true
		}
	}
}

// nextWakeLocked returns when the loop must look again without being woken, or zero.
func (s *Source) nextWakeLocked(now time.Time) time.Time {
	var next time.Time
	earliest := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if s.demand > s.reserved && s.after.After(now) {
		earliest(s.after)
	}
	if s.batches >= s.cfg.MaxBatchRequests {
		return next // the end of a batch request wakes the loop
	}
	if len(s.dels) > 0 {
		earliest(s.dels[0].queuedAt.Add(s.cfg.FlushInterval))
	}
	for _, e := range s.vis {
		if !e.visBusy {
			earliest(e.queuedAt.Add(s.cfg.FlushInterval))
			break
		}
	}
	return next
}

// startPollsLocked starts as many receives as the demand that no receive in flight covers
// needs, each for at most 10 messages, within Config.MaxReceives; after an empty or failed
// one, only one at a time, once the backoff has passed.
func (s *Source) startPollsLocked(now time.Time) {
	if s.closing || s.err != nil || s.eof || s.drained || now.Before(s.after) {
		return
	}
	// Back-pressure from deletes: handled messages no longer count against demand, so
	// without this a fast pipeline over slow deletes would pile up messages whose visibility
	// runs out before they are deleted. The end of a delete request wakes the loop.
	if len(s.dels) >= s.deleteBacklog() {
		return
	}
	limit := min(s.cfg.MaxReceives, (s.demand+maxBatch-1)/maxBatch)
	if s.fails > 0 {
		limit = min(limit, 1)
	}
	for s.demand > s.reserved && len(s.polls) < limit {
		k := min(maxBatch, s.demand-s.reserved)
		s.reserved += k
		s.pollID++
		ctx, cancel := context.WithCancel(s.pollCtx)
		s.polls[s.pollID] = cancel
		s.wg.Add(1)
		go s.poll(ctx, s.pollID, k)
	}
}

// deleteBacklog is how many messages may wait for their delete before receiving pauses:
// two rounds of full batches at the request limit.
func (s *Source) deleteBacklog() int {
	return 2 * s.cfg.MaxBatchRequests * maxBatch
}

func (s *Source) poll(ctx context.Context, id, k int) {
	defer s.wg.Done()
	wait := s.cfg.WaitTime
	if s.cfg.Drain {
		wait = min(wait, drainWait)
	}
	in := &awssqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(s.cfg.QueueURL),
		MaxNumberOfMessages:         int32(k),
		WaitTimeSeconds:             int32(wait / time.Second),
		VisibilityTimeout:           seconds(s.cfg.VisibilityTimeout),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	}
	if s.fifo {
		// The SDK retries a request whose answer was lost with the same input: with an
		// attempt id, SQS then hands back the same messages instead of keeping them (and
		// their groups) hidden until their visibility runs out.
		in.ReceiveRequestAttemptId = aws.String(strconv.FormatUint(rand.Uint64(), 36))
	}
	out, err := s.client.ReceiveMessage(ctx, in)
	now := time.Now()

	s.mu.Lock()
	defer s.wake()
	defer s.mu.Unlock()
	aborted := ctx.Err() != nil
	s.polls[id]()
	delete(s.polls, id)
	s.reserved -= k
	s.stats.Requests.ReceiveMessage++
	if err != nil {
		if aborted {
			s.settleDrainLocked()
			return // aborted by us: not a failure of SQS
		}
		s.stats.Requests.Failed++
		if kind := classify(err); kind != ErrUnavailable {
			s.failLocked(&Error{Action: "ReceiveMessage", Queue: s.cfg.QueueURL, Kind: kind, Err: err})
			return
		}
		s.backoffLocked(now)
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "receive failed, retrying",
			slog.Int("in_a_row", s.fails), slog.Any("err", err))
		s.settleDrainLocked()
		return
	}
	if len(out.Messages) == 0 {
		s.backoffLocked(now)
		s.checkDrainLocked()
		s.settleDrainLocked()
		return
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.LogAttrs(context.Background(), slog.LevelDebug, "received "+strconv.Itoa(len(out.Messages)),
			slog.Int("asked", k), slog.Int("demand", s.demand))
	}
	fresh := 0
	for _, m := range out.Messages {
		if s.addLocked(m, now) {
			fresh++
		}
	}
	if fresh == 0 {
		// Only messages the source already holds, come back: as good as empty.
		s.backoffLocked(now)
		return
	}
	s.fails, s.after, s.drained = 0, time.Time{}, false
	s.seen++
	s.serveLocked()
}

func (s *Source) backoffLocked(now time.Time) {
	d := grow(s.cfg.PollBackoff, s.cfg.MaxPollBackoff, s.fails)
	s.fails++
	s.after = now.Add(s.jitter(d))
}

// addLocked takes in a received message; false means the source held it already.
func (s *Source) addLocked(m types.Message, now time.Time) bool {
	msg := newMessage(m)
	handle := aws.ToString(m.ReceiptHandle)
	if old := s.byID[msg.ID]; old != nil && (old.state == stHeld || old.state == stOut || !old.visBusy && !old.delBusy) {
		// Its visibility ran out while we held it. SQS wants the newest receipt handle,
		// and the message must not be handed out twice. (Once a delete or change with
		// the old handle is on its way, it is too late: the copy is a new delivery.)
		old.handle = handle
		old.expires = now.Add(s.cfg.VisibilityTimeout)
		s.stats.Redelivered++
		return false
	}
	s.stats.Received++
	e := &entry{src: s, msg: msg, handle: handle, receivedAt: now, expires: now.Add(s.cfg.VisibilityTimeout)}
	s.byID[msg.ID] = e
	if s.closing || s.err != nil {
		s.releaseLocked(e, now)
		return true
	}
	if s.fifo && msg.GroupID != "" {
		if g := s.groups[msg.GroupID]; g != nil {
			e.group = g
			g.held = append(g.held, e)
			return true
		}
		e.group = &group{id: msg.GroupID}
		s.groups[msg.GroupID] = e.group
	}
	s.ready = append(s.ready, e)
	return true
}

// failLocked stops the source for good: waiting and later Receive calls return err.
func (s *Source) failLocked(err error) {
	if s.err != nil {
		return
	}
	s.err = err
	s.log.LogAttrs(context.Background(), slog.LevelError, "source stopped", slog.Any("err", err))
	s.pollCancel()
	s.serveLocked()
}

// checkDrainLocked starts a drain check after an empty receive, if the source holds nothing.
func (s *Source) checkDrainLocked() {
	if !s.cfg.Drain || s.checking || s.closing || s.err != nil || s.eof || len(s.byID) > 0 {
		return
	}
	s.checking = true
	s.wg.Add(1)
	go s.checkDrain(s.seen)
}

var drainAttributes = []types.QueueAttributeName{
	types.QueueAttributeNameApproximateNumberOfMessages,
	types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
}

func (s *Source) checkDrain(seen int64) {
	defer s.wg.Done()
	out, err := s.client.GetQueueAttributes(s.ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(s.cfg.QueueURL),
		AttributeNames: drainAttributes,
	})
	s.mu.Lock()
	defer s.wake()
	defer s.mu.Unlock()
	s.checking = false
	s.stats.Requests.GetQueueAttributes++
	if err != nil {
		s.stats.Requests.Failed++
		if s.ctx.Err() != nil {
			return
		}
		if kind := classify(err); kind != ErrUnavailable {
			s.failLocked(&Error{Action: "GetQueueAttributes", Queue: s.cfg.QueueURL, Kind: kind, Err: err})
			return
		}
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "drain check failed", slog.Any("err", err))
		return
	}
	for _, a := range drainAttributes {
		if n, err := strconv.Atoi(out.Attributes[string(a)]); err != nil || n != 0 {
			return
		}
	}
	if s.seen == seen && len(s.byID) == 0 {
		s.drained = true
		s.settleDrainLocked()
	}
}

// settleDrainLocked ends the source once the queue was found empty and the receives that
// were in flight then brought nothing.
func (s *Source) settleDrainLocked() {
	if s.drained && !s.eof && len(s.polls) == 0 && len(s.byID) == 0 {
		s.eof = true
		s.log.LogAttrs(context.Background(), slog.LevelInfo, "queue drained")
		s.serveLocked()
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

// notInflight are the batch entry error codes of SQS for a message that is visible already
// (the second is how the query protocol spells it).
var notInflight = map[string]bool{"MessageNotInflight": true, "AWS.SimpleQueueService.MessageNotInflight": true}

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
		})
		s.mu.Lock()
		s.stats.Requests.DeleteMessageBatch++
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return out.Failed, nil
	}, func(it batchItem, f *types.BatchResultErrorEntry, attempt int) bool {
		if f == nil {
			s.stats.Deleted++
		} else if s.entryFailedLocked(action, *f, attempt) {
			return true
		}
		s.finishLocked(it.e)
		return false
	})
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
