package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/palleto/palleto/output"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestGenObjectIsStableAndCounted(t *testing.T) {
	a, b := genObject(7), genObject(7)
	if !bytes.Equal(a.body, b.body) || a.key != b.key {
		t.Fatal("object 7 differs between two calls")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a.body))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if got := int64(bytes.Count(raw, []byte{'\n'})); got != a.lines {
		t.Errorf("lines = %d, want %d", got, a.lines)
	}
	if int64(len(raw)) != a.plain {
		t.Errorf("plain = %d, want %d", len(raw), a.plain)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	w, err := output.NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const n = 3
	for i := range n {
		o := genObject(i)
		lines := o.lines
		if i == 2 {
			lines++ // a wrong count
		}
		if _, _, err := w.Write(output.Result{Bucket: "b", Key: o.key, Size: int64(len(o.body)), Bytes: o.plain, Lines: lines, Encoding: "gzip"}); err != nil {
			t.Fatal(err)
		}
	}
	times, err := check(dir, "b", 2)
	if err != nil {
		t.Errorf("check of 2 good results: %v", err)
	}
	if times.first.IsZero() || times.last.Before(times.first) {
		t.Errorf("check of 2 good results: written from %v to %v, want the first no later than the last", times.first, times.last)
	}
	_, err = check(dir, "b", n)
	if err == nil || !strings.Contains(err.Error(), "1 of 3") {
		t.Errorf("check with a wrong count = %v, want 1 of 3 wrong", err)
	}
	if _, err := check(dir, "b", n+1); err == nil || !strings.Contains(err.Error(), "2 of 4") {
		t.Errorf("check with a missing result = %v, want 2 of 4", err)
	}
}

func TestReportRatios(t *testing.T) {
	runs := []Run{
		{Latency: "10ms", Side: "loop", Objects: 100, WallS: 1, UserS: 0.1, Requests: map[string]int64{"ReceiveMessage": 10, "DeleteMessageBatch": 10, "S3.GetObject": 100}},
		{Latency: "10ms", Side: "loop", Objects: 100, WallS: 2, FirstResultS: 0.02, LastResultS: 1.98},
		{Latency: "10ms", Side: "loop", Objects: 100, WallS: 4},
		{Latency: "10ms", Side: "palleto", Objects: 100, WallS: 1, FirstResultS: 0.1, LastResultS: 0.595},
		{Latency: "10ms", Side: "palleto", Objects: 100, WallS: 0.5, Error: "1 of 100 results missing"},
	}
	sums := summarize(runs)
	if len(sums) != 2 {
		t.Fatalf("%d summaries, want 2", len(sums))
	}
	if got := sums[0].ObjPerS; got != 50 {
		t.Errorf("loop median = %v objects/s, want 50", got)
	}
	if got := sums[1]; got.ObjPerS != 100 || got.Bad != 1 {
		t.Errorf("palleto = %v objects/s with %d bad, want 100 with 1 (the bad run not counted)", got.ObjPerS, got.Bad)
	}
	var buf bytes.Buffer
	writeReport(&buf, runs, "loop")
	if !strings.Contains(buf.String(), "| 10ms | palleto | 100 | 2.00× |") {
		t.Errorf("report lacks the ratio to the loop:\n%s", buf.String())
	}
	// From the first result: 99 objects in 1.96 s and in 0.495 s.
	if !strings.Contains(buf.String(), "| 100 | 200 | 3.96× |") || !strings.Contains(buf.String(), "| 20 | 51 | 1.00× |") {
		t.Errorf("report lacks the time to the first result and the pace from it:\n%s", buf.String())
	}
}

// Against another side, by round: each side's objects/s in each round, with its ratio to
// the base side's of the same round, and the range of those ratios.
func TestRounds(t *testing.T) {
	runs := []Run{
		{Latency: "0", Side: "palleto", Round: 1, Objects: 100, WallS: 1},
		{Latency: "0", Side: "palleto --admin-listen {admin}", Round: 1, Objects: 100, WallS: 1.25},
		{Latency: "0", Side: "page palleto", Round: 1, Objects: 100, WallS: 2, PagePolls: 3, BrowserS: 1.5},
		{Latency: "0", Side: "palleto", Round: 2, Objects: 100, WallS: 0.5},
		{Latency: "0", Side: "palleto --admin-listen {admin}", Round: 2, Objects: 100, WallS: 0.5},
		{Latency: "0", Side: "page palleto", Round: 2, Objects: 100, WallS: 1, Error: "the dashboard did not load"},
	}
	var buf bytes.Buffer
	writeReport(&buf, runs, "palleto")
	writeRounds(&buf, runs, "palleto")
	for _, want := range []string{
		"| 0 | palleto --admin-listen {admin} | 140 | 0.93× |", // medians 140 and 150: the ratio of the medians
		"| 0 | palleto | 100, 200 | – | – | – |",
		"| 0 | palleto --admin-listen {admin} | 80 (0.80×), 200 (1.00×) | 0.80–1.00 | – | – |",
		"| 0 | page palleto | 50 (0.50×), – | 0.50–0.50 | 3 | 1.50 |",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no %q in:\n%s", want, buf.String())
		}
	}
}

func TestWithAdmin(t *testing.T) {
	argv, ok := withAdmin([]string{"palleto", "run", "--admin-listen", "{admin}"}, "127.0.0.1:4321")
	if !ok || strings.Join(argv, " ") != "palleto run --admin-listen 127.0.0.1:4321" {
		t.Errorf("%q, %v", argv, ok)
	}
	if argv, ok := withAdmin([]string{"palleto", "run"}, "127.0.0.1:4321"); ok || strings.Join(argv, " ") != "palleto run" {
		t.Errorf("without the placeholder: %q, %v", argv, ok)
	}
}

// treeCPU counts the CPU time of a process and its children: this test's process comes to
// use some, and a process that does not exist has none.
func TestTreeCPU(t *testing.T) {
	deadline := time.Now().Add(30 * time.Second)
	for treeCPU(os.Getpid()) <= 0 { // reading /proc uses CPU: a tick comes
		if time.Now().After(deadline) {
			t.Fatal("treeCPU of this process stays 0")
		}
	}
	if got := treeCPU(1 << 30); got != 0 {
		t.Errorf("treeCPU of no process = %v", got)
	}
}
