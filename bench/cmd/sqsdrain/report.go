package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
)

// The goals that bench/sqs.sh checks.
const (
	goalRatio       = 2.0  // flow over loop, no work
	goalShare       = 0.9  // of K/D, with work
	goalReqPerMsg   = 0.21 // while a backlog lasts
	goalEmptyPerMin = 3.0  // receives a minute per poller, queue empty
)

// report reads the lines of sqsdrain runs (from file, or stdin if "-") and
// prints a Markdown table of the throughput runs, side by side, and the goals.
func report(args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: sqsdrain report FILE (- for stdin)", errUsage)
	}
	var in io.Reader = os.Stdin
	if args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	var runs []Result
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r Result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return fmt.Errorf("report: %w: %s", err, line)
		}
		runs = append(runs, r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	w := &errWriter{w: stdout}
	writeReport(w, runs)
	return w.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}

// side gathers the runs of one mode at one amount of work.
type side struct {
	rates                  []float64
	reqPerMsg              float64 // most
	unstarted, held        int64   // most
	sampled, unacked       int     // most
	bound, concurrency     int
	cpuPerK                []float64 // CPU ms per 1000 messages
	busy, handlerMS        []float64
	maxDemand, maxReceives int
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

func writeReport(w *errWriter, runs []Result) {
	sides := map[[2]string]*side{}
	var works []float64
	for _, r := range runs {
		if r.Mode != "flow" && r.Mode != "loop" && r.Mode != "ceiling" {
			continue
		}
		work := fmt.Sprint(r.WorkMS)
		k := [2]string{work, r.Mode}
		s := sides[k]
		if s == nil {
			s = &side{}
			sides[k] = s
			if !slices.Contains(works, r.WorkMS) {
				works = append(works, r.WorkMS)
			}
		}
		s.rates = append(s.rates, r.MsgsPerS)
		s.reqPerMsg = max(s.reqPerMsg, r.RequestsPerMsg)
		s.unstarted = max(s.unstarted, r.MaxUnstarted)
		s.held = max(s.held, r.MaxHeld)
		s.sampled = max(s.sampled, r.MaxHeldSampled)
		s.bound, s.concurrency = r.DemandBound, r.Concurrency
		s.maxDemand, s.maxReceives = r.MaxDemand, r.MaxReceives
		if r.Proxy != nil {
			s.unacked = max(s.unacked, r.Proxy.MaxUnacked)
		}
		if r.Busy > 0 {
			s.busy = append(s.busy, r.Busy)
			s.handlerMS = append(s.handlerMS, r.HandlerMS)
		}
		if r.Processed > 0 && r.Mode != "ceiling" {
			s.cpuPerK = append(s.cpuPerK, r.CPUS*1e6/float64(r.Processed))
		}
	}
	slices.Sort(works)

	w.printf("| work | side | msgs/s, each run | median | vs loop | handlers busy (ms a message) | requests/msg (most) | most unstarted (bound) | most held: counted, sampled | most unacked (proxy) | client CPU ms / 1000 msgs |\n")
	w.printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, work := range works {
		loop := sides[[2]string{fmt.Sprint(work), "loop"}]
		for _, name := range []string{"ceiling", "loop", "flow"} {
			s := sides[[2]string{fmt.Sprint(work), name}]
			if s == nil {
				continue
			}
			each := make([]string, len(s.rates))
			for i, r := range s.rates {
				each[i] = fmt.Sprintf("%.0f", r)
			}
			vs, bound, held, busy := "1×", "", "–", "–"
			if len(s.busy) > 0 {
				busy = fmt.Sprintf("%.1f%% (%.2f)", 100*median(s.busy), median(s.handlerMS))
			}
			if name == "ceiling" {
				w.printf("| %g ms | no queue | %s | %.0f | – | %s | – | – | – | – | – |\n",
					work, strings.Join(each, ", "), median(s.rates), busy)
				continue
			}
			if name == "flow" {
				vs = "–"
				if loop != nil {
					vs = fmt.Sprintf("**%.2f×**", median(s.rates)/median(loop.rates))
				}
				bound = fmt.Sprintf(" (%d)", s.bound)
				held = fmt.Sprintf("%d, %d", s.held, s.sampled)
			}
			w.printf("| %g ms | %s | %s | %.0f | %s | %s | %.3f | %d%s | %s | %d | %.0f |\n",
				work, name, strings.Join(each, ", "), median(s.rates), vs, busy, s.reqPerMsg,
				s.unstarted, bound, held, s.unacked, median(s.cpuPerK))
		}
	}

	w.printf("\nGoals:\n\n")
	for _, work := range works {
		loop, flow := sides[[2]string{fmt.Sprint(work), "loop"}], sides[[2]string{fmt.Sprint(work), "flow"}]
		if flow == nil {
			continue
		}
		if work == 0 && loop != nil {
			ratio := median(flow.rates) / median(loop.rates)
			w.printf("- no work: flow %.0f msgs/s, %.2f× the loop's %.0f (goal ≥ %.0f×): %s\n",
				median(flow.rates), ratio, median(loop.rates), goalRatio, met(ratio >= goalRatio))
		}
		if work > 0 {
			ceiling := float64(flow.concurrency) * 1000 / work
			share := median(flow.rates) / ceiling
			w.printf("- %g ms of work: flow %.0f msgs/s, %.1f%% of the %.0f that %d handlers allow (goal ≥ %.0f%%): %s",
				work, median(flow.rates), 100*share, ceiling, flow.concurrency, 100*goalShare, met(share >= goalShare))
			if c := sides[[2]string{fmt.Sprint(work), "ceiling"}]; c != nil {
				w.printf("; %.1f%% of the %.0f msgs/s that they managed with no queue on this machine", 100*median(flow.rates)/median(c.rates), median(c.rates))
			}
			w.printf("\n")
		}
		w.printf("- %g ms of work: at most %.3f requests per message (goal ≤ %.2f): %s; at most %d messages held and %d unstarted, for a demand of %d (K × MaxDemand): %s\n",
			work, flow.reqPerMsg, goalReqPerMsg, met(flow.reqPerMsg <= goalReqPerMsg),
			flow.held, flow.unstarted, flow.bound, met(flow.held <= int64(flow.bound) && flow.unstarted <= int64(flow.bound)))
	}
	for _, r := range runs {
		switch r.Mode {
		case "empty":
			recv := r.Requests["ReceiveMessage"]
			// The receives sent in the first second are the pollers that the first demand
			// started; after an empty answer the source polls one at a time.
			pollers := 0
			for _, t := range r.ReceiveStarts {
				if t < 1 {
					pollers++
				}
			}
			var gaps []float64
			for i := pollers + 1; i < len(r.ReceiveStarts); i++ {
				gaps = append(gaps, r.ReceiveStarts[i]-r.ReceiveStarts[i-1])
			}
			perPoller := float64(recv) / float64(max(pollers, 1)) / (r.WatchS / 60)
			w.printf("- empty queue, %.0f s, WaitTime %.0f s: %d receives (at %v s); %d pollers at first, %.1f receives a minute per poller",
				r.WatchS, r.WaitS, recv, r.ReceiveStarts, pollers, perPoller)
			if len(gaps) > 0 {
				w.printf("; then one poller, one receive every %.1f s (%.2f a minute)", median(gaps), 60/median(gaps))
			}
			w.printf(" (goal ≤ %.0f a minute per poller): %s\n", goalEmptyPerMin, met(perPoller <= goalEmptyPerMin && (len(gaps) == 0 || 60/median(gaps) <= goalEmptyPerMin)))
		case "idle":
			var n int64
			for _, v := range r.Requests {
				n += v
			}
			proxy := ""
			if r.Proxy != nil {
				var p int64
				for _, v := range r.Proxy.Requests {
					p += v
				}
				proxy = fmt.Sprintf(", %d seen by the proxy", p)
			}
			w.printf("- nothing demanded (after %d messages processed, pipeline stopped), %.0f s: %d requests%s (goal 0): %s\n",
				r.Processed, r.WatchS, n, proxy, met(n == 0))
		}
	}
}
