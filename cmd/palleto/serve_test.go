package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/jobs"
	"github.com/palleto/palleto/webhook"
)

func TestSplitWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"sync-user", []string{"sync-user"}},
		{"  /bin/sync   --all\t-v \n", []string{"/bin/sync", "--all", "-v"}},
		{`sh -c 'echo "$1" | wc -c' sync`, []string{"sh", "-c", `echo "$1" | wc -c`, "sync"}},
		{`a "b c" d\ e "f\"g" "h\i" 'j\k'`, []string{"a", "b c", "d e", `f"g`, `h\i`, `j\k`}},
		{`x'y'"z" '' ""`, []string{"xyz", "", ""}},
		{"a\\\nb \"c\\\nd\"", []string{"ab", "cd"}},
		{`$HOME/bin/x *.log ~`, []string{"$HOME/bin/x", "*.log", "~"}},
		{`a "|;&" '<>'`, []string{"a", "|;&", "<>"}},
	} {
		got, err := splitWords(c.in)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{"", "   ", `a 'b`, `a "b`, `a "b\"`, `a\`, "a | b", "a; b", "a > f", "a &", "$(x)", "`x`"} {
		if got, err := splitWords(in); err == nil {
			t.Errorf("splitWords(%q) = %q, want an error", in, got)
		}
	}
}

func TestServeOptions(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	o, err := serveOptions([]string{"--exec", "job"}, env())
	if err != nil {
		t.Fatal(err)
	}
	want := app.ServeConfig{Listen: "127.0.0.1:8080", Workers: runtime.NumCPU(), DataDir: "./palleto-data", Exec: []string{"job"},
		MaxAttempts: 5, ShutdownTimeout: 30 * time.Second, WaitTime: 20 * time.Second}
	if fmt.Sprint(o.cfg) != fmt.Sprint(want) || o.logLevel != "info" || o.logFormat != "text" {
		t.Fatalf("defaults: %+v, want %+v", o.cfg, want)
	}

	o, err = serveOptions([]string{"--workers", "5", "--webhook-secret", "flag"},
		env("PALLETO_WORKERS", "3", "PALLETO_WEBHOOK_SECRET", "env", "PALLETO_EXEC", "sync 'a b'", "PALLETO_MEMORY", "true",
			"PALLETO_LISTEN", "127.0.0.1:0", "PALLETO_MAX_ATTEMPTS", "2", "PALLETO_SHUTDOWN_TIMEOUT", "0s", "PALLETO_LOG_FORMAT", "json"))
	if err != nil {
		t.Fatal(err)
	}
	want = app.ServeConfig{Listen: "127.0.0.1:0", WebhookSecret: "flag", Workers: 5, DataDir: "./palleto-data", Memory: true,
		Exec: []string{"sync", "a b"}, MaxAttempts: 2, ShutdownTimeout: app.NoWait, WaitTime: 20 * time.Second}
	if fmt.Sprint(o.cfg) != fmt.Sprint(want) || o.logFormat != "json" {
		t.Fatalf("flags over environment: %+v, want %+v", o.cfg, want)
	}
}

func TestServeUsageErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		env   map[string]string
		args  []string
		words string
	}{
		{"no secret", nil, []string{"--exec", "true", "--memory"}, "--webhook-secret"},
		{"no exec", nil, []string{"--webhook-secret", "s"}, "--exec"},
		{"unbalanced quote", nil, []string{"--webhook-secret", "s", "--exec", `sync 'a b`}, "--exec"},
		{"operator", nil, []string{"--webhook-secret", "s", "--exec", `sync | tee`}, "--exec"},
		{"bad env exec", map[string]string{"PALLETO_EXEC": `"x`}, []string{"--webhook-secret", "s"}, "--exec"},
		{"memory and data dir", nil, []string{"--webhook-secret", "s", "--exec", "true", "--memory", "--data-dir", "d"}, "--data-dir"},
		{"no workers", nil, []string{"--webhook-secret", "s", "--exec", "true", "--memory", "--workers", "0"}, "--workers"},
		{"no attempts", nil, []string{"--webhook-secret", "s", "--exec", "true", "--memory", "--max-attempts", "0"}, "--max-attempts"},
		{"bad attempts", map[string]string{"PALLETO_MAX_ATTEMPTS": "many"}, []string{"--webhook-secret", "s", "--exec", "true"}, "PALLETO_MAX_ATTEMPTS"},
		{"bad listen", nil, []string{"--webhook-secret", "s", "--exec", "true", "--memory", "--listen", "nowhere:-1"}, "--listen"},
		{"bad log format", nil, []string{"--webhook-secret", "s", "--exec", "true", "--memory", "--log-format", "xml"}, "--log-format"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runMain(t, c.env, append([]string{"serve"}, c.args...)...)
			if code != 2 || !strings.Contains(stderr, c.words) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q; want 2 and one line naming %s", code, stderr, c.words)
			}
		})
	}
}

