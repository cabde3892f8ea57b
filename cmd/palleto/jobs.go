package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/palleto/palleto/admin"
	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/jobs"
)

func init() { commands["jobs"] = jobsCmd }

const jobsUsage = `usage: palleto jobs <list|show|requeue|delete> [ID] [flags]

  list [--state queued|running|retrying|dead]   the jobs, by state
  show ID                                       a job, with its failed runs
  requeue ID                                    run a retrying or dead job now
  delete ID                                     forget a job that is not running

A running server is reached at --admin-url (its admin listener); without one, the jobs are
read from --data-dir, which only works while no server holds it.
`

// jobStore is the job queue as the jobs command sees it: a running server's admin API, or
// the data directory itself.
type jobStore interface {
	List(ctx context.Context, st jobs.State) ([]jobs.Info, error)
	Info(ctx context.Context, id string) (jobs.Info, error)
	RunNow(ctx context.Context, id string) (jobs.State, error)
	Delete(ctx context.Context, id string) error
	Close() error
}

func jobsCmd(ctx context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 0 {
			return usagef("jobs needs a subcommand: list, show, requeue or delete")
		}
		fmt.Fprint(stdout, jobsUsage)
		return nil
	}
	sub := args[0]
	fs := flag.NewFlagSet("jobs "+sub, flag.ContinueOnError)
	adminURL := fs.String("admin-url", "", "URL of a running server's admin listener, e.g. http://127.0.0.1:8081")
	token := fs.String("admin-token", "", "the admin listener's token, if it has one (better set in "+admin.TokenEnv+")")
	dataDir := fs.String("data-dir", app.DefaultDataDir, "the job queue's directory, when no server holds it")
	state := fs.String("state", "", "list: only the jobs in this state (queued, running, retrying, dead)")
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parseArgs(fs, args[1:], os.Getenv)
	if err != nil {
		return err
	}
	wantID := sub != "list"
	switch {
	case sub != "list" && sub != "show" && sub != "requeue" && sub != "delete":
		return usagef("unknown subcommand %q (list, show, requeue or delete)", sub)
	case wantID && len(rest) != 1:
		return usagef("jobs %s takes one job id", sub)
	case !wantID && len(rest) > 0:
		return usagef("jobs list takes no argument (got %q); --state filters", rest[0])
	case *state != "" && sub != "list":
		return usagef("--state is for jobs list")
	}
	var st jobs.State
	if *state != "" {
		if st, err = jobs.ParseState(*state); err != nil {
			return usagef("--state %q: want queued, running, retrying or dead", *state)
		}
	}
	store, err := openJobStore(*adminURL, *token, *dataDir)
	if err != nil {
		return err
	}
	defer store.Close()

	switch sub {
	case "list":
		list, err := store.List(ctx, st)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, list)
		}
		printJobs(stdout, list)
	case "show":
		in, err := store.Info(ctx, rest[0])
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, in)
		}
		printJob(stdout, in)
	case "requeue":
		st, err := store.RunNow(ctx, rest[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s\n", rest[0], st)
	case "delete":
		if err := store.Delete(ctx, rest[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: deleted\n", rest[0])
	}
	return nil
}

func openJobStore(adminURL, token, dir string) (jobStore, error) {
	if adminURL != "" {
		u, err := url.Parse(adminURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usagef("--admin-url %q: want http://HOST:PORT", adminURL)
		}
		return &remoteJobs{base: strings.TrimSuffix(adminURL, "/"), token: token, client: &http.Client{Timeout: 30 * time.Second}}, nil
	}
	q, err := jobs.Open(jobs.Config{Dir: dir})
	if errors.Is(err, jobs.ErrLocked) {
		return nil, fmt.Errorf("the data directory %s is held by a running server: reach it with --admin-url (or %s), the address of its --admin-listen", dir, envName("admin-url"))
	}
	if err != nil {
		return nil, err
	}
	return localJobs{q}, nil
}

// localJobs is the data directory opened by the command itself.
type localJobs struct{ q *jobs.Queue }

func (l localJobs) List(_ context.Context, st jobs.State) ([]jobs.Info, error) {
	return l.q.List(st), nil
}
func (l localJobs) Info(_ context.Context, id string) (jobs.Info, error) { return l.q.Info(id) }
func (l localJobs) RunNow(ctx context.Context, id string) (jobs.State, error) {
	return l.q.RunNow(ctx, id)
}
func (l localJobs) Delete(ctx context.Context, id string) error { return l.q.Delete(ctx, id) }
func (l localJobs) Close() error                                { return l.q.Close() }

// remoteJobs is a running server's admin API.
type remoteJobs struct {
	base, token string
	client      *http.Client
}

func (r *remoteJobs) Close() error { return nil }

func (r *remoteJobs) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, nil)
	if err != nil {
		return err
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if method == http.MethodPost {
		req.Header.Set(admin.RequestHeader, "palleto jobs")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the admin listener at %s: %w", r.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, r.base+path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("the admin listener wants its token: give --admin-token or set %s (%s)", admin.TokenEnv, msg)
		case http.StatusNotFound:
			if msg == jobs.ErrNotFound.Error() {
				return jobs.ErrNotFound
			}
		case http.StatusConflict:
			return fmt.Errorf("%s", msg)
		}
		return fmt.Errorf("%s %s: %s: %s", method, r.base+path, resp.Status, msg)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: not the admin API's answer: %w", method, r.base+path, err)
	}
	return nil
}

