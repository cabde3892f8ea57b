// Command sqsdrain measures how fast the sqs source, in a flow pipeline,
// empties an SQS queue, against a hand-written receive-handle-delete loop,
// for bench/sqs.sh.
//
//	sqsdrain -queue-url URL -n N -work D -concurrency K [-mode flow|loop]
//
// processes N messages already in the queue with K handlers, each of which
// sleeps D per message, deletes them, exits, and prints one JSON line:
//
//	{"mode":"flow","n":N,"processed":N,"deleted":N,"seconds":…,"msgs_per_s":…,
//	 "requests":{"ReceiveMessage":…,…},"requests_per_msg":…,"max_unstarted":…,…}
//
// The time runs from the first receive until every processed message is
// deleted. AWS settings come from the environment (AWS_ENDPOINT_URL,
// AWS_REGION, credentials), as for any SDK program.
//
// Modes:
//
//	flow     flow.From(sqs source) → flow.Sink with K workers; stops once N are processed
//	loop     K goroutines, each: ReceiveMessage (10) → handle one by one → DeleteMessageBatch
//	empty    the flow pipeline against a queue that stays empty, for -for; counts receives
//	idle     the flow pipeline takes what is in the queue (-n, may be 0), stops, and the
//	         source, left with no Receive call, is watched for -for; counts its requests
//	seed     only send N messages (-seed without a measure)
//	ceiling  no queue: K goroutines handle N messages, to show what the handlers allow
//
// The flow side's defaults (MaxDemand 20, MinDemand 10, MaxReceives 16,
// MaxBatchRequests 16) are the ones docs/benchmarks.md found to meet the
// goals: handlers that ask for 10 at a time keep receives full, and as many
// batch requests as receives keep deletes from falling behind.
//
// sqsdrain report FILE reads such lines and prints a Markdown table of the
// runs, flow beside loop, and whether the goals of bench/sqs.sh are met.
//
// -queue NAME creates the queue instead of naming it, and -seed sends N
// messages to it before the measure. -stats URL names the /stats endpoint of
// bench/cmd/sqsproxy: it is reset before the measure and read after it, and
// its figures are added to the line under "proxy".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/palleto/palleto/sqs"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sqsdrain:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// options are the command line, parsed.
type options struct {
	mode        string
	queueURL    string
	queueName   string
	seed        bool
	bodySize    int
	n           int
	work        time.Duration
	concurrency int

	// The flow side's knobs.
	maxDemand   int
	minDemand   int
	maxReceives int
	maxBatchReq int
	sourceConc  int
	wait        time.Duration
	flush       time.Duration

	watch      time.Duration // empty and idle modes
	stats      string        // sqsproxy's /stats
	cpuprofile string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("sqsdrain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.mode, "mode", "flow", "flow, loop, empty, idle, seed or ceiling")
	fs.StringVar(&o.queueURL, "queue-url", "", "the queue")
	fs.StringVar(&o.queueName, "queue", "", "create a queue of this name (or reuse it) instead of -queue-url")
	fs.BoolVar(&o.seed, "seed", false, "send N messages to the queue first (not measured)")
	fs.IntVar(&o.bodySize, "body-size", 100, "bytes per seeded message")
	fs.IntVar(&o.n, "n", 1000, "messages to process")
	fs.DurationVar(&o.work, "work", 0, "time each handler spends on a message (a sleep)")
	fs.IntVar(&o.concurrency, "concurrency", 8, "handlers")
	fs.IntVar(&o.maxDemand, "max-demand", 20, "flow: flow.Options.MaxDemand of each handler")
	fs.IntVar(&o.minDemand, "min-demand", 0, "flow: flow.Options.MinDemand (0: half of -max-demand; -1: ask only when all is done)")
	fs.IntVar(&o.maxReceives, "max-receives", 16, "flow: sqs.Config.MaxReceives (0: the source's default)")
	fs.IntVar(&o.maxBatchReq, "max-batch-requests", 16, "flow: sqs.Config.MaxBatchRequests (0: the source's default)")
	fs.IntVar(&o.sourceConc, "source-concurrency", 1, "flow: flow.SourceOptions.Concurrency")
	fs.DurationVar(&o.wait, "wait", 20*time.Second, "ReceiveMessage wait time (long polling), both sides")
	fs.DurationVar(&o.flush, "flush", 0, "flow: sqs.Config.FlushInterval (0: the source's default)")
	fs.DurationVar(&o.watch, "for", 0, "empty and idle modes: how long to watch (0: 60s for empty, 30s for idle)")
	fs.StringVar(&o.stats, "stats", "", "URL of sqsproxy's /stats endpoint")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the measure to this file")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w: %v", errUsage, err)
	}
	bad := func(format string, a ...any) (options, error) {
		return o, fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected argument %q", fs.Arg(0))
	case o.mode != "flow" && o.mode != "loop" && o.mode != "empty" && o.mode != "idle" && o.mode != "seed" && o.mode != "ceiling":
		return bad("-mode %q: want flow, loop, empty, idle, seed or ceiling", o.mode)
	case o.mode != "ceiling" && (o.queueURL == "") == (o.queueName == ""):
		return bad("give exactly one of -queue-url and -queue")
	case o.n < 0 || (o.n == 0 && (o.mode == "flow" || o.mode == "loop" || o.mode == "ceiling")):
		return bad("-n %d: want at least 1", o.n)
	case o.concurrency < 1:
		return bad("-concurrency %d: want at least 1", o.concurrency)
	case o.work < 0:
		return bad("-work %v: negative", o.work)
	case o.maxDemand < 1:
		return bad("-max-demand %d: want at least 1", o.maxDemand)
	case o.minDemand < -1 || o.minDemand >= o.maxDemand:
		return bad("-min-demand %d: want -1 ≤ it < -max-demand", o.minDemand)
	case o.sourceConc < 1:
		return bad("-source-concurrency %d: want at least 1", o.sourceConc)
	case o.bodySize < 1 || o.bodySize > 256<<10:
		return bad("-body-size %d: want 1 to 262144", o.bodySize)
	}
	switch o.minDemand {
	case 0:
		o.minDemand = o.maxDemand / 2
	case -1:
		o.minDemand = 0
	}
	if o.watch == 0 {
		o.watch = 60 * time.Second
		if o.mode == "idle" {
			o.watch = 30 * time.Second
		}
	}
	return o, nil
}

