package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/metrics"
	"github.com/palleto/palleto/output"
	"github.com/palleto/palleto/sqs"
)

// Config configures a Palleto pipeline run. Zero values are the documented defaults; the
// field comments name the command-line flag of each.
type Config struct {
	QueueURL   string        // --queue-url: required
	Out        string        // --out: result directory; default ./out
	Drain      bool          // --drain: stop once the queue is empty and all work is done
	Fetchers   int           // --fetchers: concurrent downloads; default 4
	Processors int           // --processors: concurrent analyses; default the number of CPUs
	OnMissing  string        // --on-missing: "fail" (default) or "skip"
	DLQURL     string        // --dlq-url: where malformed messages go at once
	Visibility time.Duration // --visibility-timeout: kept up by the heartbeat while in work; default 30 s
	WaitTime   time.Duration // --wait-time: long-poll wait, 0–20 s; default 20 s
	RetryDelay time.Duration // --retry-delay: first delay before a failed message is retried; default 5 s
	MaxDelay   time.Duration // --max-retry-delay: cap of the growing retry delay; default 5 min
	Shutdown   time.Duration // --shutdown-timeout: grace period for in-flight work; default 30 s
	SpoolDir   string        // --spool-dir: where large objects wait between download and analysis
	SpoolMem   int64         // objects up to this size are spooled in memory; default 8 MiB
	// MetricsListen (--metrics-listen) is the address where GET /metrics (and a GET /healthz
	// health check) is served while the run lasts; empty: not served. 127.0.0.1:PORT keeps it
	// on this machine.
	MetricsListen string
	// Metrics is the registry the run's metrics (stage events, the SQS source's counters) are
	// registered with, and that MetricsListen serves. Nil: a new registry when MetricsListen is
	// set, no metrics otherwise. A registry takes one Run: a second is refused.
	Metrics *prometheus.Registry

	AWS    *aws.Config  // nil: the SDK's standard sources (environment, profiles, …)
	Logger *slog.Logger // nil: discard
	Status *StatusLine  // nil: no status output
}

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

