package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/admin"
	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/internal/durable"
	"github.com/palleto/palleto/metrics"
	"github.com/palleto/palleto/object"
	"github.com/palleto/palleto/output"
	"github.com/palleto/palleto/sqs"
)

// Summary counts what a run did.
type Summary struct {
	Messages int64 // deliveries received (a redelivered message counts again)
	Objects  int64 // result files written or confirmed
	Failed   int64 // failed deliveries (each attempt counts)
	// Distinct counts the distinct messages of a drain run by how their last delivery ended;
	// it is zero for other runs.
	Distinct  Tally
	Elapsed   time.Duration
	ObjPerSec float64
}

// OK tells whether every message a drain run took in the end succeeded (or was put back
// unfinished): what exit status 0 stands for.
func (s Summary) OK() bool { return s.Distinct.Failed() == 0 }

func (s Summary) String() string {
	msgs := fmt.Sprintf("%d deliveries received", s.Messages) // a run that keeps no messages cannot tell them apart
	if d := s.Distinct; d.Total() > 0 {
		msgs = fmt.Sprintf("%d messages (%d succeeded", d.Total(), d.Succeeded)
		if f := d.failures(); f != "" {
			msgs += ", " + f
		}
		if d.Released > 0 {
			msgs += fmt.Sprintf(", %d put back unfinished", d.Released)
		}
		msgs += fmt.Sprintf(") in %d deliveries", s.Messages)
	}
	return fmt.Sprintf("Summary: %s, %d objects processed, %d failures, in %s (%.1f objects/s).",
		msgs, s.Objects, s.Failed, s.Elapsed.Round(time.Millisecond), s.ObjPerSec)
}

// Run runs the Palleto pipeline until ctx is cancelled (then it shuts down gracefully), or
// with Drain until the queue is empty. Problems of configuration, credentials, the queue
// or the endpoint are found before anything is received and returned as *ConfigError.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	cfg.setDefaults()
	sum, err := run(ctx, cfg)
	if err == nil {
		cfg.Logger.Info("run ended", "messages", sum.Messages, "objects", sum.Objects, "failed", sum.Failed, "elapsed", sum.Elapsed)
	}
	return sum, err
}

// closeTimeout bounds the flush of the acknowledgements when a source closes.
const closeTimeout = 30 * time.Second

