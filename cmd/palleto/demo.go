package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/local"
	"github.com/palleto/palleto/output"
	"github.com/palleto/palleto/s3event"
)

func init() { commands["demo"] = demoCmd }

//go:embed demodata/archive.log.bz2
var demoBzip2 []byte

const demoBzip2Lines = 1500

const (
	demoBucket = "palleto-demo"
	demoQueue  = "palleto-demo"
)

// demoObject is one object the demo uploads, and what its result must say.
type demoObject struct {
	key      string
	body     []byte
	encoding string
	lines    int64 // -1: corrupt, no result expected
}

func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	out := fs.String("out", "./demo-out", "directory for the result files")
	n := fs.Int("objects", 36, "number of generated objects to upload (besides the special ones)")
	logLevel := fs.String("log-level", "warn", "log level: debug, info, warn, error")
	backend := fs.String("backend", "local", "where SQS and S3 run: local (embedded, in this process) or moto (moto_server, which must be on PATH)")
	if err := parse(fs, args, os.Getenv); err != nil {
		return err
	}
	level, err := parseLevel(*logLevel)
	if err != nil {
		return usagef("--log-level: %v", err)
	}
	if *n < 0 || *n > 10000 {
		return usagef("--objects %d: want 0 to 10000", *n)
	}
	if *backend != "local" && *backend != "moto" {
		return usagef("--backend %q: want local or moto", *backend)
	}
	status := &app.StatusLine{W: stderr, Terminal: isTerminal(stderr)}
	logger := slog.New(slog.NewTextHandler(status.Logs(), &slog.HandlerOptions{Level: level}))
	began := time.Now()

	srv, err := startDemoBackend(ctx, *backend, stdout)
	if err != nil {
		return err
	}
	defer srv.stop()
	s3c, sqsc := srv.s3, srv.sqs

	queue, err := moto.CreateQueue(ctx, sqsc, demoQueue, moto.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceiveCount: 2})
	if err != nil {
		return fmt.Errorf("create queue: %w", err)
	}
	if err := moto.CreateBucket(ctx, s3c, demoBucket); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	if err := moto.NotifyQueue(ctx, s3c, sqsc, demoBucket, queue); err != nil {
		return fmt.Errorf("bucket notifications: %w", err)
	}
	fmt.Fprintf(stdout, "Created bucket %s, queue %s (dead-letter queue %s after 2 receives), S3 → SQS notifications.\n",
		demoBucket, queue.Name, queue.DeadLetter.Name)

	objects, err := demoObjects(*n)
	if err != nil {
		return err
	}
	for _, o := range objects {
		if _, err := moto.PutObject(ctx, s3c, demoBucket, o.key, o.body); err != nil {
			return fmt.Errorf("upload %q: %w", o.key, err)
		}
	}
	fmt.Fprintf(stdout, "Uploaded %d objects (gzip, zstd, bzip2, plain, awkward keys, one corrupt file).\n\n", len(objects))

	fmt.Fprintf(stdout, "Running: palleto run --queue-url %s --out %s --drain\n", queue.URL, *out)
	fmt.Fprintln(stdout, "(the corrupt file fails twice before the queue moves it aside: those two warnings are expected)")
	cfg := app.Config{
		QueueURL:   queue.URL,
		Out:        *out,
		Drain:      true,
		Fetchers:   4,
		Processors: 2,
		RetryDelay: time.Second, // a failed message is retried after 1 s, so redrive is quick
		AWS:        ptr(srv.cfg),
		Logger:     logger,
		Status:     status,
	}
	sum, err := app.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)

	w, err := output.NewWriter(*out)
	if err != nil {
		return err
	}
	defer w.Close()
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tENCODING\tSIZE\tBYTES\tLINES\tCHECK")
	bad := 0
	for _, o := range objects {
		if o.lines < 0 {
			continue
		}
		r, err := output.Read(w.Path(demoBucket, o.key))
		check := "ok"
		switch {
		case err != nil:
			check, bad = "MISSING", bad+1
		case r.Lines != o.lines || r.Encoding != o.encoding:
			check, bad = fmt.Sprintf("WRONG (want %d lines, %s)", o.lines, o.encoding), bad+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\n", o.key, r.Encoding, r.Size, r.Bytes, r.Lines, check)
	}
	tw.Flush()

	dead, err := deadLetters(ctx, sqsc, queue.DeadLetter.URL)
	if err != nil {
		return fmt.Errorf("read the dead-letter queue: %w", err)
	}
	fmt.Fprintf(stdout, "\nDead-letter queue %s holds %d message(s):\n", queue.DeadLetter.Name, len(dead))
	for _, k := range dead {
		fmt.Fprintf(stdout, "  %s  (corrupt: failed twice, then moved by the queue's redrive policy)\n", k)
	}
	fmt.Fprintf(stdout, "\n%s\nResults are in %s (one JSON file per object). Took %s.\n",
		sum, *out, time.Since(began).Round(100*time.Millisecond))
	if bad > 0 {
		return fmt.Errorf("%d results missing or wrong", bad)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// demoBackend is where the demo's SQS and S3 run.
type demoBackend struct {
	cfg  aws.Config
	s3   *awss3.Client
	sqs  *awssqs.Client
	stop func() error
}

func startDemoBackend(ctx context.Context, name string, stdout io.Writer) (demoBackend, error) {
	if name == "moto" {
		fmt.Fprintln(stdout, "Starting moto_server (a local stand-in for S3 and SQS)…")
		srv, err := moto.Start(ctx, io.Discard)
		if err != nil {
			if errors.Is(err, moto.ErrNotInstalled) {
				return demoBackend{}, fmt.Errorf("--backend moto needs moto_server: %w", err)
			}
			return demoBackend{}, err
		}
		return demoBackend{srv.AWSConfig(), srv.S3(), srv.SQS(), srv.Stop}, nil
	}
	srv, err := local.Start(ctx, local.Options{})
	if err != nil {
		return demoBackend{}, err
	}
	fmt.Fprintf(stdout, "Started the embedded SQS and S3 at %s.\n", srv.Endpoint())
	return demoBackend{srv.AWSConfig(), srv.S3Client(), srv.SQSClient(), srv.Close}, nil
}

// demoObjects generates the demo's objects: n log files in several encodings, plus the
// special cases.
func demoObjects(n int) ([]demoObject, error) {
	var objs []demoObject
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		return nil, err
	}
	defer zw.Close()
	for i := range n {
		lines := int64(200 + 97*i)
		var b strings.Builder
		for l := range lines {
			fmt.Fprintf(&b, "2024-03-%02dT%02d:%02d:00Z host-%d GET /api/items/%d 200 %dms\n", i%28+1, l%24, l%60, i%5, l, l%300)
		}
		plain := []byte(b.String())
		switch i % 3 {
		case 0:
			var buf bytes.Buffer
			gw := gzip.NewWriter(&buf)
			gw.Write(plain)
			gw.Close()
			objs = append(objs, demoObject{fmt.Sprintf("logs/2024/03/app-%02d.log.gz", i), buf.Bytes(), "gzip", lines})
		case 1:
			objs = append(objs, demoObject{fmt.Sprintf("metrics/2024/03/app-%02d.log.zst", i), zw.EncodeAll(plain, nil), "zstd", lines})
		default:
			objs = append(objs, demoObject{fmt.Sprintf("raw/app-%02d.log", i), plain, "none", lines})
		}
	}
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	gw.Write([]byte("dès la première ligne\nzweite Zeile\n第三行\n"))
	gw.Close()
	objs = append(objs,
		demoObject{"archive/2024/archive.log.bz2", demoBzip2, "bzip2", demoBzip2Lines},
		demoObject{"with spaces/ünïcødé + plus %25 file.log.gz", buf.Bytes(), "gzip", 3},
		demoObject{"misnamed/actually-plain.gz", []byte("no compression here\nsecond line"), "none", 1},
		demoObject{"corrupt/broken.log.gz", corruptGzip(), "gzip", -1},
	)
	return objs, nil
}

// corruptGzip is a gzip stream cut off in the middle, as an interrupted upload leaves it.
func corruptGzip() []byte {
	var buf bytes.Buffer
	gw := gzip.NewWriter(&buf)
	for i := range 5000 {
		fmt.Fprintf(gw, "line %d of a file that will be cut short\n", i)
	}
	gw.Close()
	return buf.Bytes()[:buf.Len()/2]
}

// deadLetters lists the object keys named by the messages in the dead-letter queue.
func deadLetters(ctx context.Context, c *awssqs.Client, url string) ([]string, error) {
	out, err := c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
		QueueUrl: &url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 30,
	})
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, m := range out.Messages {
		n, err := s3event.Parse([]byte(aws.ToString(m.Body)))
		if err != nil {
			keys = append(keys, "(unparsable message "+aws.ToString(m.MessageId)+")")
			continue
		}
		for _, o := range n.Objects {
			keys = append(keys, "s3://"+o.Bucket+"/"+o.Key)
		}
	}
	return keys, nil
}
