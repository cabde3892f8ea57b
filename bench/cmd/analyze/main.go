// Command analyze measures package object on local files, for
// bench/analyze.sh.
//
//	analyze gen [-size BYTES]   write log-like lines to stdout; print "bytes lines" to stderr
//	analyze FILE                analyse FILE as if it were an S3 object
//
// FILE is read through object.Analyze with a Getter that serves it from
// disk, so the whole path (body, sniffing, decompression, counting) runs as
// it does for S3, minus the network. The report ends with the peak resident
// memory of the process (VmHWM), to show that it does not grow with FILE.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/palleto/palleto/object"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "analyze:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) > 0 && args[0] == "gen" {
		fs := flag.NewFlagSet("gen", flag.ContinueOnError)
		size := fs.String("size", "512M", "bytes to write (K, M, G suffixes: powers of 1024)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		n, err := parseSize(*size)
		if err != nil {
			return err
		}
		return gen(n)
	}
	if len(args) != 1 {
		return errors.New("usage: analyze gen [-size BYTES] | analyze FILE")
	}
	return analyze(args[0])
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// gen writes web-access-log lines until at least size bytes: timestamps
// that grow, addresses, a few paths and agents, request ids that do not
// compress. gzip -6 shrinks them about 4 times, like real access logs with
// request ids.
func gen(size int64) error {
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	paths := []string{"/api/v1/users", "/api/v1/orders", "/static/app.js", "/healthz", "/api/v2/search", "/login", "/images/logo.png"}
	methods := []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	statuses := []int{200, 200, 200, 201, 304, 404, 500}
	agents := []string{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "curl/8.5.0", "Go-http-client/2.0", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Safari/605.1.15"}
	var n, lines int64
	buf := make([]byte, 0, 512)
	t := int64(1700000000)
	for n < size {
		t += int64(r.IntN(3))
		buf = fmt.Appendf(buf[:0], "%d 10.%d.%d.%d %s %s?id=%d %d %dms %q req=%016x\n",
			t, r.IntN(256), r.IntN(256), r.IntN(256), methods[r.IntN(len(methods))], paths[r.IntN(len(paths))],
			r.IntN(100000), statuses[r.IntN(len(statuses))], r.IntN(2000), agents[r.IntN(len(agents))], r.Uint64())
		if _, err := w.Write(buf); err != nil {
			return err
		}
		n += int64(len(buf))
		lines++
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, n, lines)
	return nil
}

// fileGetter serves one local file as an S3 object.
type fileGetter struct{ path string }

func (g fileGetter) GetObject(ctx context.Context, in *s3.GetObjectInput, _ ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	f, err := os.Open(g.path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &s3.GetObjectOutput{
		Body:          f,
		ContentLength: aws.Int64(fi.Size()),
		ETag:          aws.String(fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano())),
	}, nil
}

func analyze(path string) error {
	start := time.Now()
	info, st, err := object.Analyze(context.Background(), fileGetter{path}, "local", path, "")
	if err != nil {
		return err
	}
	d := time.Since(start)
	fmt.Printf("encoding=%s size=%d bytes=%d lines=%d seconds=%.3f MiB/s=%.1f peak_rss_kib=%s\n",
		st.Encoding, info.Size, st.Bytes, st.Lines, d.Seconds(), float64(st.Bytes)/d.Seconds()/(1<<20), peakRSS())
	return nil
}

// peakRSS reads the process's high-water resident set size (Linux).
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strings.TrimSuffix(strings.TrimSpace(v), " kB")
		}
	}
	return "unknown"
}