// run is Run once the configuration is known to be good. Each thing it acquires is released
// by a defer right after it, whichever way the run ends.
func run(ctx context.Context, cfg Config) (sum Summary, err error) {
	log := cfg.Logger
	flag := "admin-listen"
	if cfg.AdminListen == cfg.MetricsListen {
		flag = "metrics-listen" // as the user named it
	}
	adminLn, err := listenAdmin(flag, cfg.AdminListen, cfg.AdminToken)
	if err != nil {
		return Summary{}, err
	}
	if adminLn != nil {
		defer adminLn.Close() // when the run is refused before the server takes it
		if cfg.Metrics == nil {
			cfg.Metrics = prometheus.NewRegistry()
		}
	}

	awsCfg, err := loadAWS(ctx, cfg.AWS, "")
	if err != nil {
		return Summary{}, err
	}
	s3Client := newS3(awsCfg, cfg.RequestTimeout)
	// Every SQS request ends within the long-poll wait plus the request timeout: an endpoint
	// that accepts a connection and never answers is a failure, retried and counted, never a
	// hang.
	oneReceive := max(cfg.WaitTime, 0) + cfg.RequestTimeout
	sqsClient := newSQSClient(awsCfg, oneReceive)
	sqsCfg := cfg.sqsConfig()
	src, err := sqs.New(sqsClient, sqsCfg)
	if err != nil {
		return Summary{}, &ConfigError{"queue-url", err.Error()}
	}
	defer func() {
		if cerr := closeSource(ctx, src, cfg.Abort); cerr != nil {
			err = errors.Join(err, fmt.Errorf("flush acknowledgements: %w", cerr))
		}
	}()
	// The queue's check (the network) and the set-up of --out (the disk) run side by side. A
	// run that either refuses leaves nothing behind: what the set-up made is removed again.
	madeOut := durable.Missing(cfg.Out)
	checked := make(chan error, 1)
	go func() { checked <- checkQueue(ctx, src, cfg.QueueURL, sqsClient.Options().BaseEndpoint, awsCfg, log) }()
	out, err := openOut(cfg)
	if cerr := <-checked; cerr != nil || err != nil {
		if out != nil {
			out.Close()
		}
		for _, d := range madeOut {
			os.Remove(d) // innermost first; a directory that is not empty stays
		}
		if cerr != nil {
			return Summary{}, cerr // the queue's refusal comes first, as it did before the set-up
		}
		return Summary{}, err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing --out: %w", cerr))
		}
	}()
	if uerr := out.Unlocked(); uerr != nil {
		log.Warn("cannot lock the output directory: make sure no other run uses it", "dir", cfg.Out, "err", uerr)
	}
	// Temporary files are left only by a Writer that did not close; where the directory
	// cannot be locked, another run may have been that Writer.
	if out.Unclean() || out.Unlocked() != nil {
		stopSweep := sweep(out, log)
		defer stopSweep()
	}

	runCtx, giveUp := context.WithCancelCause(ctx)
	defer giveUp(nil)
	g := newGate(log, cfg.MaxFaultTime, giveUp)
	g.intake = src
	t := &tally{}
	stageCounts := admin.NewStages(nil)
	observers := []flow.Observer{quietFailures(flow.LogObserver(log)), t, stageCounts}
	var rm *metrics.Run
	if cfg.Metrics != nil {
		obs, err := registerRunMetrics(cfg.Metrics, src, g)
		if err != nil {
			return Summary{}, err
		}
		if rm, err = metrics.NewRun(cfg.Metrics); err != nil {
			return Summary{}, fmt.Errorf("metrics: %w", err)
		}
		observers = append(observers, obs)
	}
	// Read once, beside the run: what a failure's next step is, and which dead-letter queue
	// the dashboard shows.
	redrive := lookUpRedrive(ctx, src, log)
	defer redrive.policy()
	failures := admin.NewFailures(0)
	outcome := func(m *ticket, r flow.Result) {
		switch r.Status {
		case flow.Succeeded:
			if rm != nil && !m.msg.Data.FirstReceivedAt.IsZero() {
				rm.MessageDone(time.Since(m.msg.Data.FirstReceivedAt))
			}
		case flow.Failed:
			f := messageFailure(m, r.Err)
			f.Next = retryNext(m.msg.Data.ReceiveCount, r.Err, sqsCfg.Retry, cfg.DLQURL, redrive.policy())
			failures.Add(f)
			logFailure(log, f)
		}
	}

	// The topology: SQS messages → the objects each names → their content, spooled → the
	// analysis → the result file. The parse workers each ask for one full receive (10
	// messages) once all of their last one has gone on, and the source runs a receive for
	// each, so that receives keep ahead of the downloads; unless --fetchers pins it, the
	// number of downloads in flight is found at run time (tune.go), and the parse workers
	// follow it.
	st := &stages{s3: s3Client, out: out, spoolDir: cfg.SpoolDir, memLimit: cfg.SpoolMem, onMissing: cfg.OnMissing, log: log, maxWork: cfg.MaxWorkTime}
	if rm != nil {
		st.analysed = rm.Analysed
	}
	parse := flow.Options{Concurrency: parseWorkers(cfg.Fetchers), MaxDemand: 10, MinDemand: -1}
	fetch := flow.Options{Concurrency: cfg.Fetchers, MaxDemand: 1}
	fetchFn := st.fetch
	var meter fetchMeter
	if cfg.Fetchers == 0 {
		parse.Concurrency, parse.Limit = parseWorkers(tuneMax), flow.NewLimit(parseWorkers(tuneStart))
		fetch.Concurrency, fetch.Limit = tuneMax, flow.NewLimit(tuneStart)
		fetchFn = meteredFetch(st.fetch, &meter)
		t.fetchers.Store(tuneStart)
	} else {
		t.fetchers.Store(int64(cfg.Fetchers))
	}
	p := flow.New(flow.Config{GracePeriod: cfg.Shutdown, Observer: flow.Observers(observers...)}) // NoWait: no grace, as in flow
	led := newLedger(src, g, cfg.Drain)
	led.outcome = outcome
	t.messages = led.messages
	msgs := flow.From(p, "sqs", led, flow.SourceOptions{Concurrency: parse.Concurrency})
	objects := flow.FlatMap(msgs, "parse", st.parseMessage, parse)
	files := flow.FlatMap(objects, "fetch", fetchFn, fetch)
	results := flow.Map(files, "analyse", st.analyse, flow.Options{Concurrency: cfg.Processors, MaxDemand: 1})
	flow.Sink(results, "write", st.write, flow.Options{Concurrency: writeWorkers, MaxDemand: 1})
	stageCounts.SetTopology(p.Topology())
	if fetch.Limit != nil {
		if cfg.Metrics != nil {
			if err := metrics.RegisterLimit(cfg.Metrics, "fetch", fetch.Limit); err != nil {
				return Summary{}, fmt.Errorf("metrics: %w", err)
			}
		}
		stopTune, tuned := make(chan struct{}), make(chan struct{})
		go tune(&meter, newTuner(), fetch.Limit, parse.Limit, &t.fetchers, stopTune, tuned)
		defer func() { close(stopTune); <-tuned }()
	}

	var h health
	var liveHealth atomic.Pointer[HealthFunc] // the run's, once it has started
	ac := admin.Config{Mode: admin.ModeRun, Title: cfg.QueueURL, Token: cfg.AdminToken, Stages: stageCounts,
		Queue: &adminQueue{src: src, client: sqsClient, url: cfg.QueueURL, dlq: redrive.dlq}, Failures: failures,
		Health: func() (bool, string) {
			if f := liveHealth.Load(); f != nil {
				return (*f)()
			}
			return g.Health()
		}}
	ac.Ready = func() (bool, string) {
		if ok, why := h.ready(); !ok {
			return ok, why
		}
		return ac.Health() // intake paused by a fault of the environment: not ready
	}
	if cfg.Metrics != nil {
		ac.Metrics = metrics.Handler(cfg.Metrics, log)
	}
	stopAdmin := startAdmin(adminLn, ac, cfg.AdminReady, log)
	defer stopAdmin()
	defer h.stopping.Store(true)

	began := time.Now()
	health := HealthFunc(runHealth(g, src, oneReceive, began))
	liveHealth.Store(&health)
	h.started.Store(true)
	stopStatus := cfg.Status.start(t, src, g, began)
	defer stopStatus()
	stopAbort := onClose(cfg.Abort, p.Abort)
	probing := make(chan struct{})
	go func() {
		defer close(probing)
		g.run(runCtx)
	}()
	err = p.Run(runCtx)
	giveUp(nil)
	<-probing
	stopAbort()
	sum = t.summary(time.Since(began))
	sum.Distinct = led.tally()
	if cause := context.Cause(runCtx); err == nil && ctx.Err() == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	return sum, err
}

