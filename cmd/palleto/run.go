package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/palleto/palleto/app"
)

func init() { commands["run"] = runCmd }

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	var cfg app.Config
	fs.StringVar(&cfg.QueueURL, "queue-url", "", "URL of the SQS queue that receives the S3 notifications (required)")
	fs.StringVar(&cfg.Out, "out", "./out", "directory for the result files")
	fs.BoolVar(&cfg.Drain, "drain", false, "exit once the queue is empty and all work is done")
	fs.IntVar(&cfg.Fetchers, "fetchers", 4, "concurrent downloads")
	fs.IntVar(&cfg.Processors, "processors", runtime.NumCPU(), "concurrent analyses")
	fs.StringVar(&cfg.OnMissing, "on-missing", app.OnMissingFail, "a missing object: fail (retry, then dead-letter) or skip (acknowledge with a warning)")
	fs.StringVar(&cfg.DLQURL, "dlq-url", "", "dead-letter queue for malformed messages (moved there at once)")
	fs.DurationVar(&cfg.Visibility, "visibility-timeout", 30*time.Second, "visibility timeout of received messages; extended while they are in work")
	fs.DurationVar(&cfg.WaitTime, "wait-time", 20*time.Second, "long-poll wait, 0s to 20s")
	fs.DurationVar(&cfg.RetryDelay, "retry-delay", 5*time.Second, "delay before a failed message is retried the first time; it doubles with each receive")
	fs.DurationVar(&cfg.MaxDelay, "max-retry-delay", 5*time.Minute, "cap of the retry delay")
	fs.DurationVar(&cfg.Shutdown, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long in-flight work may finish")
	fs.StringVar(&cfg.SpoolDir, "spool-dir", "", "where large objects wait between download and analysis (default: the system's temporary directory)")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "serve Prometheus metrics (GET /metrics) at this address while the run lasts, e.g. 127.0.0.1:9090 (default: off)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	status := fs.String("status", "auto", "progress output: auto (a live line on a terminal, a periodic log line otherwise), on, off")
	if err := parse(fs, args, os.Getenv); err != nil {
		return err
	}
	// In app.Config zero means "the default"; on the command line it is a mistake.
	if cfg.Fetchers < 1 {
		return usagef("--fetchers %d: want at least 1", cfg.Fetchers)
	}
	if cfg.Processors < 1 {
		return usagef("--processors %d: want at least 1", cfg.Processors)
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	switch *status {
	case "auto":
		cfg.Status = statusWriter(stderr)
	case "on":
		cfg.Status = &app.StatusLine{W: stderr, Terminal: isTerminal(stderr)}
	case "off":
	default:
		return usagef("--status %q: want auto, on or off", *status)
	}
	if cfg.MetricsListen != "" {
		cfg.Metrics = newRegistry()
	}
	sum, err := app.Run(ctx, cfg)
	var ce *app.ConfigError
	if errors.As(err, &ce) {
		return usagef("%v", ce)
	}
	if err != nil {
		return err
	}
	if cfg.Drain {
		fmt.Fprintln(stdout, sum)
	}
	return nil
}

// newRegistry returns a metrics registry with the Go runtime's and the process's metrics;
// the command adds its own.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	l, err := parseLevel(level)
	if err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("--log-format %q: want text or json", format)
}

// statusWriter chooses the status output: a live line on a terminal, a periodic line
// otherwise.
func statusWriter(w io.Writer) *app.StatusLine {
	return &app.StatusLine{W: w, Terminal: isTerminal(w)}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
