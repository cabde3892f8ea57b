// Command palleto runs Palleto pipelines: S3 event notifications from SQS turned into
// results on disk (run, demo), and a webhook-fed worker pool (serve).
//
// Usage:
//
//	palleto run --queue-url URL [--out DIR] [--drain] [--fetchers N] [--processors N] …
//	palleto demo      a complete local run on the embedded SQS and S3 (--backend moto: moto_server)
//	palleto serve …   the webhook-fed worker pool
//	palleto local     the embedded SQS and S3 as a standalone server for development
//	palleto version
//
// Every flag can also be set with an environment variable PALLETO_<FLAG> (dashes become
// underscores: --queue-url is PALLETO_QUEUE_URL); a flag on the command line wins.
// Exit status: 0 success (for run --drain: every message it took succeeded); 3 run --drain
// drained the queue, but some messages failed or were dead-lettered; 2 bad usage or
// configuration, found at start-up; 1 any other failure; 130 (SIGINT) or 143 (SIGTERM) a
// second signal cut the graceful shutdown short.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/palleto/palleto/internal/gcpace"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise it comes from
// the module's build information.
var version = ""

const usage = `usage: palleto <command> [flags]

commands:
  run      process S3 event notifications from an SQS queue into result files
  demo     a complete local run on the embedded SQS and S3: provisions, uploads, runs
  serve    the webhook-fed worker pool
  jobs     list, show, requeue or delete the jobs of a worker pool
  local    serve the embedded SQS and S3 for development (AWS CLI, SDKs, your service)
  version  print the version (also: palleto --version)

Run 'palleto help <command>' (or 'palleto <command> -h') for a command's usage and flags. Every flag can also be set with
PALLETO_<FLAG> in the environment (--queue-url: PALLETO_QUEUE_URL).
`

// commandHelp is what a command's -h prints before its flags: a usage line and what the
// command does.
var commandHelp = map[string]string{
	"run": `usage: palleto run --queue-url URL [--out DIR] [--drain] [flags]

Receives the S3 event notifications that an SQS queue holds, downloads each object named,
decompresses it (gzip, zstd, bzip2 or plain) and writes one JSON result file per object
under --out; a message is deleted once all its objects have their results. It runs until
SIGINT/SIGTERM, or with --drain until the queue is empty.
`,
	"serve": `usage: palleto serve --webhook-secret SECRET --exec COMMAND [flags]

Runs a worker pool fed by a Dropbox webhook: each verified call queues a job per account
(in the embedded durable queue, or with --queue-url in an SQS queue shared by several
servers), and --workers workers run COMMAND with the job id, retrying failed jobs with
backoff. It runs until SIGINT/SIGTERM.
`,
}

// helpError carries a command's help, asked for with -h: printed on stdout, exit status 0.
type helpError struct{ text string }

func (e *helpError) Error() string { return "help requested" }
func (e *helpError) Unwrap() error { return flag.ErrHelp }

// usageError is bad usage or configuration: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// exitError ends the command with its own exit status and a one-line message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// commands holds the subcommands; each registers itself from its own file's init.
var commands = map[string]command{
	"version": versionCmd,
}

func main() {
	// The collector's pace, unless GOGC is set (internal/gcpace): in the process, not in
	// mainCode, which tests run side by side.
	stopPace := gcpace.Start(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := mainCode(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopPace()
	os.Exit(code)
}

func mainCode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	name := args[0]
	switch {
	case name == "help" && len(args) > 1 && commands[args[1]] != nil:
		name, args = args[1], []string{args[1], "-h"} // palleto help run: run's help
	case name == "-h" || name == "--help" || name == "-help" || name == "help":
		fmt.Fprint(stdout, usage)
		return 0
	case name == "--version" || name == "-version":
		name, args = "version", []string{"version"}
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "palleto: unknown command %q (commands: %s; see 'palleto help')\n", name, commandNames())
		return 2
	}
	err := cmd(ctx, args[1:], stdout, stderr)
	var ue *usageError
	var ee *exitError
	var he *helpError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &he):
		fmt.Fprint(stdout, he.text)
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "palleto %s: %s\n", name, oneLine(err))
		return 2
	case errors.As(err, &ee):
		fmt.Fprintf(stderr, "palleto %s: %s\n", name, oneLine(err))
		return ee.code
	default:
		fmt.Fprintf(stderr, "palleto %s: %s\n", name, oneLine(err))
		return 1
	}
}

func commandNames() string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// oneLine keeps an error message on one line, whatever its causes printed.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func versionCmd(_ context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return usagef("version takes no arguments")
	}
	fmt.Fprintln(stdout, "palleto", buildVersion())
	return nil
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// parse parses args into fs, then fills every flag not given on the command line from its
// PALLETO_<FLAG> environment variable. Errors are usage errors naming the flag or variable.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	rest, err := parseArgs(fs, args, getenv)
	if err == nil && len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	return err
}

// parseArgs is parse for a command that takes arguments besides its flags, before, between
// or after them; it returns the arguments.
func parseArgs(fs *flag.FlagSet, args []string, getenv func(string) string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				var b strings.Builder
				if h := commandHelp[fs.Name()]; h != "" {
					b.WriteString(h + "\nflags (each also PALLETO_<FLAG> in the environment; a flag wins):\n")
				}
				fs.SetOutput(&b)
				fs.PrintDefaults()
				return nil, &helpError{b.String()}
			}
			return nil, usagef("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := envName(f.Name)
		if v := getenv(env); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("%s=%q: %v", env, v, e)
			}
		}
	})
	return rest, err
}

// envName is the environment variable of a flag: PALLETO_ and the flag's name in upper
// case with dashes as underscores.
func envName(flagName string) string {
	return "PALLETO_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}
