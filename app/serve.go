package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/jobs"
	"github.com/palleto/palleto/metrics"
	"github.com/palleto/palleto/sqs"
	"github.com/palleto/palleto/webhook"
)

// Defaults of ServeConfig.
const (
	DefaultListen    = "127.0.0.1:8080"
	DefaultDataDir   = "./palleto-data"
	DefaultKillDelay = 5 * time.Second
)

// JobIDEnv is the environment variable that holds the job id for an --exec command.
const JobIDEnv = "PALLETO_JOB_ID"

// ServeConfig configures Serve, the webhook-fed worker pool. Zero values are the documented
// defaults; the field comments name the command-line flag of each.
type ServeConfig struct {
	Listen        string // --listen: address of the HTTP server; default 127.0.0.1:8080
	WebhookSecret string // --webhook-secret: the Dropbox app secret; required
	Workers       int    // --workers: jobs run at once; default the number of CPUs
	DataDir       string // --data-dir: the durable queue's directory; default ./palleto-data
	Memory        bool   // --memory: keep the queue in memory (jobs are lost on exit)
	// QueueURL (--queue-url) replaces the embedded queue with an SQS queue that several
	// servers share: the webhook sends each job as a message, the workers receive them.
	QueueURL string
	// WaitTime is the long poll of the SQS receives with QueueURL: 0 means SQS's longest,
	// 20 s. A shorter one only makes sense with an emulator that does not end a long poll
	// as soon as messages can be had.
	WaitTime time.Duration
	// Exec (--exec) is the command that runs a job, already split into words: the job id is
	// appended as its last argument and set in PALLETO_JOB_ID. Required unless Handler is set.
	Exec        []string
	MaxAttempts int // --max-attempts: failed runs before a job is dead; default 5
	// ShutdownTimeout (--shutdown-timeout) is how long running jobs may finish after a stop
	// signal before they are told to stop. Zero means 30 s; negative means no wait.
	ShutdownTimeout time.Duration
	// KillDelay is how long a job's process group has between SIGTERM and SIGKILL. Zero
	// means 5 s.
	KillDelay time.Duration

	// Handler, when set, runs jobs in this process instead of Exec: the worker pool as a
	// library. An error fails the run; returning ctx's error after ctx is cancelled leaves
	// the job queued.
	Handler func(ctx context.Context, job jobs.Job) error
	// AWS is the SDK configuration for QueueURL. Nil means the SDK's standard sources.
	AWS *aws.Config
	// Metrics is the registry that GET /metrics serves; the pool's metrics (stage events,
	// job counts, and with QueueURL the SQS source's counters) are registered with it. Nil
	// means a new registry. A registry takes one Serve: a second is refused.
	Metrics *prometheus.Registry
	// Logger receives the server's and the jobs' logs. Nil discards.
	Logger *slog.Logger
	// Ready, when set, is called with the server's address once it listens (useful with
	// a Listen port of 0).
	Ready func(addr string)
}

