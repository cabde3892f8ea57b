package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/palleto/palleto/output"
)

// loopConfig is what the baseline needs. SQS and S3 are the endpoints (the
// proxies in the benchmark).
type loopConfig struct {
	SQS, S3  string
	QueueURL string
	Out      string
	N        int // stop once this many messages are done
	Workers  int
	Wait     time.Duration // long-poll wait
}

func loopCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loop", flag.ContinueOnError)
	var c loopConfig
	fs.StringVar(&c.QueueURL, "queue-url", "", "queue")
	fs.StringVar(&c.Out, "out", "./out", "result directory")
	fs.IntVar(&c.N, "n", 1000, "messages to process")
	fs.IntVar(&c.Workers, "workers", 8, "goroutines")
	fs.DurationVar(&c.Wait, "wait", time.Second, "long-poll wait")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.SQS = os.Getenv("AWS_ENDPOINT_URL_SQS")
	c.S3 = os.Getenv("AWS_ENDPOINT_URL_S3")
	if c.SQS == "" || c.S3 == "" {
		return errors.New("set AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_S3")
	}
	return runLoop(ctx, c)
}

// runLoop is the baseline: what a Go developer writes in an afternoon. Each
// worker receives up to 10 messages, and for each one downloads the object,
// decompresses and counts it, and writes its result file (temporary file,
// rename); then it deletes the 10 with one DeleteMessageBatch.
func runLoop(ctx context.Context, c loopConfig) error {
	sqsc := awssqs.NewFromConfig(awsConfig(c.SQS))
	s3c := s3Client(c.S3)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range c.Workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				out, err := sqsc.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{
					QueueUrl:            aws.String(c.QueueURL),
					MaxNumberOfMessages: 10,
					WaitTimeSeconds:     int32(c.Wait / time.Second),
				})
				if err != nil {
					if ctx.Err() == nil {
						cancel(fmt.Errorf("receive: %w", err))
					}
					return
				}
				var entries []types.DeleteMessageBatchRequestEntry
				for i, m := range out.Messages {
					if err := handle(context.WithoutCancel(ctx), s3c, c.Out, aws.ToString(m.Body)); err != nil {
						cancel(err)
						return
					}
					entries = append(entries, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
				}
				if len(entries) == 0 {
					continue
				}
				d, err := sqsc.DeleteMessageBatch(context.WithoutCancel(ctx), &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(c.QueueURL), Entries: entries})
				if err == nil && len(d.Failed) > 0 {
					err = fmt.Errorf("%d entries failed", len(d.Failed))
				}
				if err != nil {
					cancel(fmt.Errorf("delete: %w", err))
					return
				}
				if done.Add(int64(len(entries))) >= int64(c.N) {
					cancel(nil)
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if n := done.Load(); n < int64(c.N) {
		return fmt.Errorf("stopped after %d of %d messages", n, c.N)
	}
	return nil
}

type event struct {
	Records []struct {
		S3 struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object struct {
				Key       string `json:"key"`
				ETag      string `json:"eTag"`
				Sequencer string `json:"sequencer"`
			} `json:"object"`
		} `json:"s3"`
	}
}

func handle(ctx context.Context, s3c *s3.Client, out, body string) error {
	var ev event
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return err
	}
	for _, r := range ev.Records {
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			return err
		}
		bucket := r.S3.Bucket.Name
		obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			return fmt.Errorf("get %s: %w", key, err)
		}
		zr, err := gzip.NewReader(obj.Body)
		if err != nil {
			obj.Body.Close()
			return err
		}
		var lines, n int64
		buf := make([]byte, 32<<10)
		for {
			k, err := zr.Read(buf)
			n += int64(k)
			lines += int64(bytes.Count(buf[:k], []byte{'\n'}))
			if err == io.EOF {
				break
			}
			if err != nil {
				obj.Body.Close()
				return err
			}
		}
		obj.Body.Close()
		res, _ := json.Marshal(output.Result{
			Bucket: bucket, Key: key, ETag: aws.ToString(obj.ETag), Size: aws.ToInt64(obj.ContentLength),
			Bytes: n, Lines: lines, Encoding: "gzip", Sequencer: r.S3.Object.Sequencer, ProcessedAt: time.Now().UTC(),
		})
		path := filepath.Join(out, output.RelPath(bucket, key))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, res, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return nil
}