// Result is the line that sqsdrain prints.
type Result struct {
	Mode        string  `json:"mode"`
	N           int     `json:"n"`
	Processed   int64   `json:"processed"`
	Deleted     int64   `json:"deleted"`
	Seconds     float64 `json:"seconds"`
	MsgsPerS    float64 `json:"msgs_per_s"`
	Concurrency int     `json:"concurrency"`
	WorkMS      float64 `json:"work_ms"`

	// Requests made by this process during the measure, by action.
	Requests map[string]int64 `json:"requests"`
	// HandlerMS is the mean time a handler spent on a message (with -work), and Busy the
	// share of the handlers' time (K × seconds) spent handling.
	HandlerMS float64 `json:"handler_ms,omitempty"`
	Busy      float64 `json:"busy,omitempty"`
	// CPUS is the CPU time (user and system) this process spent on the measure.
	CPUS           float64 `json:"cpu_s"`
	RequestsPerMsg float64 `json:"requests_per_msg"`

	// MaxUnstarted is the most messages received and not yet begun by a handler at any
	// moment; for flow, DemandBound is the most the handlers can ask for (K × MaxDemand)
	// and MaxHeld the most the source held without handing them out, counted at every
	// receive and hand-out (an upper bound) and sampled from Stats().Held every
	// millisecond (MaxHeldSampled).
	MaxUnstarted   int64 `json:"max_unstarted"`
	DemandBound    int   `json:"demand_bound,omitempty"`
	MaxHeld        int64 `json:"max_held,omitempty"`
	MaxHeldSampled int   `json:"max_held_sampled,omitempty"`

	// WatchS is how long the empty and idle modes watched; Requests then counts the
	// requests sent meanwhile.
	WatchS float64 `json:"watch_s,omitempty"`

	// The flow side's settings.
	MaxDemand   int     `json:"max_demand,omitempty"`
	MinDemand   int     `json:"min_demand,omitempty"`
	MaxReceives int     `json:"max_receives,omitempty"`
	MaxBatchReq int     `json:"max_batch_requests,omitempty"`
	WaitS       float64 `json:"wait_s"`

	// ReceiveStarts (empty and idle modes) are the moments, in seconds from the start of
	// the watch, at which receives were sent.
	ReceiveStarts []float64 `json:"receive_starts_s,omitempty"`

	Proxy *ProxyStats `json:"proxy,omitempty"`
}