func (c *ServeConfig) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = jobs.DefaultMaxAttempts
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.KillDelay == 0 {
		c.KillDelay = DefaultKillDelay
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work, after defaults are applied, as a
// *ConfigError naming its flag.
func (c ServeConfig) Validate() error {
	c.setDefaults()
	switch {
	case c.WebhookSecret == "":
		return &ConfigError{"webhook-secret", "is required (or PALLETO_WEBHOOK_SECRET)"}
	case c.Workers < 1:
		return &ConfigError{"workers", fmt.Sprintf("%d: want at least 1", c.Workers)}
	case c.MaxAttempts < 1:
		return &ConfigError{"max-attempts", fmt.Sprintf("%d: want at least 1", c.MaxAttempts)}
	case c.Handler == nil && len(c.Exec) == 0:
		return &ConfigError{"exec", "is required: the command that runs a job"}
	case c.Handler == nil && c.Exec[0] == "":
		return &ConfigError{"exec", "names no command"}
	case c.QueueURL != "" && c.Memory:
		return &ConfigError{"memory", "cannot be used with --queue-url"}
	case c.KillDelay < 0:
		return &ConfigError{"kill-delay", "must not be negative"}
	}
	return nil
}

// Serve runs the worker pool until ctx is cancelled: an HTTP server with the Dropbox webhook
// (/webhook), the job counts (GET /jobs), a health check (GET /healthz) and Prometheus metrics
// (GET /metrics), and Workers workers that each run one job at a time from the queue the
// webhook fills.
//
// When ctx is cancelled Serve stops accepting work (webhook calls are answered 503), lets
// running jobs finish for up to ShutdownTimeout, then stops them (an Exec job's process group
// gets SIGTERM, and SIGKILL KillDelay later); jobs that did not finish stay queued. It returns
// nil after such a shutdown. Problems of configuration, the address or the data directory are
// returned as *ConfigError before anything runs.
func Serve(ctx context.Context, cfg ServeConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.setDefaults()
	log := cfg.Logger
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return &ConfigError{"listen", err.Error()}
	}
	if cfg.QueueURL != "" {
		return serveSQS(ctx, cfg, ln)
	}
	q, err := jobs.Open(jobs.Config{Dir: cfg.DataDir, Memory: cfg.Memory, MaxAttempts: cfg.MaxAttempts, Logger: log})
	if err != nil {
		ln.Close()
		return &ConfigError{"data-dir", err.Error()}
	}
	defer func() {
		if err := q.Close(); err != nil {
			log.Error("closing the queue", "err", err)
		}
	}()
	p := &pool{cfg: cfg, log: log, counts: func(context.Context) (jobs.Counts, error) { return q.Counts(), nil }}
	return p.serve(ctx, ln, func(ctx context.Context, ids []string) error { return q.Enqueue(ctx, ids...) },
		func(pl *flow.Pipeline) {
			flow.Sink(flow.From(pl, "queue", q, flow.SourceOptions{}), "workers", p.run,
				flow.Options{Concurrency: cfg.Workers, MaxDemand: 1})
		})
}

// serveSQS runs the pool on an SQS queue. The queue's order and retries are SQS's: a failed
// job becomes visible again after the same backoff as the embedded queue's (1 s doubling to
// 5 min, with jitter), a job whose run is cut off by a crash comes back when its visibility
// timeout ends, and the queue's redrive policy, not MaxAttempts, decides when a job is dead.
// Every post of an id is a message: SQS does not merge them.
func serveSQS(ctx context.Context, cfg ServeConfig, ln net.Listener) error {
	log := cfg.Logger
	var awsCfg aws.Config
	if cfg.AWS != nil {
		awsCfg = *cfg.AWS
	} else {
		var err error
		if awsCfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
			ln.Close()
			return &ConfigError{"queue-url", "AWS configuration: " + err.Error()}
		}
	}
	if awsCfg.Region == "" {
		ln.Close()
		return &ConfigError{"queue-url", "no AWS region: set AWS_REGION (or a profile's region)"}
	}
	client := awssqs.NewFromConfig(awsCfg)
	src, err := sqs.New(client, sqs.Config{
		QueueURL: cfg.QueueURL,
		WaitTime: cfg.WaitTime,
		Retry:    sqs.RetryExponential(jobs.DefaultRetryBase, jobs.DefaultRetryMax),
		Logger:   log,
	})
	if err != nil {
		ln.Close()
		return &ConfigError{"queue-url", err.Error()}
	}
	defer func() {
		closing, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := src.Close(closing); err != nil {
			log.Error("closing the SQS source", "err", err)
		}
	}()
	if err := src.Check(ctx); err != nil {
		ln.Close()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &ConfigError{"queue-url", err.Error()}
	}
	if err := cfg.Metrics.Register(metrics.NewSQSCollector(src)); err != nil {
		ln.Close()
		return fmt.Errorf("metrics: %w", err)
	}
	dlq := deadLetterQueue(ctx, client, cfg.QueueURL, log)
	var running, done, failed atomic.Int64
	p := &pool{cfg: cfg, log: log}
	p.counts = func(ctx context.Context) (jobs.Counts, error) {
		queued, err := approxCount(ctx, client, cfg.QueueURL,
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed)
		if err != nil {
			return jobs.Counts{}, err
		}
		dead := 0
		if dlq != "" {
			// The dead-letter queue is a second opinion: when it cannot be read (a
			// permission missing, say), the counts of the queue itself still stand.
			dead, err = approxCount(ctx, client, dlq,
				sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed)
			if err != nil && ctx.Err() == nil {
				log.Warn("cannot count the dead jobs in the dead-letter queue", "queue", dlq, "err", err)
			}
		}
		return jobs.Counts{Queued: queued, Running: int(running.Load()), Done: int(done.Load()), Failed: int(failed.Load()), Dead: dead}, nil
	}
	send := func(ctx context.Context, ids []string) error { return sendJobs(ctx, client, cfg.QueueURL, ids) }
	return p.serve(ctx, ln, send, func(pl *flow.Pipeline) {
		flow.Sink(flow.From(pl, "sqs", src, flow.SourceOptions{}), "workers", func(ctx context.Context, m sqs.Message) error {
			running.Add(1)
			defer running.Add(-1)
			err := p.run(ctx, jobs.Job{ID: m.Body, Attempt: m.ReceiveCount})
			switch {
			case err == nil:
				done.Add(1)
			case ctx.Err() == nil:
				failed.Add(1)
			}
			return err
		}, flow.Options{Concurrency: cfg.Workers, MaxDemand: 1})
	})
}