// sqsConfig is the SQS source's configuration for a run. NoWait keeps its meaning: sqs takes
// a negative WaitTime for short polling, and a retry delay below zero is none.
func (c Config) sqsConfig() sqs.Config {
	return sqs.Config{
		QueueURL:           c.QueueURL,
		WaitTime:           c.WaitTime,
		VisibilityTimeout:  c.Visibility,
		MaxExtension:       min(c.MaxWorkTime+workMargin, maxVisibility),
		Retry:              backoff.Exponential(max(c.RetryDelay, 0), max(c.MaxDelay, 0)),
		DeadLetterQueueURL: c.DLQURL,
		Drain:              c.Drain,
		Logger:             c.Logger,
	}
}

// runHealth is a run's health: unhealthy while intake is paused by a fault of the
// environment, or when work is asked for and no receive has succeeded for longer than stale
// (the wait plus the request timeout: what one receive may take).
func runHealth(g *gate, src *sqs.Source, stale time.Duration, began time.Time) HealthFunc {
	return func() (bool, string) {
		if ok, reason := g.Health(); !ok {
			return ok, reason
		}
		st := src.Stats()
		last := st.LastReceive
		if last.IsZero() {
			last = began
		}
		if since := time.Since(last); st.Demand > 0 && since > stale {
			return false, fmt.Sprintf("work is asked for and no SQS receive has succeeded for %v (a receive may take %v)", since.Round(time.Second), stale)
		}
		return true, ""
	}
}

// abortRelease is how long Run may still take, once aborted, to make the messages it holds
// visible again.
const abortRelease = 2 * time.Second