// ProxyStats is the part of sqsproxy's answer that a result keeps.
type ProxyStats struct {
	Requests   map[string]int64 `json:"requests"`
	MaxUnacked int              `json:"max_unacked"`
	Unacked    int              `json:"unacked"`
	Received   int64            `json:"received"`
	Deleted    int64            `json:"deleted"`
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "report" {
		return report(args[1:], stdout)
	}
	o, err := parse(args, os.Stderr)
	if err != nil {
		return err
	}
	if o.mode == "ceiling" {
		c := newCounter(nil)
		res, err := runCeiling(ctx, c, o)
		if err != nil {
			return err
		}
		return finish(res, c, o, stdout)
	}

	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	// A transport of our own, built as the SDK would (custom CA bundles and all), so that
	// its idle connections can be closed on return. The SDK keeps 10 idle connections per
	// host by default; more requests than that in flight would open and close connections
	// all the time, on both sides.
	b, ok := cfg.HTTPClient.(*awshttp.BuildableClient)
	if !ok {
		b = awshttp.NewBuildableClient()
	}
	transport := b.GetTransport()
	transport.MaxIdleConns = 256
	transport.MaxIdleConnsPerHost = 256
	defer transport.CloseIdleConnections()
	cfg.HTTPClient = &http.Client{Transport: transport}
	// As a Source's client is built (sqs.CopyRequestBodies): an answer that a fast endpoint
	// gives before net/http has read the request's body would otherwise be lost and retried,
	// on every side alike.
	client := awssqs.NewFromConfig(cfg, sqs.CopyRequestBodies)

	if o.queueName != "" {
		out, err := client.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: &o.queueName})
		if err != nil {
			return fmt.Errorf("create queue %s: %w", o.queueName, err)
		}
		o.queueURL = *out.QueueUrl
	}
	if (o.seed || o.mode == "seed") && o.n > 0 {
		if err := seed(ctx, client, o.queueURL, o.n, o.bodySize); err != nil {
			return err
		}
	}
	if o.mode == "seed" {
		_, err := fmt.Fprintf(stdout, "{\"mode\":\"seed\",\"n\":%d,\"queue_url\":%q}\n", o.n, o.queueURL)
		return err
	}

	c := newCounter(client)
	proxy := &proxyStats{url: o.stats, client: &http.Client{Transport: &http.Transport{}}}
	defer proxy.client.CloseIdleConnections()
	if err := proxy.reset(ctx); err != nil {
		return err
	}

	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuTime()
	var res Result
	switch o.mode {
	case "flow":
		res, err = runFlow(ctx, c, o)
	case "loop":
		res, err = runLoop(ctx, c, o)
	case "empty":
		res, err = runEmpty(ctx, c, proxy, o)
	case "idle":
		res, err = runIdle(ctx, c, proxy, o)
	}
	if err != nil {
		return err
	}
	res.CPUS = (cpuTime() - cpu0).Seconds()
	if res.Proxy, err = proxy.read(ctx); err != nil {
		return err
	}
	return finish(res, c, o, stdout)
}

// finish fills in what every mode reports and prints the line.
func finish(res Result, c *counter, o options, stdout io.Writer) error {
	res.Mode, res.N, res.Concurrency = o.mode, o.n, o.concurrency
	res.WorkMS = float64(o.work) / float64(time.Millisecond)
	res.WaitS = o.wait.Seconds()
	if o.mode == "flow" || o.mode == "empty" || o.mode == "idle" {
		res.MaxDemand, res.MinDemand, res.MaxReceives, res.MaxBatchReq = o.maxDemand, o.minDemand, o.maxReceives, o.maxBatchReq
	}
	if res.Seconds > 0 && o.mode != "empty" && o.mode != "idle" {
		res.MsgsPerS = float64(res.Processed) / res.Seconds
	}
	if o.work > 0 && res.Processed > 0 && res.Seconds > 0 && o.mode != "idle" && o.mode != "empty" {
		busy := c.busyTime()
		res.HandlerMS = float64(busy) / float64(time.Millisecond) / float64(res.Processed)
		res.Busy = busy.Seconds() / (res.Seconds * float64(o.concurrency))
	}
	if res.Requests == nil && o.mode != "ceiling" {
		res.Requests = c.requests()
	}
	if res.Processed > 0 && (o.mode == "flow" || o.mode == "loop") {
		var total int64
		for _, n := range res.Requests {
			total += n
		}
		res.RequestsPerMsg = float64(total) / float64(res.Processed)
	}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "%s\n", line)
	return err
}

// proxyStats talks to sqsproxy's /stats, if there is one.
type proxyStats struct {
	url    string
	client *http.Client
}

func (p *proxyStats) reset(ctx context.Context) error {
	if p.url == "" {
		return nil
	}
	_, err := p.call(ctx, http.MethodPost)
	return err
}

func (p *proxyStats) read(ctx context.Context) (*ProxyStats, error) {
	if p.url == "" {
		return nil, nil
	}
	return p.call(ctx, http.MethodGet)
}

func (p *proxyStats) call(ctx context.Context, method string) (*ProxyStats, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.url, nil)
	if err != nil {
		return nil, fmt.Errorf("proxy stats: %w", err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("proxy stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("proxy stats: %s", resp.Status)
	}
	var st ProxyStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("proxy stats: %w", err)
	}
	return &st, nil
}

// cpuTime returns the CPU time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