// approxCount adds up the approximate message counts of a queue that names ask for.
func approxCount(ctx context.Context, client *awssqs.Client, url string, names ...sqstypes.QueueAttributeName) (int, error) {
	out, err := client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: names})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range out.Attributes {
		k, _ := strconv.Atoi(v)
		n += k
	}
	return n, nil
}

// deadLetterQueue returns the URL of the dead-letter queue that queueURL's redrive policy
// names, or "" when it has none or it cannot be found (then said in the log): the jobs that
// SQS moved there are the dead ones.
func deadLetterQueue(ctx context.Context, client *awssqs.Client, queueURL string, log *slog.Logger) string {
	out, err := client.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{
		QueueUrl:       &queueURL,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		log.Warn("cannot read the queue's redrive policy: dead jobs are not counted", "err", err)
		return ""
	}
	policy, ok := out.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)]
	if !ok {
		log.Info("the queue has no redrive policy: failed jobs are retried without end")
		return ""
	}
	var rp struct {
		Target string `json:"deadLetterTargetArn"`
	}
	err = json.Unmarshal([]byte(policy), &rp)
	parts := strings.Split(rp.Target, ":") // arn:aws:sqs:REGION:ACCOUNT:NAME
	if err != nil || len(parts) != 6 || parts[2] != "sqs" {
		log.Warn("cannot read the queue's redrive policy: dead jobs are not counted", "policy", policy)
		return ""
	}
	u, err := client.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: &parts[5], QueueOwnerAWSAccountId: &parts[4]})
	if err != nil {
		log.Warn("cannot find the dead-letter queue: dead jobs are not counted", "arn", rp.Target, "err", err)
		return ""
	}
	return aws.ToString(u.QueueUrl)
}

// sendAttempts bounds the tries of the entries of a SendMessageBatch that SQS failed on its
// side; entries it refused as the sender's fault are not retried.
const sendAttempts = 4

