package main

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/internal/sdkhttp"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "localhost": true,
		"": false, "0.0.0.0": false, "::": false, "192.168.1.10": false, "example.com": false,
	} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestLocalUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"local", "--listen", "nope"},
		{"local", "--region", ""},
		{"local", "extra"},
	} {
		code, _, stderr := runMain(t, nil, args...)
		if code != 2 || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line", args, code, stderr)
		}
	}
}

// The standalone server: prints its endpoint and the variables to set, serves SQS and S3 to
// clients configured from them, and stops on SIGTERM with exit status 0.
func TestLocalServesUntilSIGTERM(t *testing.T) {
	cmd := exec.Command(binary(t), "local", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var endpoint string
	for endpoint == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("palleto local ended before it printed AWS_ENDPOINT_URL; stderr: %s", stderr.String())
			}
			if v, found := strings.CutPrefix(strings.TrimSpace(l), "export AWS_ENDPOINT_URL="); found {
				endpoint = v
			}
		case <-time.After(time.Minute):
			t.Fatal("palleto local printed no endpoint within a minute")
		}
	}
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Errorf("endpoint %q", endpoint)
	}
	if stderr.String() != "" {
		t.Errorf("a loopback server warned: %s", stderr.String())
	}

	ctx := context.Background()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: &endpoint, Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	q := awssqs.NewFromConfig(cfg, sdkhttp.OwnSQSBodies)
	out, err := q.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("dev")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String("hi")}); err != nil {
		t.Fatal(err)
	}
	b := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := b.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("dev")}); err != nil {
		t.Fatal(err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
	if !strings.Contains(strings.Join(rest, "\n"), "Stopped") {
		t.Errorf("no word of stopping: %q", rest)
	}
}

// The demo runs to the end on the embedded backend: every result right, the corrupt file in
// the dead-letter queue.
func TestDemoOnTheEmbeddedBackend(t *testing.T) {
	out := t.TempDir()
	code, stdout, stderr := runMain(t, nil, "demo", "--objects", "3", "--out", out)
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"embedded SQS and S3", "holds 1 message(s)", "corrupt/broken.log.gz"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "WRONG") || strings.Contains(stdout, "MISSING") {
		t.Errorf("demo results:\n%s", stdout)
	}
	if code, _, stderr := runMain(t, nil, "demo", "--backend", "localstack"); code != 2 || !strings.Contains(stderr, "--backend") {
		t.Errorf("--backend localstack: exit %d, %q", code, stderr)
	}
}
