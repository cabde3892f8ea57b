package sqs

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/palleto/palleto/backoff"
)

// Limits that SQS sets on the values the source sends.
const (
	maxBatch       = 10                     // messages per ReceiveMessage, entries per batch request
	maxWait        = 20 * time.Second       // WaitTimeSeconds
	maxVisibility  = 12 * time.Hour         // VisibilityTimeout, and a message's total invisible time
	drainWait      = time.Second            // wait of each receive under Config.Drain
	drainSettle    = 250 * time.Millisecond // a drain's least wait past a released message's due time
	batchAttempts  = 8                      // tries of a delete, visibility change or send before giving up
	defaultTimeout = 30 * time.Second
)

// Config configures a [Source]. Only QueueURL is required; every other zero value means the
// default given with it.
type Config struct {
	// QueueURL is the queue to receive from. A URL whose last path element ends in ".fifo" is
	// a FIFO queue: see the package documentation for how its message groups are handled.
	QueueURL string

	// MaxReceives is the most ReceiveMessage requests in flight at once, each for up to 10
	// messages. Zero means 10. Fewer are in flight when the outstanding demand needs fewer.
	MaxReceives int

	// WaitTime is how long each ReceiveMessage waits for messages (long polling), in whole
	// seconds up to 20. Zero means 20 s; a negative value means no wait at all (short polling).
	WaitTime time.Duration

	// VisibilityTimeout is how long a received message stays hidden from other consumers,
	// asked for with every receive (over the queue's own setting) and renewed by the
	// heartbeat. Whole seconds from 1 s to 12 h. Zero means 30 s.
	VisibilityTimeout time.Duration

	// MaxExtension is the longest a message is kept hidden by the heartbeat, counted from its
	// receipt; after that its visibility is left to run out. Zero means one hour; a negative
	// value turns the heartbeat off.
	MaxExtension time.Duration

	// FlushInterval is how long a delete or visibility change may wait for others to fill a
	// batch of 10. Zero means 100 ms.
	FlushInterval time.Duration

	// MaxBatchRequests is the most DeleteMessageBatch, ChangeMessageVisibilityBatch and
	// SendMessage requests in flight at once. Zero means 10.
	MaxBatchRequests int

	// PollBackoff and MaxPollBackoff bound the pause after an empty receive or a failed
	// request: it doubles from PollBackoff with each one in a row, up to MaxPollBackoff, and
	// a random part of it is taken (full jitter). A single failed receive among others that
	// succeed pauses only itself, for up to PollBackoff. Zero means 100 ms and 2 s.
	PollBackoff, MaxPollBackoff time.Duration

	// Retry says how long a failed message stays hidden before SQS delivers it again, from
	// the number of times SQS has delivered it (1 the first time). The queue's redrive policy
	// counts the same deliveries, so the policy paces the way to the dead-letter queue; after
	// the last delivery it allows there is no delay (see the package doc, Outcomes). Nil
	// means backoff.Default(): 1 s doubling up to 5 min, with jitter.
	Retry *backoff.Policy

	// DeadLetterQueueURL, if set, is where messages that failed with an error wrapping
	// [ErrPermanent] are sent (body and message attributes kept) before they are deleted.
	// It must be a FIFO queue when QueueURL is one. Empty means that such messages are
	// retried like the others, until the queue's redrive policy moves them.
	DeadLetterQueueURL string

	// Drain makes Receive return io.EOF once the queue has no visible, in-flight or delayed
	// messages and the source holds none. Receives then wait at most one second. Check
	// then also reads the queue's counts, and no more receives run at once than that
	// backlog still needs (until one brings more than it), so that a drain's last receives
	// do not wait side by side on the empty queue.
	Drain bool

	// Logger receives the demand trace at debug level and request failures at warn and
	// error level. Nil means no logging.
	Logger *slog.Logger
}

// A ConfigError reports a Config that [Config.Validate] rejects. It wraps [ErrInvalidConfig].
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "sqs: Config." + e.Field + ": " + e.Reason }

