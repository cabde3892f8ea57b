package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// summary is the medians of one side's runs at one latency.
type summary struct {
	Latency, Side  string
	Runs, Bad      int
	ObjPerS        float64
	SQSPerObject   float64
	S3PerObject    float64
	CPUMsPerObject float64
	MaxRSSMiB      float64
	// FirstResultMs is the time from the start to the first result; SteadyObjPerS the pace
	// from the first result to the last.
	FirstResultMs, SteadyObjPerS float64
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize groups runs by latency and side, in the order they first appear,
// and takes the medians of the good runs.
func summarize(runs []Run) []summary {
	type key struct{ lat, side string }
	var order []key
	groups := map[key][]Run{}
	for _, r := range runs {
		k := key{r.Latency, r.Side}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []summary
	for _, k := range order {
		s := summary{Latency: k.lat, Side: k.side}
		var ops, sqs, s3, cpu, rss, first, steady []float64
		for _, r := range groups[k] {
			s.Runs++
			if r.Error != "" || r.Objects == 0 || r.WallS <= 0 {
				s.Bad++
				continue
			}
			n := float64(r.Objects)
			ops = append(ops, n/r.WallS)
			sqs = append(sqs, float64(r.SQSRequests())/n)
			s3 = append(s3, float64(r.Requests["S3.GetObject"])/n)
			cpu = append(cpu, (r.UserS+r.SysS)*1000/n)
			rss = append(rss, float64(r.MaxRSSKiB)/1024)
			if span := r.LastResultS - r.FirstResultS; r.FirstResultS > 0 && span > 0 && r.Objects > 1 {
				first = append(first, r.FirstResultS*1000)
				steady = append(steady, float64(r.Objects-1)/span)
			}
		}
		s.ObjPerS, s.SQSPerObject, s.S3PerObject = median(ops), median(sqs), median(s3)
		s.CPUMsPerObject, s.MaxRSSMiB = median(cpu), median(rss)
		s.FirstResultMs, s.SteadyObjPerS = median(first), median(steady)
		out = append(out, s)
	}
	return out
}

// writeReport prints the Markdown table: each side against the base side ("loop") of
// the same latency.
func writeReport(w io.Writer, runs []Run, base string) {
	sums := summarize(runs)
	bases := map[string]summary{}
	for _, s := range sums {
		if s.Side == base {
			bases[s.Latency] = s
		}
	}
	fmt.Fprintf(w, "| round trip | side | objects/s | vs %s | SQS req/object | GetObject/object | CPU ms/object | vs %s | peak RSS MiB | good runs | first result ms | objects/s from the first result | vs %s |\n", base, base, base)
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range sums {
		b := bases[s.Latency]
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %.3f | %.2f | %.3f | %s | %.1f | %d/%d | %.0f | %.0f | %s |\n",
			s.Latency, s.Side, s.ObjPerS, ratio(s.ObjPerS, b.ObjPerS), s.SQSPerObject, s.S3PerObject,
			s.CPUMsPerObject, ratio(s.CPUMsPerObject, b.CPUMsPerObject), s.MaxRSSMiB, s.Runs-s.Bad, s.Runs,
			s.FirstResultMs, s.SteadyObjPerS, ratio(s.SteadyObjPerS, b.SteadyObjPerS))
	}
	for _, r := range runs {
		if r.Error != "" {
			fmt.Fprintf(w, "\nbad run: %s %s round %d: %s\n", r.Latency, r.Side, r.Round, r.Error)
		}
	}
}

func ratio(x, base float64) string {
	if base == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x/base)
}

// writeRounds prints, for each side, its objects/s in each round and their ratios to the
// base side's of the same round, with the range of those ratios: how noisy the figures
// are, the rounds being interleaved. A bad run has no figure.
func writeRounds(w io.Writer, runs []Run, base string) {
	type key struct {
		lat, side string
		round     int
	}
	ops := map[key]float64{}
	var sides []key // latency and side, in the order they first appear
	seen := map[key]bool{}
	maxRound := 0
	for _, r := range runs {
		k := key{r.Latency, r.Side, 0}
		if !seen[k] {
			seen[k] = true
			sides = append(sides, k)
		}
		maxRound = max(maxRound, r.Round)
		if r.Error == "" && r.Objects > 0 && r.WallS > 0 {
			ops[key{r.Latency, r.Side, r.Round}] = float64(r.Objects) / r.WallS
		}
	}
	fmt.Fprintf(w, "| round trip | side | objects/s by round (vs %s of the round) | ratio min–max | page polls | browser CPU s |\n", base)
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	polls, browserS := map[key][]float64{}, map[key][]float64{}
	for _, r := range runs {
		if r.Error == "" {
			k := key{r.Latency, r.Side, 0}
			polls[k] = append(polls[k], float64(r.PagePolls))
			browserS[k] = append(browserS[k], r.BrowserS)
		}
	}
	for _, k := range sides {
		var cells []string
		var ratios []float64
		for round := 1; round <= maxRound; round++ {
			x, ok := ops[key{k.lat, k.side, round}]
			if !ok {
				cells = append(cells, "–")
				continue
			}
			cell := fmt.Sprintf("%.0f", x)
			if b, ok := ops[key{k.lat, base, round}]; ok && k.side != base {
				cell += " (" + ratio(x, b) + ")"
				ratios = append(ratios, x/b)
			}
			cells = append(cells, cell)
		}
		spread := "–"
		if len(ratios) > 0 {
			spread = fmt.Sprintf("%.2f–%.2f", slices.Min(ratios), slices.Max(ratios))
		}
		p, b := "–", "–"
		if m := median(polls[k]); m > 0 {
			p = fmt.Sprintf("%.0f", m)
		}
		if m := median(browserS[k]); m > 0 {
			b = fmt.Sprintf("%.2f", m)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", k.lat, k.side, strings.Join(cells, ", "), spread, p, b)
	}
}

func readRuns(r io.Reader) ([]Run, error) {
	var runs []Run
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var run Run
		if err := json.Unmarshal([]byte(line), &run); err != nil {
			return nil, fmt.Errorf("%q: %w", line, err)
		}
		runs = append(runs, run)
	}
	return runs, sc.Err()
}

func reportCmd(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	base := fs.String("base", "loop", "the side the others are compared with; other than loop, a table by round follows")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("report: give the results file")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	runs, err := readRuns(f)
	if err != nil {
		return err
	}
	writeReport(os.Stdout, runs, *base)
	if *base != "loop" {
		fmt.Println()
		writeRounds(os.Stdout, runs, *base)
	}
	return nil
}