// sendJobs sends one message per id, in batches of 10, and returns once SQS accepted all of
// them, or an error (the webhook then answers 503, and Dropbox calls again). On a FIFO queue
// the id is the message group, so that the jobs of one id run one at a time, in order, on
// whichever server; each message has a deduplication id of its own, so that a post is never
// merged into one sent before it (its job may be running already).
func sendJobs(ctx context.Context, client *awssqs.Client, url string, ids []string) error {
	fifo := strings.HasSuffix(url, ".fifo")
	for len(ids) > 0 {
		batch := ids[:min(10, len(ids))]
		ids = ids[len(batch):]
		left := make(map[string]string, len(batch)) // entry id → job id
		dedupIDs := map[string]string{}             // entry id → deduplication id, kept across tries
		for i, id := range batch {
			eid := strconv.Itoa(i)
			left[eid] = id
			if fifo {
				dedupIDs[eid] = strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36)
			}
		}
		for attempt := 1; len(left) > 0; attempt++ {
			if attempt > sendAttempts {
				return fmt.Errorf("sending jobs to SQS: %d not accepted after %d tries", len(left), sendAttempts)
			}
			if attempt > 1 {
				t := time.NewTimer(time.Duration(attempt-1) * 100 * time.Millisecond)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
			}
			entries := make([]sqstypes.SendMessageBatchRequestEntry, 0, len(left))
			for eid, id := range left {
				e := sqstypes.SendMessageBatchRequestEntry{Id: aws.String(eid), MessageBody: aws.String(id)}
				if fifo {
					e.MessageGroupId = aws.String(id)
					e.MessageDeduplicationId = aws.String(dedupIDs[eid])
				}
				entries = append(entries, e)
			}
			out, err := client.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: &url, Entries: entries})
			if err != nil {
				return fmt.Errorf("sending jobs to SQS: %w", err)
			}
			for _, ok := range out.Successful {
				delete(left, aws.ToString(ok.Id))
			}
			for _, f := range out.Failed {
				if f.SenderFault {
					return fmt.Errorf("sending job %q to SQS: %s: %s", left[aws.ToString(f.Id)], aws.ToString(f.Code), aws.ToString(f.Message))
				}
			}
		}
	}
	return nil
}

// pool is one run of Serve: the server, the workers and how to count jobs.
type pool struct {
	cfg    ServeConfig
	log    *slog.Logger
	counts func(context.Context) (jobs.Counts, error)
}

// serve runs the HTTP server and the pipeline that declare adds the workers to, until ctx is
// cancelled or the pipeline fails, and shuts both down in order.
func (p *pool) serve(ctx context.Context, ln net.Listener, enqueue func(context.Context, []string) error, declare func(*flow.Pipeline)) error {
	cfg, log := p.cfg, p.log
	grace := cfg.ShutdownTimeout
	obs, err := p.registerMetrics(ctx)
	if err != nil {
		ln.Close()
		return err
	}
	pl := flow.New(flow.Config{GracePeriod: grace, Observer: flow.Observers(flow.LogObserver(log), obs)})
	declare(pl)

	wh, err := webhook.New(webhook.Config{Secret: []byte(cfg.WebhookSecret), Enqueue: enqueue, Logger: log})
	if err != nil {
		ln.Close()
		return &ConfigError{"webhook-secret", err.Error()}
	}
	var stopping atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/webhook", wh)
	mux.HandleFunc("GET /jobs", func(w http.ResponseWriter, r *http.Request) {
		c, err := p.counts(r.Context())
		if err != nil {
			log.Warn("counting jobs", "err", err)
			http.Error(w, "cannot count jobs now", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c)
	})
	mux.Handle("GET /metrics", metrics.Handler(cfg.Metrics, log))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if stopping.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	ran := make(chan error, 1)
	go func() { ran <- pl.Run(runCtx) }()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	addr := ln.Addr().String()
	log.Info("serving", "addr", addr, "workers", cfg.Workers, "queue", p.queueName())
	if cfg.Ready != nil {
		cfg.Ready(addr)
	}

	var runErr, srvErr error
	runDone := false
	select {
	case <-ctx.Done():
		log.Info("shutting down: webhook closed, waiting for running jobs", "timeout", grace)
	case runErr = <-ran:
		runDone = true
		log.Error("the worker pool stopped", "err", runErr)
	case srvErr = <-served:
		log.Error("the HTTP server stopped", "err", srvErr)
	}
	// New webhook calls get 503 from now on, so that Dropbox keeps them for later; the
	// counts and the health check stay up until the jobs are over.
	wh.Stop()
	stopping.Store(true)
	stopRun()
	if !runDone {
		runErr = <-ran
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		srv.Close()
	}
	if srvErr == nil {
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			srvErr = err
		}
	}
	if c, err := p.counts(shut); err == nil {
		log.Info("stopped", "queued", c.Queued, "done", c.Done, "failed", c.Failed, "dead", c.Dead)
	}
	return errors.Join(runErr, srvErr)
}

