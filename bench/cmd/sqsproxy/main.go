// Command sqsproxy puts the round trip to SQS between a benchmark and a local
// SQS stand-in: a fault proxy (package local) that adds a fixed latency to every request and
// watches the traffic, for bench/sqs.sh.
//
//	sqsproxy [-latency 10ms] [-error500 F] [-throttle F] [-target URL | -fauxqs | -local]
//
// -error500 and -throttle answer that fraction of the requests with a 500 InternalFailure or
// a RequestThrottled error instead of forwarding them (the transient faults of bench/sqs.sh's
// fault case).
//
// With -fauxqs it starts fauxqs itself (internal/fauxqs, on 127.0.0.1) and
// stops it on exit; with -local it serves the embedded SQS of package local
// in its own process, on 127.0.0.1. Once ready it prints one JSON line on stdout:
//
//	{"endpoint": "http://127.0.0.1:P", "target": "http://127.0.0.1:Q", "stats": "http://127.0.0.1:R/stats"}
//
// Point AWS_ENDPOINT_URL at endpoint. GET stats returns the requests by
// action and the messages received and not yet deleted (or made visible
// again) since the last POST to stats, with the most there ever were at once;
// POST stats returns the same and starts counting afresh. On SIGINT or
// SIGTERM the last figures go to stderr and the command exits.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/palleto/palleto/internal/fauxqs"
	"github.com/palleto/palleto/local"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sqsproxy:", err)
		os.Exit(1)
	}
}

