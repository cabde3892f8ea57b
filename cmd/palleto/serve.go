package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/palleto/palleto/admin"
	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/jobs"
)

func init() { commands["serve"] = serveCmd }

func serveCmd(ctx context.Context, args []string, _, stderr io.Writer) error {
	opts, err := serveOptions(args, os.Getenv)
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, opts.logLevel, opts.logFormat)
	if err != nil {
		return err
	}
	opts.cfg.Logger = logger
	opts.cfg.Metrics = newRegistry()
	err = app.Serve(ctx, opts.cfg)
	if ce, ok := errors.AsType[*app.ConfigError](err); ok {
		return usagef("%v", ce)
	}
	return err
}

type serveOpts struct {
	cfg                 app.ServeConfig
	logLevel, logFormat string
}

// serveOptions turns the command line and the environment into Serve's configuration.
func serveOptions(args []string, getenv func(string) string) (serveOpts, error) {
	var o serveOpts
	cfg := &o.cfg
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&cfg.Listen, "listen", app.DefaultListen, "address of the webhook listener (/webhook, /healthz)")
	fs.StringVar(&cfg.AdminListen, "admin-listen", "", "address of the admin listener (dashboard, JSON API and job management, /jobs, /metrics, /healthz, /readyz), e.g. 127.0.0.1:8081 (default: off); an address other than loopback needs --admin-token")
	fs.StringVar(&cfg.AdminToken, "admin-token", "", "token that every request to the admin listener must carry (Authorization: Bearer TOKEN); better set in "+admin.TokenEnv)
	fs.StringVar(&cfg.WebhookSecret, "webhook-secret", "", "Dropbox app secret that signs webhook calls (required)")
	fs.IntVar(&cfg.Workers, "workers", runtime.NumCPU(), "jobs run at once")
	fs.StringVar(&cfg.DataDir, "data-dir", app.DefaultDataDir, "directory of the durable job queue")
	fs.BoolVar(&cfg.Memory, "memory", false, "keep the job queue in memory: queued jobs are lost on exit")
	fs.StringVar(&cfg.QueueURL, "queue-url", "", "SQS queue shared by several servers, instead of the embedded queue")
	execLine := fs.String("exec", "", "command that runs a job, split into words as a shell would (no shell runs it); the job id is appended and set in "+app.JobIDEnv+" (required)")
	fs.IntVar(&cfg.MaxAttempts, "max-attempts", jobs.DefaultMaxAttempts, "failed runs before a job is dead")
	waitVar(fs, &cfg.WaitTime, "wait-time", 20*time.Second, "with --queue-url, the long-poll wait of SQS receives, 0s (short polling) to 20s")
	waitVar(fs, &cfg.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long running jobs may finish before they get SIGTERM (and SIGKILL 5s later); 0s: at once")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	if err := parse(fs, args, getenv); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case cfg.Memory && set["data-dir"]:
		return o, usagef("--memory and --data-dir: choose one")
	case cfg.QueueURL != "" && cfg.Memory:
		return o, usagef("--queue-url and --memory: choose one")
	case cfg.QueueURL != "" && set["data-dir"]:
		return o, usagef("--queue-url and --data-dir: choose one")
	// In ServeConfig zero means the default; on the command line it is a mistake.
	case cfg.Workers < 1:
		return o, usagef("--workers %d: want at least 1", cfg.Workers)
	case cfg.MaxAttempts < 1:
		return o, usagef("--max-attempts %d: want at least 1", cfg.MaxAttempts)
	}
	if *execLine == "" {
		return o, usagef("--exec is required: the command that runs a job")
	}
	argv, err := splitWords(*execLine)
	if err != nil {
		return o, usagef("--exec: %v", err)
	}
	cfg.Exec = argv
	return o, nil
}

// A wordsError reports a command line that cannot be split.
type wordsError struct {
	Reason string
	At     int // byte offset
}

func (e *wordsError) Error() string { return fmt.Sprintf("%s at byte %d", e.Reason, e.At) }

// splitWords splits a command line into words as a POSIX shell would, without running one:
// blanks separate words; 'single quotes' keep everything; "double quotes" keep everything but
// a backslash before $ ` " \ or a newline; a backslash outside quotes keeps the next
// character; a backslash before a newline joins lines. Nothing is expanded ($HOME, *, ~ stay
// as they are). Unbalanced quotes, a trailing backslash, and the shell's operators outside
// quotes (| & ; < > ( ) `), which need a shell, are errors.
func splitWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 == len(s) {
				return nil, &wordsError{"trailing backslash", i}
			}
			i++
			if s[i] != '\n' {
				w.WriteByte(s[i])
				inWord = true
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, &wordsError{"unbalanced single quote", i}
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			start := i
			for i++; ; i++ {
				if i == len(s) {
					return nil, &wordsError{"unbalanced double quote", start}
				}
				if s[i] == '"' {
					break
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
					if s[i] == '\n' {
						continue
					}
				}
				w.WriteByte(s[i])
			}
			inWord = true
		case strings.IndexByte("|&;<>()`", c) >= 0:
			return nil, &wordsError{fmt.Sprintf("%q needs a shell (quote it, or use sh -c '…')", c), i}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	if len(words) == 0 {
		return nil, &wordsError{"no command", 0}
	}
	return words, nil
}
