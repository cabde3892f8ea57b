package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/goleak"

	"github.com/palleto/palleto/internal/awstest"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/output"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(awstest.Main(m)) }

func runMain(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var o, e bytes.Buffer
	code = mainCode(t.Context(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestUsageErrorsExitTwoWithOneLine(t *testing.T) {
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		words string // the message must name this
	}{
		{"no command", nil, nil, "usage"},
		{"unknown command", nil, []string{"frobnicate"}, "frobnicate"},
		{"missing queue", nil, []string{"run"}, "--queue-url"},
		{"unknown flag", nil, []string{"run", "--nope"}, "nope"},
		{"bad number", nil, []string{"run", "--queue-url", "http://x", "--fetchers", "many"}, "fetchers"},
		{"zero fetchers", nil, []string{"run", "--queue-url", "http://x", "--fetchers", "0"}, "--fetchers"},
		{"bad policy", nil, []string{"run", "--queue-url", "http://x", "--on-missing", "ignore"}, "--on-missing"},
		{"bad wait", nil, []string{"run", "--queue-url", "http://x", "--wait-time", "30s"}, "--wait-time"},
		{"bad env", map[string]string{"PALLETO_FETCHERS": "lots"}, []string{"run", "--queue-url", "http://x"}, "PALLETO_FETCHERS"},
		{"bad log level", nil, []string{"run", "--queue-url", "http://x", "--log-level", "loud"}, "--log-level"},
		{"stray argument", nil, []string{"run", "--queue-url", "http://x", "extra"}, "extra"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runMain(t, c.env, c.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr)
			}
			if !strings.Contains(stderr, c.words) {
				t.Fatalf("stderr %q does not name %q", stderr, c.words)
			}
			if c.args != nil && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("stderr is not one line: %q", stderr)
			}
		})
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	// The environment asks for 0 fetchers (invalid); the flag's valid value must win, so the
	// run gets as far as the queue check, which fails on the unreachable endpoint instead.
	code, _, stderr := runMain(t, map[string]string{
		"PALLETO_FETCHERS": "0", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
		"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_MAX_ATTEMPTS": "1",
	}, "run", "--queue-url", "http://127.0.0.1:1/123456789012/q", "--fetchers", "2", "--out", filepath.Join(t.TempDir(), "out"))
	if code != 2 || strings.Contains(stderr, "fetchers") {
		t.Fatalf("exit %d, stderr %q: want the endpoint error, not the environment's fetchers", code, stderr)
	}
}

func TestStartupProblemsAreFoundBeforePolling(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		ctx := t.Context()
		q, err := moto.CreateQueue(ctx, srv.SQS(), "startup", moto.QueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		base := map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_MAX_ATTEMPTS": "1"}
		with := func(kv ...string) map[string]string {
			m := map[string]string{}
			for k, v := range base {
				m[k] = v
			}
			for i := 0; i < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return m
		}
		// Endpoints that are not SQS: a web page, and a 404 page.
		page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html><body>hello</body></html>")
		}))
		defer page.Close()
		notFound := httptest.NewServer(http.NotFoundHandler())
		defer notFound.Close()
		noCredentials := with("AWS_ENDPOINT_URL", srv.URL, "AWS_ACCESS_KEY_ID", "", "AWS_SECRET_ACCESS_KEY", "", "AWS_PROFILE", "",
			"AWS_CONFIG_FILE", "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", "AWS_WEB_IDENTITY_TOKEN_FILE", "",
			"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "",
			"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
		cases := []struct {
			name string
			env  map[string]string
			url  string
			want string
			not  string // a misleading cause the message must not give
		}{
			{"unreachable endpoint", with("AWS_ENDPOINT_URL", "http://127.0.0.1:1"), "http://127.0.0.1:1/123456789012/startup", "cannot reach SQS", ""},
			{"no credentials", noCredentials, q.URL, "no AWS credentials found", "cannot reach SQS"},
			{"a web page", with("AWS_ENDPOINT_URL", page.URL), page.URL + "/123456789012/q", "the endpoint " + page.URL + " does not answer as SQS does (HTTP 200, text/html)", "unexpected token"},
			{"a 404 page", with("AWS_ENDPOINT_URL", notFound.URL), notFound.URL + "/123456789012/q", "does not answer as SQS does (HTTP 404", "unmarshal"},
			{"missing queue", with("AWS_ENDPOINT_URL", srv.URL), strings.TrimSuffix(q.URL, "startup") + "no-such-queue", "does not exist", ""},
			{"no region", with("AWS_ENDPOINT_URL", srv.URL, "AWS_REGION", "", "AWS_DEFAULT_REGION", "", "AWS_CONFIG_FILE", "/nonexistent"), q.URL, "AWS_REGION", ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
				defer cancel()
				for k, v := range c.env {
					t.Setenv(k, v)
				}
				var o, e bytes.Buffer
				// Two levels that do not exist: the set-up of --out runs beside the check of the
				// queue, and what it made must be gone again.
				top := filepath.Join(t.TempDir(), "out")
				out := filepath.Join(top, "nested")
				code := mainCode(ctx, []string{"run", "--queue-url", c.url, "--out", out, "--status", "off"}, &o, &e)
				if code != 2 {
					t.Fatalf("exit %d, want 2; stderr: %s", code, e.String())
				}
				if _, err := os.Stat(top); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("a refused run left --out behind (%v)", err)
				}
				if lines := strings.Split(strings.TrimSpace(e.String()), "\n"); len(lines) != 1 {
					t.Fatalf("want one line, got %q", e.String())
				}
				if !strings.Contains(e.String(), c.want) {
					t.Fatalf("message %q does not say %q", e.String(), c.want)
				}
				if c.not != "" && strings.Contains(e.String(), c.not) {
					t.Fatalf("message %q names a misleading cause: %q", e.String(), c.not)
				}
			})
		}
	})
}

