package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/palleto/palleto/output"
)

// object is one generated object: a few KiB of gzip, between 40 and 119 lines.
type object struct {
	key   string
	body  []byte // gzip
	plain int64  // decompressed size
	lines int64
	etag  string
}

// genObject returns object i; the same i always gives the same object.
func genObject(i int) object {
	rnd := rand.New(rand.NewPCG(uint64(i), 0x5eed))
	lines := int64(40 + i%80)
	var raw bytes.Buffer
	for l := range lines {
		fmt.Fprintf(&raw, "2026-03-%02dT%02d:%02d:%02dZ host-%d GET /api/items/%x 200 %dms\n",
			i%28+1, l%24, l%60, rnd.IntN(60), rnd.IntN(8), rnd.Uint64(), rnd.IntN(900))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	sum := md5.Sum(gz.Bytes())
	return object{
		key:   fmt.Sprintf("logs/%02d/app-%05d.log.gz", i%16, i),
		body:  gz.Bytes(),
		plain: int64(raw.Len()),
		lines: lines,
		etag:  hex.EncodeToString(sum[:]),
	}
}

func awsConfig(endpoint string) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}

func s3Client(endpoint string) *s3.Client {
	return s3.NewFromConfig(awsConfig(endpoint), func(o *s3.Options) { o.UsePathStyle = true })
}

// parallel runs fn(i) for i in [0, n) on 8 goroutines and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
		ferr error
	)
	for range 8 {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := ferr != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					ferr = err
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return ferr
}

func objectsCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("objects", flag.ContinueOnError)
	endpoint := fs.String("s3", "", "S3 endpoint")
	bucket := fs.String("bucket", "bench", "bucket to create")
	n := fs.Int("n", 1000, "objects")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := s3Client(*endpoint)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: bucket}); err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	return parallel(*n, func(i int) error {
		o := genObject(i)
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String(o.key), Body: bytes.NewReader(o.body)})
		if err != nil {
			return fmt.Errorf("put %s: %w", o.key, err)
		}
		return nil
	})
}

// notification is the body S3 sends for object i.
func notification(bucket string, i int) string {
	o := genObject(i)
	type m = map[string]any
	b, _ := json.Marshal(m{"Records": []m{{
		"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
		"eventTime": "2026-03-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
		"s3": m{
			"s3SchemaVersion": "1.0",
			"bucket":          m{"name": bucket, "arn": "arn:aws:s3:::" + bucket},
			"object":          m{"key": o.key, "size": len(o.body), "eTag": o.etag, "sequencer": fmt.Sprintf("%016X", i+1)},
		},
	}}})
	return string(b)
}

func notifyCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("notify", flag.ContinueOnError)
	endpoint := fs.String("sqs", "", "SQS endpoint")
	queue := fs.String("queue", "", "queue to create")
	bucket := fs.String("bucket", "bench", "bucket the objects are in")
	n := fs.Int("n", 1000, "objects")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := awssqs.NewFromConfig(awsConfig(*endpoint))
	q, err := c.CreateQueue(ctx, &awssqs.CreateQueueInput{
		QueueName:  queue,
		Attributes: map[string]string{"VisibilityTimeout": "30"},
	})
	if err != nil {
		return fmt.Errorf("create queue: %w", err)
	}
	err = parallel((*n+9)/10, func(b int) error {
		var entries []types.SendMessageBatchRequestEntry
		for i := b * 10; i < min(*n, b*10+10); i++ {
			entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(notification(*bucket, i))})
		}
		out, err := c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: entries})
		if err == nil && len(out.Failed) > 0 {
			err = fmt.Errorf("%d entries failed", len(out.Failed))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	fmt.Println(aws.ToString(q.QueueUrl))
	return nil
}

// resultTimes is when the first and the last result files of a run were written (their
// modification times).
type resultTimes struct{ first, last time.Time }

// check compares the result file of each of the n objects with what it must say, and
// returns when the first and the last of them were written.
func check(out, bucket string, n int) (resultTimes, error) {
	bad := 0
	var first string
	var times resultTimes
	for i := range n {
		o := genObject(i)
		path := filepath.Join(out, output.RelPath(bucket, o.key))
		r, err := output.Read(path)
		var info os.FileInfo
		if err == nil {
			info, err = os.Stat(path)
		}
		var why string
		switch {
		case err != nil:
			why = err.Error()
		case r.Bucket != bucket || r.Key != o.key:
			why = fmt.Sprintf("%s: holds s3://%s/%s", o.key, r.Bucket, r.Key)
		case r.Lines != o.lines || r.Bytes != o.plain || r.Size != int64(len(o.body)) || r.Encoding != "gzip":
			why = fmt.Sprintf("%s: %d lines, %d bytes, size %d, %s; want %d, %d, %d, gzip",
				o.key, r.Lines, r.Bytes, r.Size, r.Encoding, o.lines, o.plain, len(o.body))
		}
		if why != "" {
			if bad == 0 {
				first = why
			}
			bad++
			continue
		}
		if t := info.ModTime(); times.first.IsZero() || t.Before(times.first) {
			times.first = t
		}
		if t := info.ModTime(); t.After(times.last) {
			times.last = t
		}
	}
	if bad > 0 {
		return resultTimes{}, fmt.Errorf("%d of %d results missing or wrong; first: %s", bad, n, first)
	}
	return times, nil
}

func checkCmd(args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	out := fs.String("out", "", "result directory")
	bucket := fs.String("bucket", "bench", "bucket")
	n := fs.Int("n", 1000, "objects")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, err := check(*out, *bucket, *n)
	return err
}
