package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/jobs"
	"github.com/palleto/palleto/metrics"
	"github.com/palleto/palleto/sqs"
)

// Serve runs the worker pool until ctx is cancelled: an HTTP server with the Dropbox webhook
// (/webhook) and a health check (GET /healthz), Workers workers that each run one job at a
// time from the queue the webhook fills, and with AdminListen the admin listener (dashboard,
// JSON API and job management, GET /jobs, /metrics, /healthz, /readyz).
//
// When ctx is cancelled Serve stops accepting work (webhook calls are answered 503), lets
// running jobs finish for up to ShutdownTimeout, then stops them (an Exec job's process group
// gets SIGTERM, and SIGKILL KillDelay later); jobs that did not finish stay queued. It returns
// nil after such a shutdown. Problems of configuration, the address or the data directory are
// returned as *ConfigError before anything runs.
func Serve(ctx context.Context, cfg ServeConfig) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.setDefaults()
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return &ConfigError{"listen", err.Error()}
	}
	defer ln.Close() // when Serve returns before the server takes it
	adminLn, err := listenAdmin("admin-listen", cfg.AdminListen, cfg.AdminToken)
	if err != nil {
		return err
	}
	if adminLn != nil {
		defer adminLn.Close()
	}

	p, err := newPool(cfg, adminLn)
	if err != nil {
		return err
	}
	if cfg.QueueURL == "" {
		q, err := jobs.Open(jobs.Config{Dir: cfg.DataDir, Memory: cfg.Memory, MaxAttempts: cfg.MaxAttempts, Logger: cfg.Logger,
			OnOutcome: p.jobOutcome})
		if err != nil {
			return &ConfigError{"data-dir", err.Error()}
		}
		defer func() {
			if cerr := q.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("closing the queue: %w", cerr))
			}
		}()
		p.src = queueSource(q, cfg)
		return p.serve(ctx, ln)
	}

	awsCfg, err := loadAWS(ctx, cfg.AWS, "queue-url")
	if err != nil {
		return err
	}
	client := newSQSClient(awsCfg, 0)
	src, err := sqs.New(client, sqs.Config{
		QueueURL: cfg.QueueURL,
		WaitTime: cfg.WaitTime,
		Logger:   cfg.Logger,
	})
	if err != nil {
		return &ConfigError{"queue-url", err.Error()}
	}
	defer func() {
		if cerr := closeSource(ctx, src, nil); cerr != nil {
			err = errors.Join(err, fmt.Errorf("closing the SQS source: %w", cerr))
		}
	}()
	if err := checkQueue(ctx, src, cfg.QueueURL, client.Options().BaseEndpoint, awsCfg, cfg.Logger); err != nil {
		return err
	}
	if err := cfg.Metrics.Register(metrics.NewSQSCollector(src)); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	p.src = sqsSource(ctx, client, src, cfg, p.sqsOutcome)
	return p.serve(ctx, ln)
}

// queueSource is the embedded queue as the pool's source.
func queueSource(q *jobs.Queue, cfg ServeConfig) jobSource {
	desc := cfg.DataDir
	if cfg.Memory {
		desc = "memory"
	}
	return jobSource{
		name:    "queue",
		desc:    desc,
		jobs:    q,
		enqueue: func(ctx context.Context, ids []string) error { return q.Enqueue(ctx, ids...) },
		counts:  func(context.Context) (jobs.Counts, error) { return q.Counts(), nil },
		manage:  q,
	}
}

