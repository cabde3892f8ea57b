package flow

import (
	"context"
	"log/slog"
	"strconv"
	"time"
)

// EventKind says what an [Event] reports.
type EventKind uint8

// Kinds of events.
const (
	// EventAsked: a worker asked upstream for N more items; Demand is its outstanding demand.
	EventAsked EventKind = iota + 1
	// EventReceived: a source worker received N items for a demand of Demand.
	EventReceived
	// EventDone: a worker handled N items successfully in Busy time.
	EventDone
	// EventFailed: N items failed; Err is the first error.
	EventFailed
	// EventReleased: N items were released unfinished at shutdown.
	EventReleased
	// EventTaken: a stage worker took N items to handle; Demand is what it still has
	// outstanding. With Done, Failed and Released it tells how many items a stage holds.
	EventTaken
)

func (k EventKind) String() string {
	switch k {
	case EventAsked:
		return "asked"
	case EventReceived:
		return "received"
	case EventDone:
		return "done"
	case EventFailed:
		return "failed"
	case EventReleased:
		return "released"
	case EventTaken:
		return "taken"
	}
	return "unknown"
}

// An Event is a fact about one stage worker, reported to an [Observer].
type Event struct {
	Stage  string
	Worker int
	Kind   EventKind
	N      int
	Demand int           // Asked, Received, Taken: outstanding demand
	Busy   time.Duration // Done, or Failed without a Done: time spent in the handler for the batch (counted once)
	Err    error         // Failed: the first error
}

// An Observer receives events from all stages of a pipeline, from many goroutines at once.
// It is called on the hot path, once per batch of items: keep it fast.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to the [Observer] interface.
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// Observers returns an Observer that passes each event to all of obs in turn.
func Observers(obs ...Observer) Observer {
	var list []Observer
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	if len(list) == 1 {
		return list[0]
	}
	return ObserverFunc(func(e Event) {
		for _, o := range list {
			o.Observe(e)
		}
	})
}

// LogObserver returns an Observer that logs the runtime's trace at debug level: demand asked
// and items received, like GenStage's "handling demand of 10" and "received 3", items done,
// failed and released. A failure is the application's to log, once, with what it means
// (the handler's error, the attempt, what happens next); here it is only a count. Nothing is
// formatted when debug is disabled.
func LogObserver(l *slog.Logger) Observer {
	return ObserverFunc(func(e Event) {
		ctx := context.Background()
		switch e.Kind {
		case EventAsked:
			if l.Enabled(ctx, slog.LevelDebug) {
				l.LogAttrs(ctx, slog.LevelDebug, "handling demand of "+strconv.Itoa(e.N),
					slog.String("stage", e.Stage), slog.Int("worker", e.Worker), slog.Int("outstanding", e.Demand))
			}
		case EventReceived:
			if l.Enabled(ctx, slog.LevelDebug) {
				l.LogAttrs(ctx, slog.LevelDebug, "received "+strconv.Itoa(e.N),
					slog.String("stage", e.Stage), slog.Int("worker", e.Worker), slog.Int("demand", e.Demand))
			}
		case EventDone:
			if l.Enabled(ctx, slog.LevelDebug) {
				l.LogAttrs(ctx, slog.LevelDebug, "done "+strconv.Itoa(e.N),
					slog.String("stage", e.Stage), slog.Int("worker", e.Worker), slog.Duration("busy", e.Busy))
			}
		case EventFailed:
			if l.Enabled(ctx, slog.LevelDebug) {
				l.LogAttrs(ctx, slog.LevelDebug, "failed "+strconv.Itoa(e.N),
					slog.String("stage", e.Stage), slog.Int("worker", e.Worker), slog.Any("error", e.Err))
			}
		case EventReleased:
			if l.Enabled(ctx, slog.LevelDebug) {
				l.LogAttrs(ctx, slog.LevelDebug, "released "+strconv.Itoa(e.N),
					slog.String("stage", e.Stage), slog.Int("worker", e.Worker))
			}
		}
	})
}