// closeSource closes an SQS source, flushing its acknowledgements within closeTimeout, even
// when ctx is cancelled (as it is after a stop signal), or within abortRelease once abort is
// closed.
func closeSource(ctx context.Context, src *sqs.Source, abort <-chan struct{}) error {
	closing, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
	stop := onClose(abort, func() {
		t := time.NewTimer(abortRelease)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-closing.Done():
		}
	})
	err := src.Close(closing)
	cancel()
	stop()
	return err
}

// onClose calls f in a goroutine of its own once c is closed, unless stop is called first.
// stop waits for f to return. A nil c is never closed.
func onClose(c <-chan struct{}, f func()) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		select {
		case <-c:
			f()
		case <-done:
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

// sweepAge is how old a temporary file in --out must be to be taken for a crash's leftover.
const sweepAge = time.Minute

// sweep removes, beside the run, the temporary files that a crash left in the output
// directory. The returned function stops it and waits for it.
func sweep(out *output.Writer, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err := out.Sweep(ctx, sweepAge)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("cannot remove leftover temporary files", "dir", out.Dir(), "err", err)
		case n > 0:
			log.Info("removed temporary files left by an earlier crash", "dir", out.Dir(), "files", n)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// tally counts pipeline events for the status line and the summary.
type tally struct {
	received, objects, failed atomic.Int64
	fetchers                  atomic.Int64 // downloads in flight allowed now
	// messages counts the distinct messages received, when the run keeps them (a drain);
	// nil or false: only deliveries are counted.
	messages func() (int64, bool)
}

func (t *tally) Observe(e flow.Event) {
	switch {
	case e.Kind == flow.EventReceived:
		t.received.Add(int64(e.N))
	case e.Kind == flow.EventDone && e.Stage == "write":
		t.objects.Add(int64(e.N))
	case e.Kind == flow.EventFailed:
		t.failed.Add(int64(e.N))
	}
}

func (t *tally) summary(elapsed time.Duration) Summary {
	s := Summary{Messages: t.received.Load(), Objects: t.objects.Load(), Failed: t.failed.Load(), Elapsed: elapsed}
	if secs := elapsed.Seconds(); secs > 0 {
		s.ObjPerSec = float64(s.Objects) / secs
	}
	return s
}

// newS3 is the S3 client of a run. S3 must start answering within requestTimeout, and a body
// that sends no byte for as long while it is read is aborted (and resumed by object.Open, or
// failed as a timeout: an environment fault); a download as a whole may take longer.
// openOut opens the Writer of --out, and proves with real writes, before anything is
// received, that it and the spool directory can be written: a directory that cannot be written
// is a mistake to report now, not a fault to find with the first message. On a failed probe it
// returns the Writer too (nil when it could not be opened), for the caller to close.
func openOut(cfg Config) (*output.Writer, error) {
	spooled := make(chan error, 1) // the spool directory's probe, beside --out's set-up
	go func() { spooled <- probeDir(cfg.SpoolDir) }()
	out, err := output.NewWriter(cfg.Out) // which writes, syncs and keeps its output.OpenMarker
	switch {
	case errors.Is(err, output.ErrInUse):
		err = &ConfigError{"out", cfg.Out + " is in use by another palleto run"}
	case errors.Is(err, output.ErrNotWritable):
		err = &ConfigError{"out", "cannot write to " + cfg.Out + ": " + rootCause(err)}
	case err != nil:
		err = &ConfigError{"out", err.Error()}
	}
	if perr := <-spooled; perr != nil && err == nil {
		err = &ConfigError{"spool-dir", "cannot write to the spool directory: " + rootCause(perr)}
	}
	return out, err
}

func newS3(awsCfg aws.Config, requestTimeout time.Duration) object.Getter {
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		// A custom endpoint (moto, MinIO, …), from wherever the SDK took it (AWS_ENDPOINT_URL,
		// AWS_ENDPOINT_URL_S3, a profile's endpoint_url or its services section) wants
		// path-style addressing: a bucket's name is no host name there.
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
		// An object stored without a checksum (any object of an S3-compatible store, or
		// uploaded without one) is not an event worth a log line per download.
		o.DisableLogOutputChecksumValidationSkipped = true
		o.HTTPClient = httpClient(awsCfg).WithTransportOptions(func(tr *http.Transport) {
			tr.ResponseHeaderTimeout = requestTimeout
		})
	})
	return object.IdleTimeout(client, requestTimeout)
}