// serveProc is a palleto serve process started by a test.
type serveProc struct {
	cmd   *exec.Cmd
	url   string // the webhook listener
	admin string // the admin listener
	logs  *lockedBuffer
	exit  chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServeProc starts the binary's serve command on a free port and waits until it listens.
func startServeProc(t *testing.T, env []string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	// The jobs are the system's tools (true, sh, sleep): found where the system keeps them,
	// whatever PATH the tests run with (a PATH that holds only go, say).
	cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+string(os.PathListSeparator)+"/usr/bin"+string(os.PathListSeparator)+"/bin")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, logs: &lockedBuffer{}, exit: make(chan error, 1)}
	addr, adminURL := make(chan string, 1), make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.logs.Write(append(line, '\n'))
			var r struct{ Msg, Addr, URL string }
			if json.Unmarshal(line, &r) == nil {
				switch {
				case r.Msg == "serving":
					addr <- r.Addr
				case strings.HasPrefix(r.Msg, "admin listener"):
					adminURL <- strings.TrimSuffix(r.URL, "/")
				}
			}
		}
		io.Copy(io.Discard, stderr)
		p.exit <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.exit
		}
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
		p.admin = <-adminURL
	case err := <-p.exit:
		p.exit <- err
		t.Fatalf("palleto serve exited before listening: %v\n%s", err, p.logs)
	case <-time.After(time.Minute):
		t.Fatalf("palleto serve did not listen within a minute\n%s", p.logs)
	}
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *serveProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.exit:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(time.Minute):
		t.Fatalf("palleto serve did not exit\n%s", p.logs)
		return -1
	}
}

func (p *serveProc) post(t *testing.T, secret string, ids ...string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"list_folder": map[string]any{"accounts": ids}})
	req, _ := http.NewRequest(http.MethodPost, p.url+"/webhook", bytes.NewReader(body))
	req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(secret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /webhook %v: %s", ids, resp.Status)
	}
}

