package sqs

import (
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
)

// checkDrainLocked starts a drain check, if the source holds nothing: after an empty receive,
// and when the source lets go of its last message (the end of a drain is usually the last
// delete, with a receive waiting on the empty queue; without a check then, the run would
// wait for that receive's long poll to end, and for the backoff after it).
func (s *Source) checkDrainLocked() {
	if !s.cfg.Drain || s.checking || s.closing || s.err != nil || s.eof || len(s.byID) > 0 {
		return
	}
	s.checking = true
	s.wg.Add(1)
	seen := s.seen
	s.req.do(func() { s.checkDrain(seen) })
}

func (s *Source) checkDrain(seen int64) {
	defer s.wg.Done()
	out, err := s.client.GetQueueAttributes(s.ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(s.cfg.QueueURL),
		AttributeNames: countAttributes,
	})
	s.mu.Lock()
	defer s.wake()
	defer s.unlock()
	s.checking = false
	s.count.GetQueueAttributes.Add(1)
	if err != nil {
		s.count.FailedRequests.Add(1)
		if s.ctx.Err() != nil {
			return
		}
		if kind := classify(err); kind != ErrUnavailable {
			s.failLocked(&Error{Action: "GetQueueAttributes", Queue: s.cfg.QueueURL, Kind: kind, Err: err})
			return
		}
		s.logLocked(slog.LevelWarn, "drain check failed", slog.Any("err", err))
		return
	}
	if c, err := countsOf(out.Attributes); err != nil || c != (Counts{}) {
		return
	}
	// A message this source made visible again comes back: until it is due, and a moment
	// after, counts of zero say that SQS has not counted it (they are approximate; moto
	// counts a message that turns visible during the count as neither visible nor in flight),
	// not that the queue is empty. The receives go on meanwhile, and the next empty one checks
	// again.
	if time.Now().Before(s.back.Add(drainSettle)) {
		return
	}
	if s.seen == seen && len(s.byID) == 0 {
		s.drained = true
		// The queue was empty with nothing received since: what the receives in flight
		// wait for is not coming. (A message sent from now on is for the next run; if SQS
		// handed one to a receive as it is aborted, it comes back after its visibility
		// timeout.)
		for _, cancel := range s.polls {
			cancel()
		}
		s.settleDrainLocked()
	}
}

// settleDrainLocked ends the source once the queue was found empty and the receives that
// were in flight then brought nothing.
func (s *Source) settleDrainLocked() {
	if s.drained && !s.eof && len(s.polls) == 0 && len(s.byID) == 0 {
		s.eof = true
		s.logLocked(slog.LevelInfo, "queue drained")
		s.serveLocked()
	}
}