// With an overriding endpoint, a queue URL of another host is used on the endpoint: the run
// warns, naming both.
func TestQueueHostNotEndpointWarns(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		name := fmt.Sprint("hostwarn-", time.Now().UnixNano())
		if _, err := moto.CreateQueue(t.Context(), srv.SQS(), name, moto.QueueOptions{}); err != nil {
			t.Fatal(err)
		}
		awsURL := "https://sqs.us-east-1.amazonaws.com/123456789012/" + name
		code, _, stderr := runMain(t, map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": srv.URL},
			"run", "--queue-url", awsURL, "--out", t.TempDir(), "--drain", "--status", "off", "--wait-time", "1s", "--log-level", "warn")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, "queue_url="+awsURL) || !strings.Contains(stderr, "endpoint="+srv.URL) {
			t.Fatalf("no warning naming the queue URL and the endpoint:\n%s", stderr)
		}
		// The same host as the endpoint: no warning.
		q, err := moto.CreateQueue(t.Context(), srv.SQS(), name+"-same", moto.QueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, _, stderr = runMain(t, nil, "run", "--queue-url", q.URL, "--out", t.TempDir(), "--drain", "--status", "off", "--wait-time", "1s", "--log-level", "warn")
		if strings.Contains(stderr, "endpoint=") {
			t.Fatalf("a warning for a queue on the endpoint's host:\n%s", stderr)
		}
	})
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, out, _ := runMain(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "palleto ") {
			t.Errorf("palleto %v: exit %d, output %q", args, code, out)
		}
	}
}

