package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/palleto/palleto/admin"
	"github.com/palleto/palleto/app"
)

func init() { commands["run"] = runCmd }

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := runOptions(args, os.Getenv)
	if err != nil {
		return err
	}
	cfg := o.cfg
	logs := stderr
	switch o.status {
	case "auto", "on":
		cfg.Status = &app.StatusLine{W: stderr, Terminal: isTerminal(stderr)}
		logs = cfg.Status.Logs() // a log record clears the live line first
	}
	logger, err := newLogger(logs, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	cfg.Logger = logger
	if cfg.AdminListen != "" || cfg.MetricsListen != "" {
		cfg.Metrics = newRegistry()
	}
	abort := make(chan struct{})
	cfg.Abort = abort
	stopSteer := steer(ctx, logger, cfg.Shutdown, abort)
	sum, err := app.Run(ctx, cfg)
	if sig := stopSteer(); sig != nil {
		return &exitError{code: signalStatus(sig), msg: fmt.Sprintf("stopped at once by a second %s: the work in flight was released unfinished", sig)}
	}
	if ce, ok := errors.AsType[*app.ConfigError](err); ok {
		return usagef("%v", ce)
	}
	if err != nil {
		return err
	}
	if cfg.Drain {
		fmt.Fprintln(stdout, sum)
		if !sum.OK() {
			return &exitError{code: 3, msg: fmt.Sprintf("drained, but %d of %d messages did not succeed", sum.Distinct.Failed(), sum.Distinct.Total())}
		}
	}
	return nil
}

type runOpts struct {
	cfg                         app.Config
	logLevel, logFormat, status string
}

// runOptions turns the command line and the environment into Run's configuration.
func runOptions(args []string, getenv func(string) string) (runOpts, error) {
	var o runOpts
	cfg := &o.cfg
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&cfg.QueueURL, "queue-url", "", "URL of the SQS queue that receives the S3 notifications (required)")
	fs.StringVar(&cfg.Out, "out", "./out", "directory for the result files")
	fs.BoolVar(&cfg.Drain, "drain", false, "exit once the queue is empty and all work is done")
	fs.IntVar(&cfg.Fetchers, "fetchers", 0, "concurrent downloads (default: the run finds how many give the most throughput)")
	fs.IntVar(&cfg.Processors, "processors", runtime.NumCPU(), "concurrent analyses")
	fs.StringVar(&cfg.OnMissing, "on-missing", app.OnMissingFail, "a missing object: fail (retry, then dead-letter) or skip (acknowledge with a warning)")
	fs.StringVar(&cfg.DLQURL, "dlq-url", "", "dead-letter queue for malformed messages (moved there at once)")
	fs.DurationVar(&cfg.Visibility, "visibility-timeout", 30*time.Second, "visibility timeout of received messages, 1s to 12h; extended while they are in work")
	waitVar(fs, &cfg.WaitTime, "wait-time", 20*time.Second, "long-poll wait, 0s (short polling) to 20s")
	waitVar(fs, &cfg.RetryDelay, "retry-delay", 5*time.Second, "delay before a failed message is retried the first time; it doubles with each receive (0s: at once)")
	waitVar(fs, &cfg.MaxDelay, "max-retry-delay", 5*time.Minute, "cap of the retry delay")
	waitVar(fs, &cfg.Shutdown, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long in-flight work may finish (0s: stop at once)")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", 30*time.Second, "bound of every request: SQS requests may take the long-poll wait plus this, S3 must start answering within it, and an S3 body that sends nothing for this long is aborted and resumed")
	fs.DurationVar(&cfg.MaxFaultTime, "max-fault-time", app.DefaultMaxFaultTime, "how long a fault of the environment (--out or the spool not writable, credentials, S3 failing) may pause intake before the run exits 1")
	fs.DurationVar(&cfg.MaxWorkTime, "max-work-time", app.DefaultMaxWorkTime, "the longest a message may be worked on, from its receipt, up to 12h: the heartbeat keeps it hidden that long; then the work is cancelled and the message released")
	fs.StringVar(&cfg.SpoolDir, "spool-dir", "", "where large objects wait between download and analysis (default: the system's temporary directory)")
	fs.StringVar(&cfg.AdminListen, "admin-listen", "", "serve the admin listener (dashboard, JSON API, /metrics, /healthz, /readyz) at this address while the run lasts, e.g. 127.0.0.1:9090 (default: off); an address other than loopback needs --admin-token")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "token that every request to the admin listener must carry (Authorization: Bearer TOKEN); better set in "+admin.TokenEnv)
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "", "the older name of --admin-listen")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.status, "status", "auto", "progress output: auto (a live line on a terminal, a periodic log line otherwise), on, off")
	if err := parse(fs, args, getenv); err != nil {
		return o, err
	}
	// In app.Config zero means "the default"; typed on the command line it is a mistake.
	switch {
	case cfg.Fetchers < 1 && isSet(fs, "fetchers"):
		return o, usagef("--fetchers %d: want at least 1", cfg.Fetchers)
	case cfg.Processors < 1:
		return o, usagef("--processors %d: want at least 1", cfg.Processors)
	case cfg.RequestTimeout <= 0:
		return o, usagef("--request-timeout %v: want more than 0s", cfg.RequestTimeout)
	case cfg.MaxFaultTime <= 0:
		return o, usagef("--max-fault-time %v: want more than 0s", cfg.MaxFaultTime)
	case cfg.MaxWorkTime <= 0 || cfg.MaxWorkTime > 12*time.Hour:
		return o, usagef("--max-work-time %v: want more than 0s, up to 12h", cfg.MaxWorkTime)
	case cfg.Visibility < time.Second:
		return o, usagef("--visibility-timeout %v: want 1s to 12h", cfg.Visibility)
	case o.status != "auto" && o.status != "on" && o.status != "off":
		return o, usagef("--status %q: want auto, on or off", o.status)
	}
	return o, nil
}

// steer lets a person steer a shutdown. The first SIGINT or SIGTERM (main cancels ctx for it)
// is answered with a line saying that the run is shutting down and how long that may take; a
// second one closes abort, which stops the run at once. stop ends the watch and returns the
// signal that aborted the run, if one did.
func steer(ctx context.Context, log *slog.Logger, grace time.Duration, abort chan<- struct{}) (stop func() os.Signal) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done, ended := make(chan struct{}), make(chan struct{})
	var second os.Signal
	go func() {
		defer close(ended)
		announced, n := false, 0
		announce := func() {
			if !announced {
				announced = true
				log.Info("shutting down: no new messages are taken; the work in flight may take up to "+grace.String()+
					" (--shutdown-timeout) before it is released; interrupt again to stop at once", "grace", grace)
			}
		}
		ctxDone := ctx.Done()
		for {
			select {
			case s := <-sigs:
				n++
				announce()
				if n >= 2 {
					second = s
					log.Warn("stopping at once: releasing the messages in flight", "signal", s.String())
					close(abort)
					return
				}
			case <-ctxDone:
				ctxDone = nil
				announce()
			case <-done:
				return
			}
		}
	}()
	return func() os.Signal {
		signal.Stop(sigs)
		close(done)
		<-ended
		return second
	}
}

// signalStatus is the exit status of a run cut short by sig, as shells report a process
// that a signal ended: 128 + its number (130 for SIGINT, 143 for SIGTERM).
func signalStatus(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
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

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// isSet reports whether the flag name was given, on the command line or by its environment
// variable.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
