package moto_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.uber.org/goleak"

	"github.com/palleto/palleto/internal/moto"
)

func TestMain(m *testing.M) {
	if os.Getenv("MOTO_TEST_CHILD") == "1" {
		child()
		return
	}
	goleak.VerifyTestMain(moto.SharedMain(m))
}

// child starts a server, prints its pid and waits to be killed: the parent
// test kills it to see that the server goes too.
func child() {
	s, err := moto.Start(context.Background(), nil)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(s.PID())
	select {}
}

func TestStartStop(t *testing.T) {
	moto.SkipIfMissing(t)
	var log bytes.Buffer
	s, err := moto.Start(t.Context(), &log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL = %q, want http://127.0.0.1:PORT", s.URL())
	}
	resp, err := http.Get(s.URL() + "/moto-api/data.json")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /moto-api/data.json: %s", resp.Status)
	}
	pid := s.PID()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Stop = %v, want ESRCH", pid, err)
	}
	if _, err := http.Get(s.URL()); err == nil {
		t.Error("server still answers after Stop")
	}
	if !strings.Contains(s.Output(), "Running on") {
		t.Errorf("Output() lacks the startup line:\n%s", s.Output())
	}
	// Stop has waited for the output to be copied: log is ours to read.
	if !strings.Contains(log.String(), "GET /moto-api/data.json") {
		t.Errorf("log lacks the request line:\n%s", log.String())
	}
}

func TestStartNotInstalled(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := moto.Start(t.Context(), nil)
	if !errors.Is(err, moto.ErrNotInstalled) {
		t.Fatalf("Start with empty PATH: %v, want ErrNotInstalled", err)
	}
}

func TestStartExited(t *testing.T) {
	// A fake moto_server that fails at once stands for one that cannot bind
	// its port: Start must retry and then report the early exit.
	dir := t.TempDir()
	script := "#!/bin/sh\necho attempt >> " + dir + "/attempts\necho 'Address already in use' >&2\nexit 1\n"
	if err := os.WriteFile(dir+"/moto_server", []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	_, err := moto.Start(t.Context(), nil)
	if !errors.Is(err, moto.ErrExited) {
		t.Fatalf("Start = %v, want ErrExited", err)
	}
	b, err := os.ReadFile(dir + "/attempts")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "attempt"); n != 3 {
		t.Errorf("moto_server started %d times, want 3", n)
	}
}

func TestStartCanceled(t *testing.T) {
	// A fake moto_server that never announces itself: Start must give up when
	// ctx ends and leave no process behind.
	dir := t.TempDir()
	// /bin/sleep, not sleep: the README's test command may run with Go alone on the PATH.
	script := "#!/bin/sh\necho $$ > " + dir + "/pid\nexec /bin/sleep 60\n"
	if err := os.WriteFile(dir+"/moto_server", []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := moto.Start(ctx, nil)
		errc <- err
	}()
	pid := waitFile(t, dir+"/pid")
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Start = %v, want context.Canceled", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after canceled Start = %v, want ESRCH", pid, err)
	}
}

func TestServerDiesWithParent(t *testing.T) {
	moto.SkipIfMissing(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "MOTO_TEST_CHILD=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child: %q, %v", line, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child: %q", line)
	}
	// SIGKILL leaves the child no chance to clean up: only the kernel's
	// parent-death signal can stop the server.
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("moto_server %d outlived the process that started it", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid is a process that has not exited; a zombie
// waiting for init to reap it has exited.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitFile(t *testing.T, path string) int {
	t.Helper()
	for range 500 {
		b, err := os.ReadFile(path)
		if err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never written", path)
	return 0
}

func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		s, err := moto.Start(b.Context(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartFirstQueue measures what an integration test pays before its
// first queue exists: moto loads each service's backend on first use.
func BenchmarkStartFirstQueue(b *testing.B) {
	for b.Loop() {
		s, err := moto.Start(b.Context(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := moto.CreateQueue(b.Context(), s.SQS(), "q", moto.QueueOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := s.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestShared(t *testing.T) {
	moto.SkipIfMissing(t)
	var first *moto.Server
	for i := range 2 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			s := moto.Shared(t)
			if first == nil {
				first = s
			} else if s != first {
				t.Errorf("second Shared started a new server")
			}
			if _, err := moto.CreateQueue(t.Context(), s.SQS(), fmt.Sprint("shared-", i), moto.QueueOptions{}); err != nil {
				t.Fatal(err)
			}
		})
	}
	out, err := first.SQS().ListQueues(t.Context(), &sqs.ListQueuesInput{QueueNamePrefix: aws.String("shared-")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.QueueUrls) != 2 {
		t.Errorf("queues = %v, want both tests' queues on one server", out.QueueUrls)
	}
}
