package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/palleto/palleto/internal/fauxqs"
	"github.com/palleto/palleto/local"
)

// Endpoints is the line backend prints once ready. SQS and S3 go through the
// proxies; the direct ones are for seeding, which is not measured.
type Endpoints struct {
	SQS       string `json:"sqs"`
	S3        string `json:"s3"`
	DirectSQS string `json:"direct_sqs"`
	DirectS3  string `json:"direct_s3"`
	Stats     string `json:"stats"`
}

// backendCmd serves SQS and S3 behind proxies until ctx ends: the project's embedded
// server (package local) by default, or fauxqs and gofakes3 with -backend fauxqs. GET
// stats answers the requests by action since the last POST (which resets).
func backendCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("backend", flag.ContinueOnError)
	latency := fs.Duration("latency", 10*time.Millisecond, "added to every request by the proxies")
	kind := fs.String("backend", "local", "local (the embedded SQS and S3) or fauxqs (fauxqs and gofakes3)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var sqsURL, s3URL string
	switch *kind {
	case "local":
		srv, err := local.Start(ctx, local.Options{})
		if err != nil {
			return err
		}
		defer srv.Close()
		sqsURL, s3URL = srv.Endpoint(), srv.Endpoint()
	case "fauxqs":
		sqsSrv, err := fauxqs.Start(ctx, os.Stderr)
		if err != nil {
			return err
		}
		defer sqsSrv.Stop()
		s3ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s3srv := &http.Server{Handler: gofakes3.New(s3mem.New()).Server(), ReadHeaderTimeout: 10 * time.Second}
		go s3srv.Serve(s3ln)
		defer s3srv.Close()
		sqsURL, s3URL = sqsSrv.URL(), "http://"+s3ln.Addr().String()
	default:
		return fmt.Errorf("-backend %q: want local or fauxqs", *kind)
	}

	faults := local.Faults{Latency: *latency}
	sqsProxy, err := local.StartProxy(local.ProxyConfig{Target: sqsURL, Faults: faults})
	if err != nil {
		return err
	}
	defer sqsProxy.Close()
	s3Proxy, err := local.StartProxy(local.ProxyConfig{Target: s3URL, Faults: faults})
	if err != nil {
		return err
	}
	defer s3Proxy.Close()

	stats := func(reset bool) map[string]int64 {
		m := map[string]int64{}
		for _, p := range []*local.Proxy{sqsProxy, s3Proxy} {
			for action, c := range p.Counts() {
				m[action] += c.Requests
			}
			if reset {
				p.ResetCounts()
			}
		}
		return m
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { json.NewEncoder(w).Encode(stats(false)) })
	mux.HandleFunc("POST /stats", func(w http.ResponseWriter, _ *http.Request) { json.NewEncoder(w).Encode(stats(true)) })
	stln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	stsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go stsrv.Serve(stln)
	defer stsrv.Close()

	line, _ := json.Marshal(Endpoints{
		SQS: sqsProxy.URL(), S3: s3Proxy.URL(), DirectSQS: sqsURL, DirectS3: s3URL,
		Stats: "http://" + stln.Addr().String() + "/stats",
	})
	fmt.Printf("%s\n", line)
	<-ctx.Done()
	return nil
}
