// Package sqs is a demand-driven source of Amazon SQS messages for package flow: it receives
// only what the pipeline asked for, and turns every outcome into the right request (a delete,
// a visibility change, a send to a dead-letter queue), batched.
//
// # Demand and receives
//
// Receive(ctx, n) registers a demand of n with the source's owner loop and waits. The loop keeps
// ceil(demand/10) ReceiveMessage requests in flight (at most Config.MaxReceives), each for
// min(10, demand not yet covered) messages, so it never asks for more than is wanted and never
// asks without demand. However many goroutines call Receive, there is one loop, and the
// requests follow the sum of their demand: they do not multiply. Messages go to the waiting
// Receive as soon as any arrive; it returns with what there is, and the runtime asks again for
// the rest. A receive that completes after its caller has been served leaves its messages
// held, for the next Receive to take at once.
//
// Receives long-poll (Config.WaitTime, 20 s by default). After an empty answer, or a second
// failed receive in a row, the loop pauses before the next receive (exponential, capped, full
// jitter) and sends one receive at a time until one brings messages again, so an idle queue
// or an outage costs little. A single failed receive among others that succeed pauses only
// itself (Config.PollBackoff), so that a transient fault does not hold back the other
// receives. Throttling, 5xx and network errors are retried this way; the SDK's own retries of
// the source's requests pause as briefly (its standard retryer waits up to seconds, which
// suits one-off calls, not a loop with many requests in flight). A missing queue, refused credentials or a malformed
// request stop the source: Receive returns an *Error whose Kind is ErrQueueNotFound,
// ErrAccessDenied or ErrBadRequest. When its Receive calls are cancelled (a pipeline shutting
// down), the receives in flight go on: SQS may already have taken messages for one, and an
// aborted receive would leave them invisible until their visibility timeout. What they bring
// is held for the next caller, or made visible again by Close.
//
// # Outcomes
//
// The source is the flow.Acknowledger of its messages. Acknowledge only records outcomes; the
// owner loop makes the requests:
//
//   - Succeeded: DeleteMessageBatch, 10 entries at a time, sent when a batch is full or
//     Config.FlushInterval after its oldest entry arrived. Every entry of every answer is
//     looked at: those SQS failed on its side are retried, those it refused (a stale receipt
//     handle) are counted in Stats.Invalid and logged.
//   - Failed: ChangeMessageVisibilityBatch to a delay from Config.Retry and the message's
//     receive count (a backoff.Policy: Immediate, Fixed, Exponential), so that the queue's
//     redrive policy moves a message that keeps failing to its dead-letter queue. A failure
//     on the last delivery that policy allows (as Check read it) is made visible at once
//     instead: SQS moves the message at the next receive, and no delay holds that up. A
//     message that comes more often than that policy allows shows that the policy has
//     changed since: from then on every failure waits its delay (a warning says so). With
//     Config.DeadLetterQueueURL, a failure whose error wraps ErrPermanent (see Permanent) is
//     sent there at once, body and message attributes kept, and deleted.
//   - Released (the pipeline shut down before the message finished): visibility 0, at once.
//
// Config.MaxBatchRequests bounds these requests in flight. A request that fails as a whole
// with a retryable error is tried again, with backoff, up to 8 times; one refused for access
// or a missing queue stops the source like a failed receive (messages that cannot be deleted
// would otherwise be processed again and again). A message that SQS delivers again while
// the source still holds it (its visibility ran out) is not handed out twice: the source
// keeps the newest receipt handle, which is the one SQS wants for the delete.
//
// # Heartbeat
//
// Every message the source holds, handed out or not, has its visibility extended to
// Config.VisibilityTimeout once a third of it has passed, in batches, until Config.MaxExtension
// after its receipt. The extension stops as soon as the message has an outcome.
//
// # FIFO queues
//
// SQS hands out several messages of one message group in one answer. The source hands out
// only the first of a group and holds the others (keeping them hidden) until it succeeds, so
// a group's messages are processed one at a time, in order, whatever the pipeline's
// concurrency. When the first fails or is released, the held ones are made visible again, and
// SQS delivers the group again from the failed message on: order is never broken. This rests
// on SQS's lock on a group while any of its messages is in flight, which keeps concurrent
// receives from splitting a group; an emulator that lacks it (moto's receives are not atomic)
// needs Config.MaxReceives 1 for the order to hold. Each receive carries a
// ReceiveRequestAttemptId, so that when the SDK retries one whose answer was lost, SQS hands
// back the same messages rather than keeping their groups locked until visibility runs out.
//
// # Drain and shutdown
//
// With Config.Drain (palleto run --drain), receives wait at most one second, and an empty
// receive while the source holds nothing is followed by GetQueueAttributes. When the queue has
// no visible, in-flight or delayed messages, no more receives are sent; once those in flight
// have come back empty, Receive returns io.EOF and the pipeline ends. The counts are
// approximate in SQS: a message sent just then may be left for the next run. A message that
// the source itself made visible again (released, or failed and hidden for the retry delay)
// is coming back, so counts of zero do not end a drain until a quarter of a second after it
// is due. Check reads the same counts at start-up, and the source then runs no more receives
// at once than the backlog they gave still needs, so that the last receives of a drain do not
// wait side by side on the empty queue, each a request; an answer beyond the count lifts that
// bound.
//
// The creator owns the source: New starts its owner loop, and Close, called after the
// pipeline's Run returned, gives the receives in flight a second to answer (then aborts the
// long polls still waiting), makes the messages still held and those they bring visible again,
// makes every pending delete and visibility change, and ends every goroutine, within the
// deadline of its context. Check, called at start-up, finds a missing queue, refused
// credentials or an unreachable endpoint with a one-line error. Stats reads the counters.
package sqs
