// Command workerpool is the worker-pool seed ("Day 8: The beautiful GenStage") built with
// Palleto's packages directly: a queue that accumulates account ids posted to a Dropbox
// webhook, and a few workers that each take one id at a time and "sync" it (here, sleep).
// The seed's pitfall was a queue that forgot the demand of workers that asked while it was
// empty, so that jobs enqueued later sat there; jobs.Queue remembers it, and the log shows
// each job starting the moment it is posted while a worker is idle. The queue is in memory by
// default, or durable with -data DIR (jobs survive a crash, and run again after a restart);
// a job posted while it runs is queued once more, a job posted while waiting is not queued
// twice. The program posts three waves of signed webhook calls to itself, the last while
// jobs of the second are running and waiting, prints the counts, and exits when every job is done; with -serve it keeps listening for
// calls of your own (GET /jobs shows the counts) until interrupted.
//
//	go run ./examples/workerpool
//	go run ./examples/workerpool -data /tmp/pool -workers 2
//	go run ./examples/workerpool -serve -listen 127.0.0.1:8080
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/jobs"
	"github.com/palleto/palleto/webhook"
)

func main() {
	dataDir := flag.String("data", "", "data directory of a durable queue (default: in memory)")
	workers := flag.Int("workers", 3, "workers, each running one job at a time")
	listen := flag.String("listen", "127.0.0.1:0", "address of the webhook")
	secret := flag.String("secret", "example-secret", "app secret that signs webhook calls")
	work := flag.Duration("work", 500*time.Millisecond, "how long a job takes")
	serve := flag.Bool("serve", false, "keep serving after the demo, until interrupted")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				a.Value = slog.StringValue(a.Value.Time().Format("15:04:05.000"))
			}
			return a
		},
	}))
	if err := run(log, *dataDir, *workers, *listen, *secret, *work, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "workerpool:", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger, dataDir string, workers int, listen, secret string, work time.Duration, serve bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	q, err := jobs.Open(jobs.Config{Dir: dataDir, Memory: dataDir == "", Logger: log})
	if err != nil {
		return err
	}
	defer q.Close()

	// The queue is the producer; the workers are one sink stage with MaxDemand 1, the seed's
	// `subscribe_to: [{Q, max_demand: 1}]`.
	p := flow.New(flow.Config{GracePeriod: 5 * time.Second, Observer: flow.LogObserver(log)})
	flow.Sink(flow.From(p, "queue", q, flow.SourceOptions{}), "worker", func(ctx context.Context, j jobs.Job) error {
		log.Info("processing", "account", j.ID, "attempt", j.Attempt)
		select { // do some heavy lifting
		case <-time.After(work):
			return nil
		case <-ctx.Done():
			return ctx.Err() // shutting down: the job stays queued
		}
	}, flow.Options{Concurrency: workers, MaxDemand: 1})

	wh, err := webhook.New(webhook.Config{
		Secret:  []byte(secret),
		Enqueue: func(ctx context.Context, ids []string) error { return q.Enqueue(ctx, ids...) },
		Logger:  log,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/webhook", wh)
	mux.HandleFunc("GET /jobs", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(q.Counts())
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	log.Info("listening", "webhook", url+"/webhook", "jobs", url+"/jobs", "workers", workers)

	runCtx, stopRun := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- p.Run(runCtx) }()

	err = demo(ctx, log, q, url, secret)
	if err == nil && serve {
		<-ctx.Done()
	}
	// Stop accepting, then let the running jobs finish (within the grace period).
	wh.Stop()
	stopRun()
	if rerr := <-ran; err == nil {
		err = rerr
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(shut)
	<-served
	c := q.Counts()
	log.Info("stopped", "queued", c.Queued, "done", c.Done, "failed", c.Failed, "dead", c.Dead)
	return err
}

// demo posts three waves of notifications, the last one naming accounts that are already
// waiting or running, and waits until the queue is empty.
func demo(ctx context.Context, log *slog.Logger, q *jobs.Queue, url, secret string) error {
	waves := []struct {
		after time.Duration
		ids   []string
	}{
		{0, []string{"dbid:1", "dbid:2"}},
		{time.Second, []string{"dbid:3", "dbid:4", "dbid:5", "dbid:6"}},
		// While 3, 4 and 5 run and 6 waits: 5 is queued again, 6 not twice, 1 afresh.
		{200 * time.Millisecond, []string{"dbid:5", "dbid:6", "dbid:1"}},
	}
	for _, w := range waves {
		select {
		case <-time.After(w.after):
		case <-ctx.Done():
			return nil
		}
		ids := w.ids
		if err := post(ctx, url, secret, ids); err != nil {
			return err
		}
		c := q.Counts()
		log.Info("posted", "accounts", ids, "queued", c.Queued, "running", c.Running, "done", c.Done)
	}
	for {
		c := q.Counts()
		if c.Queued == 0 && c.Running == 0 {
			log.Info("all jobs done", "done", c.Done)
			return nil
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return nil
		}
	}
}

// post makes a webhook call as Dropbox would: a JSON body signed with the app secret.
func post(ctx context.Context, url, secret string, ids []string) error {
	body, err := json.Marshal(map[string]any{"list_folder": map[string]any{"accounts": ids}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/webhook", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(secret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