func (c *Config) setDefaults() {
	if c.Out == "" {
		c.Out = "./out"
	}
	if c.Fetchers == 0 {
		c.Fetchers = 4
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work, after defaults are applied.
func (c Config) Validate() error {
	c.setDefaults()
	switch {
	case c.QueueURL == "":
		return &ConfigError{"queue-url", "is required"}
	case c.Fetchers < 1:
		return &ConfigError{"fetchers", fmt.Sprintf("%d: want at least 1", c.Fetchers)}
	case c.Processors < 1:
		return &ConfigError{"processors", fmt.Sprintf("%d: want at least 1", c.Processors)}
	case c.OnMissing != OnMissingFail && c.OnMissing != OnMissingSkip:
		return &ConfigError{"on-missing", fmt.Sprintf("%q: want fail or skip", c.OnMissing)}
	case c.Visibility < 0 || c.Visibility > 12*time.Hour:
		return &ConfigError{"visibility-timeout", fmt.Sprintf("%v: want 0 to 12h", c.Visibility)}
	case c.WaitTime < 0 || c.WaitTime > 20*time.Second:
		return &ConfigError{"wait-time", fmt.Sprintf("%v: want 0 to 20s", c.WaitTime)}
	case c.RetryDelay < 0:
		return &ConfigError{"retry-delay", "must not be negative"}
	case c.MaxDelay < c.RetryDelay:
		return &ConfigError{"max-retry-delay", fmt.Sprintf("%v is below --retry-delay %v", c.MaxDelay, c.RetryDelay)}
	case c.Shutdown < 0:
		return &ConfigError{"shutdown-timeout", "must not be negative"}
	}
	return nil
}

// Summary counts what a run did.
type Summary struct {
	Messages  int64 // messages received (a redelivered message counts again)
	Objects   int64 // result files written or confirmed
	Failed    int64 // messages that failed (each attempt counts)
	Elapsed   time.Duration
	ObjPerSec float64
}

func (s Summary) String() string {
	return fmt.Sprintf("Summary: %d messages received, %d objects processed, %d failures, in %s (%.1f objects/s).",
		s.Messages, s.Objects, s.Failed, s.Elapsed.Round(time.Millisecond), s.ObjPerSec)
}

// Run runs the Palleto pipeline until ctx is cancelled (then it shuts down gracefully), or
// with Drain until the queue is empty. Problems of configuration, credentials, the queue
// or the endpoint are found before anything is received and returned as *ConfigError.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	cfg.setDefaults()
	log := cfg.Logger

	var metricsLn net.Listener
	if cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return Summary{}, &ConfigError{"metrics-listen", err.Error()}
		}
		defer ln.Close() // when the run is refused before the server takes it
		metricsLn = ln
		if cfg.Metrics == nil {
			cfg.Metrics = prometheus.NewRegistry()
		}
	}

	awsCfg, err := loadAWS(ctx, cfg.AWS)
	if err != nil {
		return Summary{}, err
	}
	sqsClient := awssqs.NewFromConfig(awsCfg)
	s3Client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if endpointOverridden(awsCfg) {
			o.UsePathStyle = true
		}
	})

	src, err := sqs.New(sqsClient, sqs.Config{
		QueueURL:           cfg.QueueURL,
		WaitTime:           cfg.WaitTime,
		VisibilityTimeout:  cfg.Visibility,
		Retry:              sqs.RetryExponential(cfg.RetryDelay, cfg.MaxDelay),
		DeadLetterQueueURL: cfg.DLQURL,
		Drain:              cfg.Drain,
		Logger:             log,
	})
	if err != nil {
		return Summary{}, &ConfigError{"queue-url", err.Error()}
	}
	if err := src.Check(ctx); err != nil {
		src.Close(context.Background())
		if ctx.Err() != nil {
			return Summary{}, ctx.Err()
		}
		return Summary{}, &ConfigError{"queue-url", describeCheck(cfg.QueueURL, err)}
	}
	// The output directory is made only once the queue is known to be there, so that a run
	// refused at start-up leaves nothing behind.
	out, err := output.NewWriter(cfg.Out)
	if err != nil {
		src.Close(context.Background())
		return Summary{}, &ConfigError{"out", err.Error()}
	}
	defer out.Close()
	unlock, err := lockOut(cfg.Out, log)
	if err != nil {
		src.Close(context.Background())
		return Summary{}, &ConfigError{"out", err.Error()}
	}
	defer unlock()
	stopSweep := sweep(out, log)
	defer stopSweep()

	st := &stages{s3: s3Client, out: out, spoolDir: cfg.SpoolDir, memLimit: cfg.SpoolMem, onMissing: cfg.OnMissing, log: log}
	t := &tally{}
	observers := []flow.Observer{flow.LogObserver(log), t}
	if cfg.Metrics != nil {
		obs, err := registerRunMetrics(cfg.Metrics, src)
		if err != nil {
			src.Close(context.Background())
			return Summary{}, err
		}
		observers = append(observers, obs)
	}
	p := flow.New(flow.Config{GracePeriod: cfg.Shutdown, Observer: flow.Observers(observers...)})
	msgs := flow.From(p, "sqs", src, flow.SourceOptions{})
	jobs := flow.FlatMap(msgs, "parse", func(_ context.Context, m sqs.Message) ([]objectJob, error) {
		jobs, err := st.parse(m.ID, []byte(m.Body))
		if errors.Is(err, ErrBadMessage) {
			log.Warn("malformed message", "message_id", m.ID, "error", err)
			return nil, sqs.Permanent(err)
		}
		return jobs, err
	}, flow.Options{Concurrency: 1, MaxDemand: 10})
	files := flow.FlatMap(jobs, "fetch", st.fetch, flow.Options{Concurrency: cfg.Fetchers, MaxDemand: 1})
	results := flow.Map(files, "analyse", st.analyse, flow.Options{Concurrency: cfg.Processors, MaxDemand: 1})
	flow.Sink(results, "write", st.write, flow.Options{Concurrency: 2, MaxDemand: 4})

	began := time.Now()
	stopMetrics := serveMetrics(metricsLn, cfg.Metrics, log)
	stopStatus := cfg.Status.start(t, src, began)
	runErr := p.Run(ctx)
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	closeErr := src.Close(closeCtx)
	cancel()
	stopStatus()
	stopMetrics()

	sum := t.summary(time.Since(began))
	if runErr != nil {
		return sum, runErr
	}
	if closeErr != nil {
		return sum, fmt.Errorf("flush acknowledgements: %w", closeErr)
	}
	log.Info("run ended", "messages", sum.Messages, "objects", sum.Objects, "failed", sum.Failed, "elapsed", sum.Elapsed)
	return sum, nil
}

