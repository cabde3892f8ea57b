package flow

import (
	"context"
	"errors"
	"fmt"
)

// A Source hands out items on demand.
//
// Receive returns between 1 and n items (n ≥ 1), blocking until at least one is available or
// ctx is done. It must not return more than n items. When the source has nothing more to give
// and never will, it returns io.EOF (possibly along with a last few items). Any other error
// stops the pipeline: a source retries transient failures itself.
//
// The runtime calls Receive only with demand that downstream stages have asked for, and with
// [SourceOptions.Concurrency] K at most K calls are in flight at once, together never asking
// for more than the outstanding demand.
type Source[T any] interface {
	Receive(ctx context.Context, n int) ([]Message[T], error)
}

// SourceFunc adapts a function to the [Source] interface.
type SourceFunc[T any] func(ctx context.Context, n int) ([]Message[T], error)

// Receive calls f(ctx, n).
func (f SourceFunc[T]) Receive(ctx context.Context, n int) ([]Message[T], error) { return f(ctx, n) }

// A Message is an item as a source hands it out: the data, and where its outcome goes.
type Message[T any] struct {
	Data T
	// Acker is told the outcome of this message. Nil means that nobody needs to know.
	// It must be comparable (use a pointer): outcomes are grouped by acknowledger, and a
	// message whose acknowledger cannot be compared ends the run with an error.
	Acker Acknowledger
	// Token is handed back to Acker with the outcome, so the source can tell which of its
	// messages it is. A pointer avoids an allocation per message.
	Token any
}

// Status is the outcome of a message.
type Status uint8

// Outcomes, in increasing order of precedence: when the items derived from one message end
// differently, the message gets the highest.
const (
	// Succeeded: the message and everything derived from it was handled.
	Succeeded Status = iota + 1
	// Released: the message was not finished because the pipeline shut down; the source
	// should make it available again without counting it as a failure.
	Released
	// Failed: a handler returned an error (or panicked) for the message or for something
	// derived from it.
	Failed
)

func (s Status) String() string {
	switch s {
	case Succeeded:
		return "succeeded"
	case Released:
		return "released"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// A Result is the outcome of one message, handed to its [Acknowledger].
type Result struct {
	Token  any
	Status Status
	Err    error // the first error, when Status is Failed
}

// An Acknowledger receives the outcomes of messages. The runtime calls Acknowledge exactly
// once for each message that carries it, grouping the outcomes that are known together into
// one call. Acknowledge is called from stage workers: it should hand the work to a loop of
// its own rather than block on I/O. It may be called from several goroutines at once, and
// must not keep the slice after it returns.
type Acknowledger interface {
	Acknowledge(results []Result)
}

// Errors returned by the runtime.
var (
	// ErrRunning is returned by Run when the pipeline is already running or has run.
	ErrRunning = errors.New("flow: pipeline already started")

	errClosed = errors.New("flow: closed") // a link whose producers have all stopped
)

// A PanicError is the error of an item whose handler panicked.
type PanicError struct {
	Stage string
	Value any
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("flow: panic in stage %q: %v", e.Stage, e.Value)
}

// A ConfigError reports a pipeline that cannot run as declared.
type ConfigError struct {
	Stage  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("flow: stage %q: %s", e.Stage, e.Reason)
}
