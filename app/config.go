package app

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/jobs"
)

// A ConfigError names the setting (by its flag) that is wrong. The command exits with
// status 2 for it.
type ConfigError struct {
	Flag   string
	Reason string
}

func (e *ConfigError) Error() string {
	if e.Flag == "" {
		return e.Reason
	}
	return "--" + e.Flag + ": " + e.Reason
}

// NoWait, in a duration field whose zero value means a default, asks for no wait at all:
// short polling for a WaitTime, an immediate retry for a RetryDelay or MaxDelay, no grace for
// a shutdown. Any negative duration in those fields means the same.
const NoWait time.Duration = -1

// Config configures a Palleto pipeline run. Zero values are the documented defaults; the
// field comments name the command-line flag of each.
type Config struct {
	QueueURL   string        // --queue-url: required
	Out        string        // --out: result directory; default ./out
	Drain      bool          // --drain: stop once the queue is empty and all work is done
	Fetchers   int           // --fetchers: concurrent downloads; 0 (default): found at run time
	Processors int           // --processors: concurrent analyses; default the number of CPUs
	OnMissing  string        // --on-missing: "fail" (default) or "skip"
	DLQURL     string        // --dlq-url: where malformed messages go at once
	Visibility time.Duration // --visibility-timeout: kept up by the heartbeat while in work; default 30 s
	WaitTime   time.Duration // --wait-time: long-poll wait, up to 20 s; default 20 s; NoWait: short polling
	RetryDelay time.Duration // --retry-delay: first delay before a failed message is retried; default 5 s; NoWait: none
	MaxDelay   time.Duration // --max-retry-delay: cap of the growing retry delay; default 5 min; NoWait: none
	Shutdown   time.Duration // --shutdown-timeout: grace period for in-flight work; default 30 s; NoWait: none
	SpoolDir   string        // --spool-dir: where large objects wait between download and analysis
	SpoolMem   int64         // objects up to this size are spooled in memory; default 8 MiB
	// MaxFaultTime (--max-fault-time) is how long a fault of the environment (results or spool
	// not writable, credentials, S3 refusing or failing) may hold intake paused with no
	// message succeeding before the run gives up with the fault as its error; default 15 min.
	MaxFaultTime time.Duration
	// MaxWorkTime (--max-work-time) is the longest a message may be worked on, counted from
	// its receipt: the heartbeat keeps it hidden that long (and a little more), and work still
	// running then is cancelled and the message released; default 1 h, at most 12 h.
	MaxWorkTime time.Duration
	// RequestTimeout (--request-timeout) bounds every request: an SQS request may take the
	// long-poll wait plus this, S3 must start answering within it, and an S3 body that sends no
	// byte for this long while it is read is aborted and resumed; default 30 s.
	RequestTimeout time.Duration
	// AdminListen (--admin-listen) is the address of the admin listener while the run lasts:
	// the dashboard, its JSON API, GET /metrics, /healthz and /readyz; empty: none. An
	// address other than loopback needs AdminToken.
	AdminListen string
	// AdminToken (--admin-token, PALLETO_ADMIN_TOKEN), when set, must come with every request
	// to the admin listener.
	AdminToken string
	// AdminReady, when set, is called with the admin listener's address once it listens.
	AdminReady func(addr string)
	// MetricsListen (--metrics-listen) is the older name of AdminListen, used when AdminListen
	// is empty.
	MetricsListen string
	// Metrics is the registry the run's metrics (stage events, the SQS source's counters) are
	// registered with, and that the admin listener serves. Nil: a new registry when there is
	// an admin listener, no metrics otherwise. A registry takes one Run: a second is refused.
	Metrics *prometheus.Registry

	// Abort, once closed, cuts a shutdown short (a second SIGINT): work in flight is cancelled
	// and released, and Run returns within abortRelease, leaving what it could not release
	// to the queue's visibility timeout. Nil: never.
	Abort <-chan struct{}

	AWS    *aws.Config  // nil: the SDK's standard sources (environment, profiles, …)
	Logger *slog.Logger // nil: discard
	Status *StatusLine  // nil: no status output
}