// registerRunMetrics registers the metrics of a run with reg and returns the observer that
// feeds the stage metrics.
func registerRunMetrics(reg *prometheus.Registry, src *sqs.Source) (flow.Observer, error) {
	obs, err := metrics.NewObserver(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if err := reg.Register(metrics.NewSQSCollector(src)); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return obs, nil
}

// serveMetrics serves GET /metrics and GET /healthz on ln until stop is called; stop returns once the server
// and its connections are closed. A nil ln serves nothing.
func serveMetrics(ln net.Listener, reg *prometheus.Registry, log *slog.Logger) (stop func()) {
	if ln == nil {
		return func() {}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg, log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("the metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shut); err != nil {
			srv.Close()
		}
		<-served
	}
}

// sweepAge is how old a temporary file in --out must be to be taken for a crash's leftover.
const sweepAge = time.Minute

// sweep removes, beside the run, the temporary files that a crash left in the output
// directory. The returned function stops it and waits for it.
func sweep(out *output.Writer, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err := out.Sweep(ctx, sweepAge)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("cannot remove leftover temporary files", "dir", out.Dir(), "err", err)
		case n > 0:
			log.Info("removed temporary files left by an earlier crash", "dir", out.Dir(), "files", n)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// loadAWS returns the given configuration, or loads one from the SDK's standard sources.
// A missing region is a configuration error found here rather than at the first request.
func loadAWS(ctx context.Context, given *aws.Config) (aws.Config, error) {
	var cfg aws.Config
	if given != nil {
		cfg = *given
	} else {
		var err error
		cfg, err = awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return aws.Config{}, &ConfigError{"", "AWS configuration: " + err.Error()}
		}
	}
	if cfg.Region == "" {
		return aws.Config{}, &ConfigError{"", "no AWS region: set AWS_REGION (or a profile's region)"}
	}
	return cfg, nil
}

// describeCheck says in a few words why the start-up check of the queue failed.
func describeCheck(url string, err error) string {
	var se *sqs.Error
	if !errors.As(err, &se) {
		return err.Error()
	}
	cause := rootCause(se.Err)
	switch {
	case errors.Is(se.Kind, sqs.ErrQueueNotFound):
		return fmt.Sprintf("queue %s does not exist", url)
	case errors.Is(se.Kind, sqs.ErrAccessDenied):
		return fmt.Sprintf("access to %s denied (check the credentials and the IAM permissions): %s", url, cause)
	case errors.Is(se.Kind, sqs.ErrBadRequest):
		return fmt.Sprintf("SQS rejected the request for %s: %s", url, cause)
	}
	return fmt.Sprintf("cannot reach SQS for %s: %s", url, cause)
}

// rootCause is the part of an SDK error that says what went wrong, without the layers of
// operation, attempt and transport that wrap it.
func rootCause(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		if msg := api.ErrorMessage(); msg != "" {
			return api.ErrorCode() + ": " + msg
		}
		return api.ErrorCode()
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.Error()
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// endpointOverridden tells whether S3 is served from a custom endpoint (moto, MinIO, …),
// which wants path-style addressing.
func endpointOverridden(cfg aws.Config) bool {
	return cfg.BaseEndpoint != nil || os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
}

// tally counts pipeline events for the status line and the summary.
type tally struct {
	received, objects, failed atomic.Int64
}

func (t *tally) Observe(e flow.Event) {
	switch {
	case e.Kind == flow.EventReceived:
		t.received.Add(int64(e.N))
	case e.Kind == flow.EventDone && e.Stage == "write":
		t.objects.Add(int64(e.N))
	case e.Kind == flow.EventFailed:
		t.failed.Add(int64(e.N))
	}
}

func (t *tally) summary(elapsed time.Duration) Summary {
	s := Summary{Messages: t.received.Load(), Objects: t.objects.Load(), Failed: t.failed.Load(), Elapsed: elapsed}
	if secs := elapsed.Seconds(); secs > 0 {
		s.ObjPerSec = float64(s.Objects) / secs
	}
	return s
}

// StatusLine reports progress: rewritten in place on a terminal, or as a log line now and
// then otherwise.
type StatusLine struct {
	W        io.Writer
	Terminal bool          // rewrite one line in place
	Every    time.Duration // default 1 s on a terminal, 30 s otherwise
}

// inFlight reports messages received and not yet acknowledged.
type inFlight interface{ Stats() sqs.Stats }

func (s *StatusLine) start(t *tally, src inFlight, began time.Time) (stop func()) {
	if s == nil || s.W == nil {
		return func() {}
	}
	every := s.Every
	if every == 0 {
		every = 30 * time.Second
		if s.Terminal {
			every = time.Second
		}
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				s.print(t, src, began, false)
			case <-done:
				s.print(t, src, began, true)
				return
			}
		}
	}()
	return func() { close(done); <-ended }
}

func (s *StatusLine) print(t *tally, src inFlight, began time.Time, last bool) {
	sum := t.summary(time.Since(began))
	st := src.Stats()
	line := fmt.Sprintf("received %d  in flight %d  done %d  failed %d  %.1f objects/s  %s",
		sum.Messages, st.InFlight+st.Held, sum.Objects, sum.Failed, sum.ObjPerSec, sum.Elapsed.Round(time.Second))
	switch {
	case s.Terminal && last:
		fmt.Fprintf(s.W, "\r\033[K%s\n", line)
	case s.Terminal:
		fmt.Fprintf(s.W, "\r\033[K%s", line)
	default:
		fmt.Fprintf(s.W, "status: %s\n", line)
	}
}