// TestCommandHelp: a command's help starts with its usage line and what it does, lists every
// flag, and is what 'palleto help COMMAND' prints too.
func TestCommandHelp(t *testing.T) {
	for _, c := range []struct {
		cmd   string
		flags []string
	}{
		{"run", []string{"-queue-url", "-spool-dir", "-status", "-wait-time", "-metrics-listen"}},
		{"serve", []string{"-webhook-secret", "-exec", "-wait-time", "-shutdown-timeout"}},
	} {
		for _, args := range [][]string{{c.cmd, "--help"}, {c.cmd, "-h"}, {"help", c.cmd}} {
			code, out, _ := runMain(t, nil, args...)
			if code != 0 || !strings.HasPrefix(out, "usage: palleto "+c.cmd+" ") || !strings.Contains(out, "\n\n") {
				t.Errorf("palleto %v: exit %d, output %q; want the usage line and a description", args, code, out)
				continue
			}
			for _, f := range c.flags {
				if !strings.Contains(out, "  "+f+" ") && !strings.Contains(out, "  "+f+"\n") {
					t.Errorf("palleto %v: no %s in\n%s", args, f, out)
				}
			}
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the palleto command once per test binary.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "palleto-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "palleto")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// kill -9 in the middle of a run, then a restart with --drain: every result correct, the
// queue empty.
func TestKillNineThenRestart(t *testing.T) {
	bin := binary(t)
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		ctx := t.Context()
		s3c, sqsc := srv.S3(), srv.SQS()
		q, err := moto.CreateQueue(ctx, sqsc, "kill9", moto.QueueOptions{VisibilityTimeout: 2 * time.Second, MaxReceiveCount: 10})
		if err != nil {
			t.Fatal(err)
		}
		if err := moto.CreateBucket(ctx, s3c, "kill9"); err != nil {
			t.Fatal(err)
		}
		if err := moto.NotifyQueue(ctx, s3c, sqsc, "kill9", q); err != nil {
			t.Fatal(err)
		}
		const n = 60
		want := map[string]int64{}
		for i := range n {
			key := fmt.Sprintf("obj-%03d.log", i)
			var b bytes.Buffer
			for l := range 2000 + i {
				fmt.Fprintf(&b, "line %d\n", l)
			}
			want[key] = int64(2000 + i)
			if _, err := moto.PutObject(ctx, s3c, "kill9", key, b.Bytes()); err != nil {
				t.Fatal(err)
			}
		}
		out := t.TempDir()
		// The first run reaches the backend through a gate that answers the first `let`
		// object downloads and holds the others until the process is killed, so the kill
		// always comes with some results written and others not, however fast the pipeline.
		const let = 10
		gate := newDownloadGate(t, srv.URL, "/kill9/", let)
		env := append(os.Environ(), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test")
		args := []string{"run", "--queue-url", q.URL, "--out", out, "--fetchers", "1", "--processors", "1", "--wait-time", "1s", "--retry-delay", "200ms", "--visibility-timeout", "2s", "--status", "off"}

		// First run: killed as soon as a few results exist.
		cmd := exec.Command(bin, args...)
		cmd.Env = append(env, "AWS_ENDPOINT_URL="+gate.URL)
		var logs bytes.Buffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for countResults(out) < 5 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		done := countResults(out)
		if done == 0 || done > let {
			t.Fatalf("kill came at %d of %d results, with %d downloads let through: the test proves nothing", done, n, let)
		}
		marker := filepath.Join(out, output.OpenMarker)
		if _, err := os.Stat(marker); err != nil {
			t.Errorf("the killed run left no %s, so the next run would not sweep: %v", output.OpenMarker, err)
		}

		// Restart and drain, straight to the backend.
		cmd = exec.Command(bin, append(args, "--drain")...)
		cmd.Env = append(env, "AWS_ENDPOINT_URL="+srv.URL)
		combined, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("restart: %v\n%s", err, combined)
		}
		for key, lines := range want {
			r, err := output.Read(filepath.Join(out, output.RelPath("kill9", key)))
			if err != nil || r.Lines != lines {
				t.Errorf("%s: %+v, %v; want %d lines", key, r, err, lines)
			}
		}
		attrs, err := sqsc.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		if attrs.Attributes["ApproximateNumberOfMessages"] != "0" || attrs.Attributes["ApproximateNumberOfMessagesNotVisible"] != "0" {
			t.Fatalf("queue not empty after the restart: %v", attrs.Attributes)
		}
		// The restart keeps the marker only while the kill's temporary files are left (they
		// are young yet), so that a later run sweeps them.
		leftovers, _ := filepath.Glob(filepath.Join(out, "*", ".palleto-*"))
		if len(leftovers) > 0 {
			t.Logf("temporary files left by the kill (harmless): %v", leftovers)
		}
		if _, err := os.Stat(marker); (err == nil) != (len(leftovers) > 0) {
			t.Errorf("after the restart, %s there: %v, with %d temporary files left", output.OpenMarker, err == nil, len(leftovers))
		}
	})
}

// newDownloadGate serves a proxy to target that forwards every request, except that it holds
// the GETs under prefix (object downloads) after the first let until the gate opens (then
// they go on) or their client goes away.
func newDownloadGate(t *testing.T, target, prefix string, let int) *downloadGate {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorLog = log.New(io.Discard, "", 0) // a kill cuts connections on purpose
	g := &downloadGate{opened: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, prefix) && g.passed.Add(1) > int64(let) {
			select {
			case <-g.opened:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	g.URL = srv.URL
	t.Cleanup(func() { g.Open(); srv.Close() })
	return g
}

type downloadGate struct {
	URL    string
	passed atomic.Int64
	once   sync.Once
	opened chan struct{}
}

// Open lets the held downloads and all later ones through.
func (g *downloadGate) Open() { g.once.Do(func() { close(g.opened) }) }

func countResults(dir string) int {
	n := 0
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".json") {
			n++
		}
		return nil
	})
	return n
}