func (c *Config) setDefaults() {
	if c.Out == "" {
		c.Out = "./out"
	}
	if c.Processors == 0 {
		c.Processors = runtime.NumCPU()
	}
	if c.OnMissing == "" {
		c.OnMissing = OnMissingFail
	}
	if c.WaitTime == 0 {
		c.WaitTime = 20 * time.Second
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = 5 * time.Second
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = 5 * time.Minute
	}
	if c.Shutdown == 0 {
		c.Shutdown = 30 * time.Second
	}
	if c.SpoolMem == 0 {
		c.SpoolMem = 8 << 20
	}
	if c.MaxFaultTime == 0 {
		c.MaxFaultTime = DefaultMaxFaultTime
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.MaxWorkTime == 0 {
		c.MaxWorkTime = DefaultMaxWorkTime
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.AdminListen == "" {
		c.AdminListen = c.MetricsListen
	}
}

// Validate reports the first setting that cannot work, after defaults are applied.
func (c Config) Validate() error {
	listen := c.AdminListen
	c.setDefaults()
	switch {
	case listen != "" && c.MetricsListen != "" && listen != c.MetricsListen:
		return &ConfigError{"metrics-listen", fmt.Sprintf("%q is another name of --admin-listen, which is %q: give one", c.MetricsListen, listen)}
	case c.QueueURL == "":
		return &ConfigError{"queue-url", "is required"}
	case c.Fetchers < 0:
		return &ConfigError{"fetchers", fmt.Sprintf("%d: want at least 1 (or 0 to let the run find it)", c.Fetchers)}
	case c.Processors < 1:
		return &ConfigError{"processors", fmt.Sprintf("%d: want at least 1", c.Processors)}
	case c.OnMissing != OnMissingFail && c.OnMissing != OnMissingSkip:
		return &ConfigError{"on-missing", fmt.Sprintf("%q: want fail or skip", c.OnMissing)}
	case c.Visibility < 0 || c.Visibility > 12*time.Hour:
		return &ConfigError{"visibility-timeout", fmt.Sprintf("%v: want 0 to 12h", c.Visibility)}
	case c.RequestTimeout < 0:
		return &ConfigError{"request-timeout", fmt.Sprintf("%v: must not be negative", c.RequestTimeout)}
	case c.MaxFaultTime < 0:
		return &ConfigError{"max-fault-time", fmt.Sprintf("%v: must not be negative", c.MaxFaultTime)}
	case c.MaxWorkTime < 0 || c.MaxWorkTime > maxVisibility:
		return &ConfigError{"max-work-time", fmt.Sprintf("%v: want more than 0s, up to 12h", c.MaxWorkTime)}
	case c.WaitTime > 20*time.Second:
		return &ConfigError{"wait-time", fmt.Sprintf("%v: want 0s to 20s", c.WaitTime)}
	case max(c.MaxDelay, 0) < c.RetryDelay:
		return &ConfigError{"max-retry-delay", fmt.Sprintf("%v is below --retry-delay %v", max(c.MaxDelay, 0), c.RetryDelay)}
	}
	return nil
}

// DefaultMaxFaultTime is Config.MaxFaultTime's default: long enough for a full disk to be
// cleaned or credentials to be renewed by hand, short enough for a supervisor to notice.
const DefaultMaxFaultTime = 15 * time.Minute

// Defaults of ServeConfig.
const (
	DefaultListen    = "127.0.0.1:8080"
	DefaultDataDir   = "./palleto-data"
	DefaultKillDelay = 5 * time.Second
)

// ServeConfig configures Serve, the webhook-fed worker pool. Zero values are the documented
// defaults; the field comments name the command-line flag of each.
type ServeConfig struct {
	Listen        string // --listen: address of the HTTP server; default 127.0.0.1:8080
	WebhookSecret string // --webhook-secret: the Dropbox app secret; required
	Workers       int    // --workers: jobs run at once; default the number of CPUs
	DataDir       string // --data-dir: the durable queue's directory; default ./palleto-data
	Memory        bool   // --memory: keep the queue in memory (jobs are lost on exit)
	// QueueURL (--queue-url) replaces the embedded queue with an SQS queue that several
	// servers share: the webhook sends each job as a message, the workers receive them.
	QueueURL string
	// WaitTime (--wait-time) is the long poll of the SQS receives with QueueURL: 0 means
	// SQS's longest, 20 s; NoWait means short polling. A shorter one only makes sense with an
	// emulator that does not end a long poll as soon as messages can be had.
	WaitTime time.Duration
	// Exec (--exec) is the command that runs a job, already split into words: the job id is
	// appended as its last argument and set in PALLETO_JOB_ID. Required unless Handler is set.
	Exec        []string
	MaxAttempts int // --max-attempts: failed runs before a job is dead; default 5
	// ShutdownTimeout (--shutdown-timeout) is how long running jobs may finish after a stop
	// signal before they are told to stop. Zero means 30 s; NoWait (any negative) means none.
	ShutdownTimeout time.Duration
	// KillDelay is how long a job's process group has between SIGTERM and SIGKILL. Zero
	// means 5 s.
	KillDelay time.Duration

	// Handler, when set, runs jobs in this process instead of Exec: the worker pool as a
	// library. An error fails the run; returning ctx's error after ctx is cancelled leaves
	// the job queued.
	Handler func(ctx context.Context, job jobs.Job) error
	// AWS is the SDK configuration for QueueURL. Nil means the SDK's standard sources.
	AWS *aws.Config
	// Metrics is the registry that the admin listener's GET /metrics serves; the pool's metrics (stage events,
	// job counts, and with QueueURL the SQS source's counters) are registered with it. Nil
	// means a new registry. A registry takes one Serve: a second is refused.
	Metrics *prometheus.Registry
	// Logger receives the server's and the jobs' logs. Nil discards.
	Logger *slog.Logger
	// Ready, when set, is called with the server's address once it listens (useful with
	// a Listen port of 0).
	Ready func(addr string)
	// AdminListen (--admin-listen) is the address of the admin listener: the dashboard, the
	// JSON API with job management, GET /jobs, /metrics, /healthz and /readyz; empty: none.
	// An address other than loopback needs AdminToken.
	AdminListen string
	// AdminToken (--admin-token, PALLETO_ADMIN_TOKEN), when set, must come with every
	// request to the admin listener.
	AdminToken string
	// AdminReady, when set, is called with the admin listener's address once it listens.
	AdminReady func(addr string)
}

func (c *ServeConfig) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = jobs.DefaultMaxAttempts
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.KillDelay == 0 {
		c.KillDelay = DefaultKillDelay
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work, after defaults are applied, as a
// *ConfigError naming its flag.
func (c ServeConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.WebhookSecret == "":
		return &ConfigError{"webhook-secret", "is required (or PALLETO_WEBHOOK_SECRET)"}
	case c.Workers < 1:
		return &ConfigError{"workers", fmt.Sprintf("%d: want at least 1", c.Workers)}
	case c.MaxAttempts < 1:
		return &ConfigError{"max-attempts", fmt.Sprintf("%d: want at least 1", c.MaxAttempts)}
	case c.Handler == nil && len(c.Exec) == 0:
		return &ConfigError{"exec", "is required: the command that runs a job"}
	case c.Handler == nil && c.Exec[0] == "":
		return &ConfigError{"exec", "names no command"}
	case c.QueueURL != "" && c.Memory:
		return &ConfigError{"memory", "cannot be used with --queue-url"}
	case c.WaitTime > 20*time.Second:
		return &ConfigError{"wait-time", fmt.Sprintf("%v: want 0s to 20s", c.WaitTime)}
	case c.KillDelay < 0:
		return &ConfigError{"kill-delay", "must not be negative"}
	}
	return nil
}
