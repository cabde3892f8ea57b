// Package flow is a demand-driven stage runtime: GenStage's demand semantics and Broadway's
// acknowledgement model, written with goroutines, generics and contexts.
//
// A [Pipeline] pulls from one or more [Source]s and passes items through typed stages
// ([Map], [FlatMap], [Filter], [Batch], [Partition], [Broadcast]) into a [Sink]. Each stage
// has its own number of workers ([Options.Concurrency]).
//
// # Demand
//
// Nothing moves that no one asked for. Each worker of a stage asks the stage upstream for at
// most [Options.MaxDemand] items and asks again when its outstanding demand (asked for and not
// yet finished) falls to [Options.MinDemand]. A source is asked for exactly the outstanding
// demand: Receive(ctx, n) returns between 1 and n items, blocking until it has one. Demand
// that cannot be served yet is remembered, so items that arrive later go to waiting workers
// at once: first to the worker that began waiting last, so that a stage keeps as few workers
// busy as its load needs. Items move between stages in batches as large as the demand allows,
// which is what makes the runtime cheap per item.
//
// Because of this, the number of items received from sources and not yet acknowledged never
// exceeds the sum of the demand of all stages (Concurrency × MaxDemand, summed). With a queue
// such as SQS that bound is what keeps visibility timeouts predictable.
//
// # Acknowledgement
//
// Every [Message] carries the [Acknowledger] of the source it came from. The runtime tells
// the acknowledger the outcome of each message exactly once, after every item derived from
// it (by FlatMap, Batch or Broadcast) has finished: [Succeeded] if all did, [Failed] with the
// first error if any failed, [Released] if it was never finished because the pipeline shut
// down. Outcomes are delivered in groups, one call per acknowledger for the items a worker
// finished together. A panic in a handler fails only the item it was handling, with a
// [*PanicError].
//
// # Shutdown
//
// Cancelling the context given to [Pipeline.Run] stops new receives at once (a blocked
// Receive sees its context cancelled). Items already received keep flowing for up to
// [Config.GracePeriod]; after that the context handed to handlers is cancelled and every item
// that has not finished is released. Run returns only after every goroutine it started has
// ended and every outcome has been delivered.
//
// # Observing
//
// An [Observer] receives per-stage facts (demand asked, items received, done, failed,
// released, busy time). [LogObserver] turns them into a debug-level trace with log/slog.
package flow