// SIGTERM: stop receiving, finish or release what is in flight, flush deletes, exit 0. The
// messages not done are visible again at once, not after their visibility timeout.
func TestSigtermShutsDownGracefully(t *testing.T) {
	bin := binary(t)
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		ctx := t.Context()
		s3c, sqsc := srv.S3(), srv.SQS()
		q, err := moto.CreateQueue(ctx, sqsc, "sigterm", moto.QueueOptions{VisibilityTimeout: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if err := moto.CreateBucket(ctx, s3c, "sigterm"); err != nil {
			t.Fatal(err)
		}
		if err := moto.NotifyQueue(ctx, s3c, sqsc, "sigterm", q); err != nil {
			t.Fatal(err)
		}
		// Enough objects that those taken before the signal (the read-ahead of the parse
		// workers: 30 messages with --fetchers 1) leave some in the queue, and a gate that
		// holds the downloads after the first ten until the signal has been sent, so the
		// signal comes in the middle of the work however fast the pipeline is.
		const n, let = 100, 10
		for i := range n {
			if _, err := moto.PutObject(ctx, s3c, "sigterm", fmt.Sprintf("o-%03d", i), bytes.Repeat([]byte("x\n"), 50000)); err != nil {
				t.Fatal(err)
			}
		}
		gate := newDownloadGate(t, srv.URL, "/sigterm/", let)
		out := t.TempDir()
		cmd := exec.Command(bin, "run", "--queue-url", q.URL, "--out", out, "--fetchers", "1", "--processors", "1",
			"--wait-time", "1s", "--visibility-timeout", "10m", "--status", "off")
		cmd.Env = append(os.Environ(), "AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_ENDPOINT_URL="+gate.URL)
		var logs bytes.Buffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for countResults(out) < 3 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		gate.Open() // the download in flight finishes; what was not started is released
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
		if !strings.Contains(logs.String(), "shutting down") {
			t.Errorf("SIGTERM was not answered with a line saying that the run is shutting down:\n%s", logs.String())
		}
		done := countResults(out)
		attrs, err := sqsc.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(q.URL),
			AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		// One test event plus n object events; every one either done (deleted) or visible again.
		visible, hidden := attrs.Attributes["ApproximateNumberOfMessages"], attrs.Attributes["ApproximateNumberOfMessagesNotVisible"]
		if hidden != "0" {
			t.Fatalf("%s messages still invisible after a graceful shutdown (visibility 10m): not released\n%s", hidden, logs.String())
		}
		t.Logf("%d of %d done at the end, %s visible again", done, n, visible)
		if done >= n || visible == "0" {
			t.Fatalf("%d of %d done, %s visible: the shutdown came too late to prove anything", done, n, visible)
		}
		// No message was deleted without its result: deleted ≤ results + the test event.
		var left int
		fmt.Sscan(visible, &left)
		if deleted := n + 1 - left; deleted > done+1 {
			t.Fatalf("%d messages deleted but only %d results written", deleted, done)
		}
	})
}

// Two runs on one output directory: the second is refused at start-up with one line, and the
// directory is free again once the first has ended.
func TestOutInUse(t *testing.T) {
	awstest.Each(t, func(t *testing.T, bk awstest.Backend) {
		srv := bk
		q, err := moto.CreateQueue(t.Context(), srv.SQS(), fmt.Sprint("outlock-", time.Now().UnixNano()), moto.QueueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_ENDPOINT_URL": srv.URL} {
			t.Setenv(k, v)
		}
		out := t.TempDir()
		ctx, cancel := context.WithCancel(t.Context())
		first := make(chan int, 1)
		var firstErr bytes.Buffer
		go func() {
			first <- mainCode(ctx, []string{"run", "--queue-url", q.URL, "--out", out, "--status", "off", "--wait-time", "1s", "--log-level", "error"}, io.Discard, &firstErr)
		}()
		// Wait until the first run holds the directory: then a lock of our own is refused.
		d, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(time.Minute)
		for syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			syscall.Flock(int(d.Fd()), syscall.LOCK_UN)
			if time.Now().After(deadline) {
				t.Fatal("the first run did not take the directory within a minute")
			}
			time.Sleep(20 * time.Millisecond)
		}
		d.Close()
		var e bytes.Buffer
		code := mainCode(t.Context(), []string{"run", "--queue-url", q.URL, "--out", out, "--drain", "--status", "off", "--wait-time", "1s"}, io.Discard, &e)
		if code != 2 || !strings.Contains(e.String(), "in use by another palleto run") || strings.Count(strings.TrimSpace(e.String()), "\n") != 0 {
			t.Fatalf("second run: exit %d, %q; want 2 and one line saying the directory is in use", code, e.String())
		}
		cancel()
		if c := <-first; c != 0 {
			t.Fatalf("first run: exit %d: %s", c, firstErr.String())
		}
		e.Reset()
		if code := mainCode(t.Context(), []string{"run", "--queue-url", q.URL, "--out", out, "--drain", "--status", "off", "--wait-time", "1s"}, io.Discard, &e); code != 0 {
			t.Fatalf("after the first run ended: exit %d, %s", code, e.String())
		}
	})
}