// Unwrap returns ErrInvalidConfig.
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// Validate reports the first field of c that cannot be used, as a *ConfigError.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if c.QueueURL == "" {
		return bad("QueueURL", "required")
	}
	if err := checkURL(c.QueueURL); err != nil {
		return bad("QueueURL", "%v", err)
	}
	switch {
	case c.MaxReceives < 0:
		return bad("MaxReceives", "negative (%d)", c.MaxReceives)
	case c.WaitTime > maxWait:
		return bad("WaitTime", "%v is more than 20s", c.WaitTime)
	case c.VisibilityTimeout < 0:
		return bad("VisibilityTimeout", "negative (%v)", c.VisibilityTimeout)
	case c.VisibilityTimeout > maxVisibility:
		return bad("VisibilityTimeout", "%v is more than 12h", c.VisibilityTimeout)
	case c.MaxExtension > maxVisibility:
		return bad("MaxExtension", "%v is more than 12h", c.MaxExtension)
	case c.FlushInterval < 0:
		return bad("FlushInterval", "negative (%v)", c.FlushInterval)
	case c.MaxBatchRequests < 0:
		return bad("MaxBatchRequests", "negative (%d)", c.MaxBatchRequests)
	case c.PollBackoff < 0:
		return bad("PollBackoff", "negative (%v)", c.PollBackoff)
	case c.MaxPollBackoff < 0:
		return bad("MaxPollBackoff", "negative (%v)", c.MaxPollBackoff)
	}
	if c.PollBackoff > 0 && c.MaxPollBackoff > 0 && c.PollBackoff > c.MaxPollBackoff {
		return bad("PollBackoff", "%v is more than MaxPollBackoff (%v)", c.PollBackoff, c.MaxPollBackoff)
	}
	if c.Retry != nil {
		if err := c.Retry.Validate(); err != nil {
			return bad("Retry", "%v", err)
		}
	}
	if c.DeadLetterQueueURL != "" {
		if err := checkURL(c.DeadLetterQueueURL); err != nil {
			return bad("DeadLetterQueueURL", "%v", err)
		}
		if isFIFO(c.QueueURL) != isFIFO(c.DeadLetterQueueURL) {
			return bad("DeadLetterQueueURL", "a FIFO queue needs a FIFO dead-letter queue and a standard queue a standard one")
		}
		if c.DeadLetterQueueURL == c.QueueURL {
			return bad("DeadLetterQueueURL", "is the queue itself")
		}
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme == "" || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("%q is not a queue URL (https://host/account/name)", s)
	}
	return nil
}

// withDefaults returns c with every zero value replaced by its default, and durations rounded
// up to the whole seconds that SQS takes.
func (c Config) withDefaults() Config {
	if c.MaxReceives == 0 {
		c.MaxReceives = 10
	}
	switch {
	case c.WaitTime == 0:
		c.WaitTime = maxWait
	case c.WaitTime < 0:
		c.WaitTime = 0
	}
	c.WaitTime = ceilSecond(c.WaitTime)
	if c.VisibilityTimeout == 0 {
		c.VisibilityTimeout = defaultTimeout
	}
	c.VisibilityTimeout = ceilSecond(c.VisibilityTimeout)
	if c.MaxExtension == 0 {
		c.MaxExtension = time.Hour
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.MaxBatchRequests == 0 {
		c.MaxBatchRequests = 10
	}
	if c.PollBackoff == 0 {
		c.PollBackoff = 100 * time.Millisecond
	}
	if c.MaxPollBackoff == 0 {
		c.MaxPollBackoff = max(2*time.Second, c.PollBackoff)
	}
	if c.Retry == nil {
		c.Retry = backoff.Default()
	} else {
		p := *c.Retry // the caller's may change
		c.Retry = &p
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func ceilSecond(d time.Duration) time.Duration {
	return (d + time.Second - 1) / time.Second * time.Second
}

// seconds returns d in whole seconds, rounded up, within what SQS accepts for a visibility
// timeout.
func seconds(d time.Duration) int32 {
	d = min(max(d, 0), maxVisibility)
	return int32(ceilSecond(d) / time.Second)
}