func run() error {
	latency := flag.Duration("latency", 10*time.Millisecond, "added to every request before it is forwarded")
	target := flag.String("target", "", "base URL of the SQS stand-in")
	start := flag.Bool("fauxqs", false, "start fauxqs on 127.0.0.1 and use it as the target")
	error500 := flag.Float64("error500", 0, "fraction of requests answered 500 InternalFailure")
	throttle := flag.Float64("throttle", 0, "fraction of requests answered RequestThrottled")
	embedded := flag.Bool("local", false, "serve the embedded SQS (package local) on 127.0.0.1 and use it as the target")
	flag.Parse()
	given := 0
	for _, b := range []bool{*target != "", *start, *embedded} {
		if b {
			given++
		}
	}
	if given != 1 {
		return errors.New("give exactly one of -target URL, -fauxqs and -local")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *start {
		srv, err := fauxqs.Start(ctx, os.Stderr)
		if err != nil {
			return err
		}
		defer srv.Stop()
		*target = srv.URL()
	}
	if *embedded {
		srv, err := local.Start(ctx, local.Options{})
		if err != nil {
			return err
		}
		defer srv.Close()
		*target = srv.Endpoint()
	}

	w := newWatcher()
	p, err := local.StartProxy(local.ProxyConfig{
		Target:  *target,
		Faults:  local.Faults{Latency: *latency, Error500: *error500, Throttle: *throttle},
		Observe: w.observe,
	})
	if err != nil {
		return err
	}
	defer p.Close()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, w.snapshot(p, false))
	})
	mux.HandleFunc("POST /stats", func(rw http.ResponseWriter, _ *http.Request) {
		writeJSON(rw, w.snapshot(p, true))
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()

	line, _ := json.Marshal(map[string]string{
		"endpoint": p.URL(),
		"target":   *target,
		"stats":    "http://" + l.Addr().String() + "/stats",
	})
	fmt.Printf("%s\n", line)

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	_ = hs.Close()
	<-served
	final, _ := json.Marshal(w.snapshot(p, false))
	fmt.Fprintf(os.Stderr, "%s\n", final)
	return nil
}

func writeJSON(rw http.ResponseWriter, v any) {
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(v)
}

// Stats is what GET and POST /stats answer.
type Stats struct {
	// Requests counts every request that reached the proxy, by action, aborted ones
	// (a long poll cancelled by its client) included.
	Requests map[string]int64 `json:"requests"`
	// Unacked is the number of messages received and neither deleted nor made visible
	// again; MaxUnacked the most at any moment since the last reset.
	Unacked    int `json:"unacked"`
	MaxUnacked int `json:"max_unacked"`
	// Received counts the messages in ReceiveMessage answers, Deleted the entries that
	// delete answers report as successful.
	Received int64 `json:"received"`
	Deleted  int64 `json:"deleted"`
	// Unparsed counts bodies that the watcher could not read (not AWS JSON 1.0).
	Unparsed int64 `json:"unparsed"`
}

// A watcher follows messages through the proxy's traffic: it sees the receipt
// handle of each message received, and the handles that deletes and visibility
// changes name.
type watcher struct {
	mu         sync.Mutex
	byHandle   map[string]string   // receipt handle → message id
	unacked    map[string]struct{} // message ids
	maxUnacked int
	received   int64
	deleted    int64
	unparsed   int64
}

func newWatcher() *watcher {
	return &watcher{byHandle: map[string]string{}, unacked: map[string]struct{}{}}
}

type receiveAnswer struct {
	Messages []struct {
		MessageId     string
		ReceiptHandle string
	}
}

type batchRequest struct {
	Entries []struct {
		Id                string
		ReceiptHandle     string
		VisibilityTimeout *int
	}
}

type batchAnswer struct {
	Successful []struct{ Id string }
}

type singleRequest struct {
	ReceiptHandle     string
	VisibilityTimeout *int
}

func (w *watcher) observe(action string, req, resp []byte) {
	switch action {
	case "ReceiveMessage":
		var a receiveAnswer
		if json.Unmarshal(resp, &a) != nil {
			w.count(&w.unparsed)
			return
		}
		w.mu.Lock()
		for _, m := range a.Messages {
			w.byHandle[m.ReceiptHandle] = m.MessageId
			w.unacked[m.MessageId] = struct{}{}
		}
		w.received += int64(len(a.Messages))
		w.maxUnacked = max(w.maxUnacked, len(w.unacked))
		w.mu.Unlock()
	case "DeleteMessageBatch", "ChangeMessageVisibilityBatch":
		var r batchRequest
		var a batchAnswer
		if json.Unmarshal(req, &r) != nil || json.Unmarshal(resp, &a) != nil {
			w.count(&w.unparsed)
			return
		}
		ok := map[string]bool{}
		for _, s := range a.Successful {
			ok[s.Id] = true
		}
		w.mu.Lock()
		for _, e := range r.Entries {
			if !ok[e.Id] {
				continue
			}
			// A visibility change to anything but 0 (a heartbeat, a retry delay) keeps the
			// message away from other consumers: it is still held.
			if action == "DeleteMessageBatch" {
				w.deleted++
				w.forgetLocked(e.ReceiptHandle)
			} else if e.VisibilityTimeout != nil && *e.VisibilityTimeout == 0 {
				w.forgetLocked(e.ReceiptHandle)
			}
		}
		w.mu.Unlock()
	case "DeleteMessage", "ChangeMessageVisibility":
		var r singleRequest
		if json.Unmarshal(req, &r) != nil {
			w.count(&w.unparsed)
			return
		}
		w.mu.Lock()
		if action == "DeleteMessage" {
			w.deleted++
			w.forgetLocked(r.ReceiptHandle)
		} else if r.VisibilityTimeout != nil && *r.VisibilityTimeout == 0 {
			w.forgetLocked(r.ReceiptHandle)
		}
		w.mu.Unlock()
	}
}

func (w *watcher) forgetLocked(handle string) {
	if id, ok := w.byHandle[handle]; ok {
		delete(w.byHandle, handle)
		delete(w.unacked, id)
	}
}

func (w *watcher) count(n *int64) {
	w.mu.Lock()
	*n++
	w.mu.Unlock()
}

func (w *watcher) snapshot(p *local.Proxy, reset bool) Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := Stats{
		Requests:   map[string]int64{},
		Unacked:    len(w.unacked),
		MaxUnacked: w.maxUnacked,
		Received:   w.received,
		Deleted:    w.deleted,
		Unparsed:   w.unparsed,
	}
	for action, c := range p.Counts() {
		st.Requests[action] = c.Requests
	}
	if reset {
		p.ResetCounts()
		clear(w.byHandle)
		clear(w.unacked)
		w.maxUnacked, w.received, w.deleted, w.unparsed = 0, 0, 0, 0
	}
	return st
}
