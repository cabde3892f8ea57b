// Command largeobject runs the Palleto pipeline over one large generated object on a local
// moto_server and reports whether it was counted right, how long it took and the process's
// peak memory. The object's content barely compresses, so the stored object is large too.
//
//	go run ./bench/cmd/largeobject -mib 512
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/gzip"

	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/internal/moto"
	"github.com/palleto/palleto/output"
)

func main() {
	mib := flag.Int("mib", 512, "decompressed size of the object, MiB")
	flag.Parse()
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "palleto-large-")
	check(err)
	defer os.RemoveAll(dir)

	// Generate the object on disk, not in memory, so the peak below is the pipeline's.
	objPath := filepath.Join(dir, "large.log.gz")
	lines, plainBytes := generate(objPath, int64(*mib)<<20)
	st, err := os.Stat(objPath)
	check(err)

	srv, err := moto.Start(ctx, io.Discard)
	check(err)
	defer srv.Stop()
	q, err := moto.CreateQueue(ctx, srv.SQS(), "large", moto.QueueOptions{VisibilityTimeout: 30 * time.Second, MaxReceiveCount: 3})
	check(err)
	check(moto.CreateBucket(ctx, srv.S3(), "large"))
	check(moto.NotifyQueue(ctx, srv.S3(), srv.SQS(), "large", q))
	f, err := os.Open(objPath)
	check(err)
	_, err = srv.S3().PutObject(ctx, &s3.PutObjectInput{Bucket: ptr("large"), Key: ptr("large.log.gz"), Body: f, ContentLength: ptr(st.Size())})
	check(err)
	f.Close()

	out := filepath.Join(dir, "out")
	began := time.Now()
	_, err = app.Run(ctx, app.Config{QueueURL: q.URL, Out: out, Drain: true, WaitTime: time.Second, AWS: ptr(srv.AWSConfig()), SpoolDir: dir})
	check(err)
	secs := time.Since(began).Seconds()
	r, err := output.Read(filepath.Join(out, output.RelPath("large", "large.log.gz")))
	check(err)
	res := map[string]any{
		"content_mib": plainBytes >> 20, "stored_mib": st.Size() >> 20,
		"lines": r.Lines, "lines_ok": r.Lines == lines, "bytes_ok": r.Bytes == plainBytes,
		"seconds": secs, "mib_per_s": float64(plainBytes>>20) / secs, "peak_rss_mib": peakRSS() >> 10,
	}
	json.NewEncoder(os.Stdout).Encode(res)
	if r.Lines != lines || r.Bytes != plainBytes {
		os.Exit(1)
	}
}

// generate writes gzip'd lines of random hex until size bytes of content.
func generate(path string, size int64) (lines, n int64) {
	f, err := os.Create(path)
	check(err)
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	rng := rand.New(rand.NewPCG(7, 11))
	word := make([]byte, 8)
	var line strings.Builder
	for n < size {
		line.Reset()
		for range 8 {
			binary.LittleEndian.PutUint64(word, rng.Uint64())
			line.WriteString(hex.EncodeToString(word))
		}
		line.WriteByte('\n')
		zw.Write([]byte(line.String()))
		n += int64(line.Len())
		lines++
	}
	check(zw.Close())
	check(bw.Flush())
	return lines, n
}

// peakRSS is the process's peak resident memory in KiB (VmHWM).
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(l, "VmHWM:"), "kB")), &kb)
			return kb
		}
	}
	return -1
}

func ptr[T any](v T) *T { return &v }

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