func (p *serveProc) counts(t *testing.T) jobs.Counts {
	t.Helper()
	resp, err := http.Get(p.admin + "/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c jobs.Counts
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// jobScript writes a job that records its start (id, and server), waits for dir/go, and
// records its end.
func jobScript(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "job.sh")
	script := `#!/bin/sh
echo "$1 $$ ${SERVER:-}" >> "` + dir + `/started"
while [ ! -e "` + dir + `/go" ]; do /bin/sleep 0.02; done
echo "$1 ${SERVER:-}" >> "` + dir + `/finished"
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fileLines returns the lines of a file that jobs append to; none if it does not exist.
func fileLines(t *testing.T, p string) [][]string {
	t.Helper()
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for line := range strings.Lines(string(b)) {
		out = append(out, strings.Fields(line))
	}
	return out
}

func waitLines(t *testing.T, p string, n int) [][]string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		lines := fileLines(t, p)
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d lines, want %d", p, len(lines), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeKillNineThenRestart: jobs accepted by the webhook survive a kill -9 of the server;
// after the restart every one of them runs, and only those running at the kill run twice.
func TestServeKillNineThenRestart(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	args := []string{"--webhook-secret", "s", "--workers", "2", "--data-dir", data, "--exec", "sh " + jobScript(t, dir)}
	p := startServeProc(t, nil, args...)
	var ids []string
	for i := range 10 {
		ids = append(ids, fmt.Sprint("dbid:", i))
	}
	p.post(t, "s", ids[:4]...)
	p.post(t, "s", ids[4:]...)
	p.post(t, "s", ids[2:5]...) // already waiting: nothing new
	started := waitLines(t, filepath.Join(dir, "started"), 2)
	running := []string{started[0][0], started[1][0]}
	p.post(t, "s", running[0]) // running and queued again
	if c := p.counts(t); c != (jobs.Counts{Queued: 9, Running: 2}) {
		t.Fatalf("before the kill, GET /jobs = %+v", c)
	}

	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
	// The kernel ends the jobs' processes with the server (the shell's own short sleeps end
	// by themselves).
	for _, s := range started {
		var pid int
		fmt.Sscan(s[1], &pid)
		deadline := time.Now().Add(time.Minute)
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("job %s (pid %d) outlived the killed server", s[0], pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	p = startServeProc(t, nil, args...)
	if c := p.counts(t); c.Queued+c.Running != 10 || c.Dead != 0 {
		t.Fatalf("after the restart, GET /jobs = %+v; want the 10 jobs", c)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	finished := waitLines(t, filepath.Join(dir, "finished"), 10)
	deadline := time.Now().Add(time.Minute)
	for p.counts(t).Done < 10 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if c := p.counts(t); c != (jobs.Counts{Done: 10}) {
		t.Fatalf("at the end, GET /jobs = %+v", c)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0\n%s", code, p.logs)
	}

	runs := map[string]int{}
	for _, s := range fileLines(t, filepath.Join(dir, "started")) {
		runs[s[0]]++
	}
	for _, id := range ids {
		want := 1
		if slices.Contains(running, id) {
			want = 2 // cut off by the kill, then once more: the post during its run adds nothing
		}
		if runs[id] != want {
			t.Errorf("%s started %d times, want %d", id, runs[id], want)
		}
	}
	if len(finished) != 10 || len(runs) != 10 {
		t.Errorf("%d jobs finished, %d distinct started; want 10", len(finished), len(runs))
	}
}

// alive reports whether process pid runs (a zombie waiting for its parent's wait does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the command name, which is in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// TestServeSQSSharedQueue: two servers on one SQS queue share the work; every job runs.
func TestServeSQSSharedQueue(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		q, err := moto.CreateQueue(t.Context(), srv.SQS(), fmt.Sprint("serve-shared-", time.Now().UnixNano()), moto.QueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		aws := []string{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_ENDPOINT_URL=" + srv.URL}
		args := []string{"--webhook-secret", "s", "--workers", "1", "--queue-url", q.URL, "--exec", "sh " + jobScript(t, dir)}
		a := startServeProc(t, append(aws, "SERVER=a"), args...)
		b := startServeProc(t, append(aws, "SERVER=b"), args...)

		// One worker each and the jobs wait: each server must hold one.
		a.post(t, "s", "first", "second")
		started := waitLines(t, filepath.Join(dir, "started"), 2)
		servers := []string{started[0][2], started[1][2]}
		slices.Sort(servers)
		if !slices.Equal(servers, []string{"a", "b"}) {
			t.Fatalf("the first two jobs started on servers %v, want one on each", servers)
		}
		if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want := []string{"first", "second"}
		for i := range 10 {
			id := fmt.Sprint("job-", i)
			want = append(want, id)
			[]*serveProc{a, b}[i%2].post(t, "s", id)
		}
		// SQS delivers at least once: a job may run twice, but every job must run.
		var got []string
		for lines := len(want); ; {
			seen := map[string]bool{}
			finished := waitLines(t, filepath.Join(dir, "finished"), lines)
			for _, f := range finished {
				seen[f[0]] = true
			}
			if len(seen) >= len(want) {
				got = slices.Collect(maps.Keys(seen))
				break
			}
			lines = len(finished) + len(want) - len(seen)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("jobs finished: %v, want %v", got, want)
		}
		for _, p := range []*serveProc{a, b} {
			p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.wait(t); code != 0 {
				t.Fatalf("exit %d after SIGTERM\n%s", code, p.logs)
			}
		}
	})
}
