package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Run is one measured run: a JSON line of the results file.
type Run struct {
	Latency string `json:"latency"`
	Side    string `json:"side"` // "loop", "palleto", "palleto --fetchers 16", …
	Round   int    `json:"round"`
	Objects int    `json:"objects"`

	WallS float64 `json:"wall_s"`
	// FirstResultS and LastResultS are when the first and the last result files were
	// written, in seconds from the start: the first tells the fixed cost of starting up,
	// and between the two the run goes at its steady pace.
	FirstResultS float64 `json:"first_result_s,omitempty"`
	LastResultS  float64 `json:"last_result_s,omitempty"`
	UserS        float64 `json:"user_s"`
	SysS         float64 `json:"sys_s"`
	MaxRSSKiB    int64   `json:"maxrss_kib"`
	// PagePolls counts the snapshots that a dashboard held open during the run (exec -page)
	// polled from the admin listener.
	PagePolls int `json:"page_polls,omitempty"`
	// BrowserS is the CPU time that the browser of the page used during the run: on the
	// same machine, it competes with the run.
	BrowserS float64 `json:"browser_cpu_s,omitempty"`
	// Requests counts the requests that went through the proxies, by action
	// ("ReceiveMessage", "S3.GetObject", …).
	Requests map[string]int64 `json:"requests"`
	// Error says why the run does not count: the command failed, or a result
	// is missing or wrong. Empty for a good run.
	Error string `json:"error,omitempty"`
}

// SQSRequests counts the SQS requests of the run (S3's are named "S3.…").
func (r Run) SQSRequests() int64 {
	var n int64
	for a, c := range r.Requests {
		if !strings.HasPrefix(a, "S3.") {
			n += c
		}
	}
	return n
}

// execCmd runs a command as one measured run and prints its Run line: wall
// time from start to exit, the child's user and system CPU time and peak RSS
// (from its rusage), the requests the proxies saw meanwhile, and the check of
// every result. {admin} in the command is replaced with a free loopback
// address; with -page, a headless Chromium, started before the command, holds
// the dashboard at that address open while the command runs (a run whose page
// never loaded does not count).
func execCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	var r Run
	fs.StringVar(&r.Latency, "latency", "", "round trip added by the proxies (a label)")
	fs.StringVar(&r.Side, "side", "", "what runs (a label)")
	fs.IntVar(&r.Round, "round", 0, "round (a label)")
	fs.IntVar(&r.Objects, "n", 1000, "objects")
	stats := fs.String("stats", "", "the backend's stats URL")
	out := fs.String("out", "", "result directory to check")
	bucket := fs.String("bucket", "bench", "bucket")
	withPage := fs.Bool("page", false, "hold the dashboard of the admin listener at {admin} open in a headless Chromium")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("exec: no command")
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	argv, hasAdmin := withAdmin(argv, addr)
	if *withPage && !hasAdmin {
		return errors.New("exec: -page needs " + adminPlaceholder + " in the command, as the admin listener's address")
	}
	if _, err := getStats(*stats, http.MethodPost); err != nil {
		return err
	}
	var pg *page
	if *withPage {
		if pg, err = startPage(ctx); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	began := time.Now()
	err = cmd.Start()
	if err == nil {
		if pg != nil {
			pg.open(addr)
		}
		err = cmd.Wait()
	}
	r.WallS = time.Since(began).Seconds()
	if pg != nil {
		polls, cpu, perr := pg.close()
		r.PagePolls, r.BrowserS = polls, cpu.Seconds()
		if perr != nil && err == nil {
			r.Error = perr.Error()
		}
	}
	if cmd.ProcessState == nil { // not started
		return fmt.Errorf("exec: %w", err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		r.UserS = time.Duration(ru.Utime.Nano()).Seconds()
		r.SysS = time.Duration(ru.Stime.Nano()).Seconds()
		r.MaxRSSKiB = ru.Maxrss // KiB on Linux
	}
	switch {
	case err != nil:
		r.Error = fmt.Sprintf("%s: %v", argv[0], err)
	case r.Error != "":
	default:
		times, err := check(*out, *bucket, r.Objects)
		if err != nil {
			r.Error = err.Error()
			break
		}
		r.FirstResultS, r.LastResultS = times.first.Sub(began).Seconds(), times.last.Sub(began).Seconds()
	}
	if r.Requests, err = getStats(*stats, http.MethodGet); err != nil {
		return err
	}
	line, _ := json.Marshal(r)
	fmt.Printf("%s\n", line)
	return nil
}

func getStats(url, method string) (map[string]int64, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer resp.Body.Close()
	var m map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return m, nil
}