func (r *remoteJobs) List(ctx context.Context, st jobs.State) ([]jobs.Info, error) {
	var l admin.JobList
	err := r.do(ctx, http.MethodGet, "/api/jobs?state="+url.QueryEscape(string(st)), &l)
	if err == nil && l.Unlisted != "" {
		// An empty list would say there are none.
		return nil, fmt.Errorf("the server at %s lists no jobs: %s", r.base, l.Unlisted)
	}
	return l.Jobs, err
}

func (r *remoteJobs) Info(ctx context.Context, id string) (jobs.Info, error) {
	var in jobs.Info
	err := r.do(ctx, http.MethodGet, "/api/jobs/"+url.PathEscape(id), &in)
	return in, err
}

func (r *remoteJobs) RunNow(ctx context.Context, id string) (jobs.State, error) {
	var c admin.JobChange
	err := r.do(ctx, http.MethodPost, "/api/jobs/"+url.PathEscape(id)+"/run", &c)
	return c.State, err
}

func (r *remoteJobs) Delete(ctx context.Context, id string) error {
	var c admin.JobChange
	return r.do(ctx, http.MethodPost, "/api/jobs/"+url.PathEscape(id)+"/delete", &c)
}

func printJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

func printJobs(w io.Writer, list []jobs.Info) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no jobs")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tFAILED RUNS\tSINCE\tLAST ERROR")
	for _, j := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", j.ID, j.State, j.Attempts, since(j), oneLineText(j.LastError, 80))
	}
	tw.Flush()
}

// since says when a job entered its state.
func since(j jobs.Info) string {
	t := j.Queued
	switch j.State {
	case jobs.StateRunning:
		t = j.Started
	case jobs.StateRetrying:
		return "retry at " + j.RetryAt.Format(time.DateTime)
	case jobs.StateDead:
		t = j.DiedAt
	}
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.DateTime)
}

func printJob(w io.Writer, j jobs.Info) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("id:", j.ID)
	row("state:", string(j.State))
	row("failed runs:", fmt.Sprint(j.Attempts))
	if !j.Queued.IsZero() {
		row("queued:", j.Queued.Format(time.DateTime))
	}
	if !j.Started.IsZero() {
		row("running since:", j.Started.Format(time.DateTime))
	}
	if !j.RetryAt.IsZero() {
		row("retry at:", j.RetryAt.Format(time.DateTime))
	}
	if !j.DiedAt.IsZero() {
		row("dead since:", j.DiedAt.Format(time.DateTime))
	}
	if j.LastError != "" {
		row("last error:", oneLineText(j.LastError, 0))
	}
	tw.Flush()
	if len(j.History) == 0 {
		return
	}
	fmt.Fprintln(w, "\nfailed runs:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTEMPT\tSTARTED\tTOOK\tERROR")
	for _, a := range j.History {
		fmt.Fprintf(tw, "%d\t%s\t%v\t%s\n", a.Attempt, a.Started.Format(time.DateTime), a.Ended.Sub(a.Started).Round(time.Millisecond), oneLineText(a.Error, 0))
	}
	tw.Flush()
}

// oneLineText keeps s on one line, cut to n runes when n > 0.
func oneLineText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); n > 0 && len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
