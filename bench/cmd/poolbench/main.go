// Command poolbench measures the worker pool of palleto serve (app.Serve) in one process:
// webhook calls per second with many connections at once, and the latency from a webhook
// call to the start of its job with idle workers. Each figure comes with a baseline from the
// same run: the same HTTP server and webhook handler (signature check, JSON parsing) with an
// Enqueue that does nothing.
//
//	go run ./bench/cmd/poolbench -calls 20000 -conns 64 -samples 2000
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palleto/palleto/app"
	"github.com/palleto/palleto/jobs"
	"github.com/palleto/palleto/webhook"
)

const secret = "bench-secret"

func main() {
	calls := flag.Int("calls", 20000, "webhook calls in the throughput test")
	conns := flag.Int("conns", 64, "connections at once in the throughput test")
	samples := flag.Int("samples", 2000, "webhook calls in the latency test, one at a time")
	workers := flag.Int("workers", 4, "workers of the pool")
	flag.Parse()

	fmt.Printf("%-10s %12s %10s %10s %10s %12s %12s\n", "queue", "calls/s", "post p50", "post p90", "post p99", "→start p50", "→start p99")
	for _, mode := range []string{"baseline", "memory", "durable"} {
		t, err := newTarget(mode, *workers)
		if err != nil {
			log.Fatal(err)
		}
		rps := throughput(t, *calls, *conns)
		t.drain(*calls)
		post, start := latency(t, *samples)
		t.close()
		if mode == "baseline" {
			fmt.Printf("%-10s %12.0f %10v %10v %10v %12s %12s\n", mode, rps, pct(post, 50), pct(post, 90), pct(post, 99), "-", "-")
			continue
		}
		fmt.Printf("%-10s %12.0f %10v %10v %10v %12v %12v\n", mode, rps, pct(post, 50), pct(post, 90), pct(post, 99), pct(start, 50), pct(start, 99))
	}
}

// target is a server under test and the channel its jobs report their start on.
type target struct {
	url     string
	started chan time.Time // nil for the baseline: no jobs
	close   func()
	done    atomic.Int64
}

func newTarget(mode string, workers int) (*target, error) {
	t := &target{}
	if mode == "baseline" {
		wh, err := webhook.New(webhook.Config{Secret: []byte(secret), Enqueue: func(context.Context, []string) error { return nil }})
		if err != nil {
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle("/webhook", wh)
		srv := &http.Server{Handler: mux}
		go srv.Serve(ln)
		t.url = "http://" + ln.Addr().String()
		t.close = func() { srv.Close() }
		return t, nil
	}
	dir, err := os.MkdirTemp("", "poolbench-")
	if err != nil {
		return nil, err
	}
	t.started = make(chan time.Time, 1)
	addr := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- app.Serve(ctx, app.ServeConfig{
			Listen: "127.0.0.1:0", WebhookSecret: secret, Workers: workers,
			Memory: mode == "memory", DataDir: dir,
			Logger: slog.New(slog.DiscardHandler),
			Ready:  func(a string) { addr <- a },
			Handler: func(ctx context.Context, j jobs.Job) error {
				if j.ID[0] == 'l' { // a latency sample
					t.started <- time.Now()
				}
				t.done.Add(1)
				return nil
			},
		})
	}()
	select {
	case a := <-addr:
		t.url = "http://" + a
	case err := <-served:
		cancel()
		return nil, err
	}
	t.close = func() {
		cancel()
		if err := <-served; err != nil {
			log.Print(err)
		}
		os.RemoveAll(dir)
	}
	return t, nil
}

// drain waits until the throughput test's jobs have run, so that the latency test finds the
// workers idle.
func (t *target) drain(n int) {
	if t.started == nil {
		return
	}
	for t.done.Load() < int64(n) {
		time.Sleep(10 * time.Millisecond)
	}
}

func post(c *http.Client, url, id string) error {
	body, _ := json.Marshal(map[string]any{"list_folder": map[string]any{"accounts": []string{id}}})
	req, err := http.NewRequest(http.MethodPost, url+"/webhook", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(secret), body))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// throughput posts calls notifications, one new id each, over conns connections at once, and
// returns the calls per second. Every call must be answered 200.
func throughput(t *target, calls, conns int) float64 {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	defer c.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for range conns {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(calls) {
					return
				}
				if err := post(c, t.url, fmt.Sprint("t", i)); err != nil {
					log.Fatal(err)
				}
			}
		})
	}
	wg.Wait()
	return float64(calls) / time.Since(began).Seconds()
}

// latency posts one notification at a time and measures the call's round trip and, with a
// pool, the time from sending the call to its job's start.
func latency(t *target, samples int) (post_, start []time.Duration) {
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	for i := range samples {
		sent := time.Now()
		if err := post(c, t.url, fmt.Sprint("l", i)); err != nil {
			log.Fatal(err)
		}
		post_ = append(post_, time.Since(sent))
		if t.started != nil {
			began := <-t.started
			start = append(start, began.Sub(sent))
		}
	}
	return post_, start
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100].Round(time.Microsecond)
}