// countTimeout bounds the job counts read for a scrape: with SQS they are a request.
const countTimeout = 10 * time.Second

// registerMetrics registers the stage metrics and the job counts, and returns the observer
// that feeds the stage metrics.
func (p *pool) registerMetrics(ctx context.Context) (flow.Observer, error) {
	reg := p.cfg.Metrics
	obs, err := metrics.NewObserver(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	// Scrapes go on while the pool shuts down, as GET /jobs does.
	base := context.WithoutCancel(ctx)
	counts := metrics.NewJobsCollector(func() (jobs.Counts, error) {
		ctx, cancel := context.WithTimeout(base, countTimeout)
		defer cancel()
		return p.counts(ctx)
	})
	if err := reg.Register(counts); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return obs, nil
}

func (p *pool) queueName() string {
	switch {
	case p.cfg.QueueURL != "":
		return p.cfg.QueueURL
	case p.cfg.Memory:
		return "memory"
	default:
		return p.cfg.DataDir
	}
}

// run runs one job: with Handler, or as a process.
func (p *pool) run(ctx context.Context, job jobs.Job) error {
	log := p.log.With("job", job.ID, "attempt", job.Attempt)
	log.Info("job started")
	began := time.Now()
	var err error
	if p.cfg.Handler != nil {
		err = p.cfg.Handler(ctx, job)
	} else {
		err = runProcess(ctx, p.cfg.Exec, job.ID, p.cfg.KillDelay, log)
	}
	took := time.Since(began).Round(time.Millisecond)
	switch {
	case err == nil:
		log.Info("job done", "took", took)
	case ctx.Err() != nil:
		log.Warn("job stopped by the shutdown; it stays queued", "took", took)
		return ctx.Err()
	default:
		log.Warn("job failed", "took", took, "err", err)
	}
	return err
}

// runProcess runs argv with id appended, in a process group of its own so that a stop
// reaches everything it started. When ctx is cancelled the group gets SIGTERM, and SIGKILL
// killDelay later; the error is then ctx's.
func runProcess(ctx context.Context, argv []string, id string, killDelay time.Duration, log *slog.Logger) error {
	cmd := exec.Command(argv[0], append(argv[1:len(argv):len(argv)], id)...)
	cmd.Env = append(os.Environ(), JobIDEnv+"="+id)
	cmd.SysProcAttr = jobProcAttr()
	stdout, stderr := &lineLog{log: log, stream: "stdout"}, &lineLog{log: log, stream: "stderr"}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Children that outlive the job and keep its output open must not hold the worker.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	pgid := cmd.Process.Pid
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		log.Info("stopping job: SIGTERM to its process group")
		syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(killDelay)
		select {
		case <-waited:
		case <-t.C:
			log.Warn("job still running: SIGKILL to its process group", "after", killDelay)
			syscall.Kill(-pgid, syscall.SIGKILL)
			<-waited
		}
		t.Stop()
		err = ctx.Err()
	}
	stdout.flush()
	stderr.flush()
	return err
}

// lineLog logs what a job writes, one log record per line.
type lineLog struct {
	log    *slog.Logger
	stream string
	mu     sync.Mutex
	buf    []byte
}

// maxLine splits lines longer than this into several records.
const maxLine = 64 << 10

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) >= maxLine {
				l.emit(l.buf[:maxLine])
				l.buf = l.buf[:copy(l.buf, l.buf[maxLine:])]
				continue
			}
			return len(p), nil
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[:copy(l.buf, l.buf[i+1:])]
	}
}

func (l *lineLog) emit(line []byte) {
	l.log.Info("job output", "stream", l.stream, "line", string(bytes.TrimSuffix(line, []byte("\r"))))
}

func (l *lineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = l.buf[:0]
	}
}