// sqsSource is an SQS queue as the pool's source. The queue's order and retries are SQS's: a
// failed job becomes visible again after the same backoff as the embedded queue's (1 s
// doubling to 5 min, with jitter), a job whose run is cut off by a crash comes back when its
// visibility timeout ends, and the queue's redrive policy, not MaxAttempts, decides when a
// job is dead. Every post of an id is a message: SQS does not merge them.
func sqsSource(ctx context.Context, client *awssqs.Client, src *sqs.Source, cfg ServeConfig, outcome func(*sqs.Redrive) func(*ticket, flow.Result)) jobSource {
	log := cfg.Logger
	// The jobs that SQS moved to the queue's dead-letter queue are the dead ones.
	rp := redrivePolicy(ctx, src, log)
	dlq := ""
	switch {
	case rp == nil: // said why
	case rp.DeadLetterQueueURL == "":
		log.Info("the queue has no redrive policy: failed jobs are retried without end")
	default:
		dlq = rp.DeadLetterQueueURL
	}
	// A job's failure is the job's: the pool has no fault of the environment to pause for,
	// so its gate never closes.
	led := newLedger(src, newGate(log, DefaultMaxFaultTime, func(error) {}), false)
	led.outcome = outcome(rp)
	a := &sqsJobs{msgs: led}
	return jobSource{
		name:    "sqs",
		desc:    cfg.QueueURL,
		jobs:    a,
		enqueue: func(ctx context.Context, ids []string) error { return sqs.Send(ctx, client, cfg.QueueURL, ids...) },
		counts: func(ctx context.Context) (jobs.Counts, error) {
			c, err := sqs.QueueCounts(ctx, client, cfg.QueueURL)
			if err != nil {
				return jobs.Counts{}, err
			}
			queued, dead := c.Visible+c.Delayed, 0
			if dlq != "" {
				// The dead-letter queue is a second opinion: when it cannot be read (a
				// permission missing, say), the counts of the queue itself still stand.
				d, err := sqs.QueueCounts(ctx, client, dlq)
				if err != nil && ctx.Err() == nil {
					log.Warn("cannot count the dead jobs in the dead-letter queue", "queue", dlq, "err", err)
				}
				dead = d.Total()
			}
			return jobs.Counts{Queued: queued, Running: int(a.running.Load()), Done: int(a.done.Load()),
				Failed: int(a.failed.Load()), Dead: dead}, nil
		},
		queue:    &adminQueue{src: src, client: client, url: cfg.QueueURL, dlq: func() string { return dlq }},
		unlisted: sqsUnlisted(rp),
	}
}

// sqsUnlisted says, for the dashboard and GET /api/jobs, why the jobs of a pool on SQS are
// counted but not listed, and how its dead jobs run again, from the queue's redrive policy
// (nil: unknown).
func sqsUnlisted(rp *sqs.Redrive) string {
	const why = "Jobs by state cannot be listed here: the jobs are messages in the SQS queue, which counts them but cannot list them or change one. " +
		"Queued is SQS's approximate count for all servers; running, done and failed runs are this server's. "
	switch {
	case rp == nil:
		return why + "The queue's redrive policy could not be read: dead jobs are not counted."
	case rp.DeadLetterQueueURL == "":
		return why + "The queue has no redrive policy: no job is ever dead, a failed one is retried without end."
	}
	return why + "Dead jobs are the messages in the dead-letter queue " + rp.DeadLetterQueueURL +
		": to run them again, move them back with SQS's dead-letter queue redrive (aws sqs start-message-move-task)."
}

// sqsJobs adapts an SQS source to the pool: a message is a job whose id is the body, and
// whose attempt is the message's receive count. It counts what SQS does not: the jobs
// running, done and failed here.
type sqsJobs struct {
	msgs                  *ledger
	running, done, failed atomic.Int64
}

func (a *sqsJobs) Receive(ctx context.Context, n int) ([]flow.Message[jobs.Job], error) {
	msgs, err := a.msgs.Receive(ctx, n)
	out := make([]flow.Message[jobs.Job], len(msgs))
	for i, m := range msgs {
		out[i] = flow.Message[jobs.Job]{Data: jobs.Job{ID: m.Data.Body, Attempt: m.Data.ReceiveCount}, Acker: a, Token: m.Token}
	}
	a.running.Add(int64(len(msgs)))
	return out, err
}

// Acknowledge counts the outcomes and hands them on to the messages they came from.
func (a *sqsJobs) Acknowledge(results []flow.Result) {
	for _, r := range results {
		switch r.Status {
		case flow.Succeeded:
			a.done.Add(1)
		case flow.Failed:
			a.failed.Add(1)
		}
	}
	a.running.Add(-int64(len(results)))
	a.msgs.Acknowledge(results)
}
