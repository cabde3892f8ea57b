package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/flow/flowtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open returns a queue in memory, or a durable one in a fresh directory, closed at cleanup.
func open(t *testing.T, durable bool, cfg Config) *Queue {
	t.Helper()
	if durable {
		cfg.Dir = t.TempDir()
	} else {
		cfg.Memory = true
	}
	q, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

var backends = []struct {
	name    string
	durable bool
}{{"memory", false}, {"durable", true}}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			flowtest.TestSource(t, func(t *testing.T) flowtest.Harness[Job] {
				q := open(t, b.durable, Config{})
				var next atomic.Int64
				return flowtest.Harness[Job]{
					Source: q,
					Put: func(ctx context.Context, n int) error {
						ids := make([]string, n)
						for i := range ids {
							ids[i] = fmt.Sprint("job-", next.Add(1))
						}
						return q.Enqueue(ctx, ids...)
					},
					ID: func(j Job) string { return j.ID },
				}
			})
		})
	}
}

// take receives exactly n jobs, failing the test if they do not come within ten minutes (of
// fake time inside a synctest bubble).
func take(t *testing.T, q *Queue, n int) []flow.Message[Job] {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	var all []flow.Message[Job]
	for len(all) < n {
		msgs, err := q.Receive(ctx, n-len(all))
		if err != nil {
			t.Fatalf("received %d of %d jobs: %v", len(all), n, err)
		}
		all = append(all, msgs...)
	}
	return all
}

// none checks that nothing can be received within d.
func none(t *testing.T, q *Queue, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	if msgs, err := q.Receive(ctx, 10); len(msgs) > 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive = %v, %v; want nothing", jobsOf(msgs), err)
	}
}

func jobsOf(msgs []flow.Message[Job]) []Job {
	out := make([]Job, len(msgs))
	for i, m := range msgs {
		out[i] = m.Data
	}
	return out
}

func ack(q *Queue, st flow.Status, msgs ...flow.Message[Job]) {
	rs := make([]flow.Result, len(msgs))
	for i, m := range msgs {
		rs[i] = flow.Result{Token: m.Token, Status: st}
		if st == flow.Failed {
			rs[i].Err = fmt.Errorf("sync of %s failed", m.Data.ID)
		}
	}
	q.Acknowledge(rs)
}

func enqueue(t *testing.T, q *Queue, ids ...string) {
	t.Helper()
	if err := q.Enqueue(t.Context(), ids...); err != nil {
		t.Fatal(err)
	}
}

func wantCounts(t *testing.T, q *Queue, want Counts) {
	t.Helper()
	if got := q.Counts(); got != want {
		t.Fatalf("counts = %+v, want %+v", got, want)
	}
}

func TestDeduplication(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := open(t, b.durable, Config{})
				enqueue(t, q, "a", "b", "a")
				enqueue(t, q, "b")
				wantCounts(t, q, Counts{Queued: 2})
				got := take(t, q, 2)
				if want := []Job{{"a", 1}, {"b", 1}}; !slices.Equal(jobsOf(got), want) {
					t.Fatalf("received %v, want %v", jobsOf(got), want)
				}
				a, bb := got[0], got[1]

				// Posted while running: queued again, once, and not handed out while the
				// first run goes on.
				enqueue(t, q, "a")
				enqueue(t, q, "a")
				wantCounts(t, q, Counts{Queued: 1, Running: 2})
				none(t, q, time.Hour)

				ack(q, flow.Succeeded, a)
				wantCounts(t, q, Counts{Queued: 1, Running: 1, Done: 1})
				again := take(t, q, 1)
				if want := (Job{"a", 1}); again[0].Data != want {
					t.Fatalf("after the run, received %v, want %v", again[0].Data, want)
				}
				ack(q, flow.Succeeded, again...)
				none(t, q, time.Hour)

				// Released: back in the queue, not an attempt; posted meanwhile: still one job.
				enqueue(t, q, "b")
				ack(q, flow.Released, bb)
				wantCounts(t, q, Counts{Queued: 1, Done: 2})
				back := take(t, q, 1)
				if want := (Job{"b", 1}); back[0].Data != want {
					t.Fatalf("after the release, received %v, want %v", back[0].Data, want)
				}
				ack(q, flow.Succeeded, back...)
				none(t, q, time.Hour)
				wantCounts(t, q, Counts{Done: 3})
			})
		})
	}
}

func TestBadIDs(t *testing.T) {
	q := open(t, false, Config{})
	for _, id := range []string{"", string(make([]byte, MaxIDLen+1))} {
		err := q.Enqueue(t.Context(), "good", id)
		if _, ok := errors.AsType[*IDError](err); !ok {
			t.Errorf("Enqueue(%d-byte id) = %v, want an *IDError", len(id), err)
		}
	}
	wantCounts(t, q, Counts{})
}

// TestRetryTiming fails a job again and again and measures, on synctest's clock, when each
// retry is handed out: between half and all of its step, 1 s doubling up to 5 min.
func TestRetryTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxAttempts = 11
		q := open(t, false, Config{MaxAttempts: maxAttempts})
		var delays []time.Duration
		for job := range 4 {
			id := fmt.Sprint("j", job)
			enqueue(t, q, id)
			m := take(t, q, 1)
			for failures := 1; failures < maxAttempts; failures++ {
				ack(q, flow.Failed, m...)
				failedAt := time.Now()
				m = take(t, q, 1)
				d := time.Since(failedAt)
				step := min(time.Second<<(failures-1), 5*time.Minute)
				if d < step/2 || d > step {
					t.Fatalf("%s: retry after %d failures came after %v, want within [%v, %v]", id, failures, d, step/2, step)
				}
				if got := m[0].Data.Attempt; got != failures+1 {
					t.Fatalf("%s: attempt %d after %d failures", id, got, failures)
				}
				delays = append(delays, d)
			}
			ack(q, flow.Succeeded, m...)
		}
		// With jitter, jobs that fail together do not retry together.
		if slices.Min(delays[:maxAttempts-1]) == slices.Max(delays[:maxAttempts-1]) && delays[0] == delays[maxAttempts-1] {
			t.Fatalf("no jitter: delays %v", delays)
		}
		firsts := []time.Duration{delays[0], delays[maxAttempts-1], delays[2*(maxAttempts-1)], delays[3*(maxAttempts-1)]}
		if slices.Min(firsts) == slices.Max(firsts) {
			t.Fatalf("four first retries all after %v: no jitter", firsts[0])
		}
		wantCounts(t, q, Counts{Done: 4, Failed: 4 * (maxAttempts - 1)})
	})
}

func TestDeadJobs(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := open(t, b.durable, Config{MaxAttempts: 3})
				enqueue(t, q, "a", "b")
				for attempt := 1; attempt <= 3; attempt++ {
					m := take(t, q, 2)
					slices.SortFunc(m, func(x, y flow.Message[Job]) int { return cmpID(x.Data, y.Data) })
					if want := []Job{{"a", attempt}, {"b", attempt}}; !slices.Equal(jobsOf(m), want) {
						t.Fatalf("attempt %d: received %v, want %v", attempt, jobsOf(m), want)
					}
					ack(q, flow.Failed, m...)
				}
				wantCounts(t, q, Counts{Failed: 6, Dead: 2})
				none(t, q, time.Hour)
				dead := q.Dead()
				if len(dead) != 2 || dead[0].ID != "a" || dead[1].ID != "b" {
					t.Fatalf("Dead() = %+v, want a and b", dead)
				}
				for _, d := range dead {
					if d.Attempts != 3 || d.LastErr != "sync of "+d.ID+" failed" || d.DiedAt.IsZero() {
						t.Fatalf("dead job %+v", d)
					}
				}

				n, err := q.Requeue(t.Context(), "a", "nobody")
				if n != 1 || err != nil {
					t.Fatalf("Requeue(a, nobody) = %d, %v; want 1, nil", n, err)
				}
				wantCounts(t, q, Counts{Queued: 1, Failed: 6, Dead: 1})
				m := take(t, q, 1)
				if want := (Job{"a", 1}); m[0].Data != want {
					t.Fatalf("requeued job handed out as %v, want %v", m[0].Data, want)
				}
				ack(q, flow.Succeeded, m...)

				// A new notification for a dead id is new work.
				enqueue(t, q, "b")
				if d := q.Dead(); len(d) != 0 {
					t.Fatalf("after posting b, Dead() = %+v", d)
				}
				m = take(t, q, 1)
				if want := (Job{"b", 1}); m[0].Data != want {
					t.Fatalf("posted dead job handed out as %v, want %v", m[0].Data, want)
				}
				ack(q, flow.Failed, m...)
				wantCounts(t, q, Counts{Queued: 1, Done: 1, Failed: 7})
			})
		})
	}
}

func cmpID(a, b Job) int { return strings.Compare(a.ID, b.ID) }

func TestRequeueAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := open(t, false, Config{MaxAttempts: 1})
		enqueue(t, q, "a", "b", "c")
		ack(q, flow.Failed, take(t, q, 3)...)
		wantCounts(t, q, Counts{Failed: 3, Dead: 3})
		n, err := q.Requeue(t.Context())
		if n != 3 || err != nil {
			t.Fatalf("Requeue() = %d, %v; want 3, nil", n, err)
		}
		wantCounts(t, q, Counts{Queued: 3, Failed: 3})
	})
}

// TestPostedDuringRetryRunsNow: posting an id that waits for a retry runs it at once, once.
func TestPostedDuringRetryRunsNow(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := open(t, b.durable, Config{})
				enqueue(t, q, "a")
				ack(q, flow.Failed, take(t, q, 1)...)
				wantCounts(t, q, Counts{Queued: 1, Failed: 1})
				enqueue(t, q, "a")
				enqueue(t, q, "a")
				start := time.Now()
				m := take(t, q, 1)
				if time.Since(start) != 0 {
					t.Fatalf("posted job waited %v for its retry", time.Since(start))
				}
				if want := (Job{"a", 2}); m[0].Data != want {
					t.Fatalf("received %v, want %v", m[0].Data, want)
				}
				wantCounts(t, q, Counts{Running: 1, Failed: 1})
				none(t, q, time.Hour) // the retry is gone: it ran now
				ack(q, flow.Succeeded, m...)
				none(t, q, time.Hour)
				wantCounts(t, q, Counts{Done: 1, Failed: 1})
			})
		})
	}
}

// TestPostedDuringFailedRun: a run that fails after its id was posted again runs once more
// at once, as the retry it would have waited for.
func TestPostedDuringFailedRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := open(t, false, Config{MaxAttempts: 2})
		enqueue(t, q, "a")
		m := take(t, q, 1)
		enqueue(t, q, "a")
		ack(q, flow.Failed, m...)
		start := time.Now()
		m = take(t, q, 1)
		if time.Since(start) != 0 || m[0].Data != (Job{"a", 2}) {
			t.Fatalf("received %v after %v, want a's second attempt at once", m[0].Data, time.Since(start))
		}
		// The second failure is the last attempt, and nothing was posted meanwhile.
		enqueue(t, q, "b")
		ack(q, flow.Failed, m...)
		wantCounts(t, q, Counts{Queued: 1, Failed: 2, Dead: 1})
	})
}

// TestWaitingReceiveGetsRetry: a Receive already waiting when a job fails wakes for its retry.
func TestWaitingReceiveGetsRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := open(t, false, Config{})
		enqueue(t, q, "a")
		m := take(t, q, 1)
		got := make(chan []flow.Message[Job], 1)
		go func() {
			msgs, _ := q.Receive(t.Context(), 1)
			got <- msgs
		}()
		synctest.Wait()
		ack(q, flow.Failed, m...)
		failedAt := time.Now()
		msgs := <-got
		if d := time.Since(failedAt); len(msgs) != 1 || d < 500*time.Millisecond || d > time.Second {
			t.Fatalf("waiting Receive got %v after %v", jobsOf(msgs), d)
		}
		ack(q, flow.Succeeded, msgs...)
	})
}

func TestClosed(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			q := open(t, b.durable, Config{})
			errc := make(chan error, 1)
			go func() {
				_, err := q.Receive(t.Context(), 1)
				errc <- err
			}()
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; !errors.Is(err, ErrClosed) {
				t.Fatalf("waiting Receive after Close: %v, want ErrClosed", err)
			}
			if err := q.Enqueue(t.Context(), "a"); !errors.Is(err, ErrClosed) {
				t.Fatalf("Enqueue after Close: %v, want ErrClosed", err)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	if _, err := Open(Config{}); !errors.Is(err, ErrNoDir) {
		t.Errorf("Open(Config{}) = %v, want ErrNoDir", err)
	}
	if _, err := Open(Config{Memory: true, MaxAttempts: -1}); !errors.Is(err, ErrBadConfig) {
		t.Errorf("Open with MaxAttempts -1 = %v, want ErrBadConfig", err)
	}
}

// TestPendingDemand is the worker-pool seed's lesson: three idle workers, and each job
// enqueued one at a time starts at once, with no polling; a fourth waits for a free worker.
func TestPendingDemand(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := open(t, b.durable, Config{})
				var mu sync.Mutex
				started := map[string]bool{}
				release := map[string]chan struct{}{}
				for _, id := range []string{"a", "b", "c", "d"} {
					release[id] = make(chan struct{})
				}
				p := flow.New(flow.Config{})
				flow.Sink(flow.From(p, "queue", q, flow.SourceOptions{}), "workers", func(ctx context.Context, j Job) error {
					mu.Lock()
					started[j.ID] = true
					mu.Unlock()
					<-release[j.ID]
					return nil
				}, flow.Options{Concurrency: 3, MaxDemand: 1})
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				go func() { done <- p.Run(ctx) }()
				synctest.Wait()

				isStarted := func(id string) bool {
					mu.Lock()
					defer mu.Unlock()
					return started[id]
				}
				for i, id := range []string{"a", "b", "c"} {
					enqueue(t, q, id)
					synctest.Wait()
					if !isStarted(id) {
						t.Fatalf("job %s enqueued with an idle worker has not started", id)
					}
					wantCounts(t, q, Counts{Running: i + 1})
				}
				enqueue(t, q, "d")
				synctest.Wait()
				if isStarted("d") {
					t.Fatal("a fourth job started with three workers busy")
				}
				wantCounts(t, q, Counts{Queued: 1, Running: 3})
				close(release["b"])
				synctest.Wait()
				if !isStarted("d") {
					t.Fatal("job d did not start when a worker became free")
				}
				wantCounts(t, q, Counts{Running: 3, Done: 1})
				for _, id := range []string{"a", "c", "d"} {
					close(release[id])
				}
				synctest.Wait()
				wantCounts(t, q, Counts{Done: 4})
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// TestAtMostNRunning: N workers with MaxDemand 1 never run more than N jobs, each worker one
// at a time, and do use all N.
func TestAtMostNRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const workers, total = 3, 30
		q := open(t, false, Config{})
		var active, most atomic.Int64
		var overRunning atomic.Int64
		p := flow.New(flow.Config{})
		flow.Sink(flow.From(p, "queue", q, flow.SourceOptions{}), "workers", func(ctx context.Context, j Job) error {
			n := active.Add(1)
			defer active.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			if r := q.Counts().Running; r > workers {
				overRunning.Store(int64(r))
			}
			time.Sleep(time.Second)
			return nil
		}, flow.Options{Concurrency: workers, MaxDemand: 1})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		for i := range total {
			enqueue(t, q, fmt.Sprint("j", i))
		}
		start := time.Now()
		for q.Counts().Done < total {
			time.Sleep(time.Second)
			synctest.Wait()
		}
		// Three at a time, a second each.
		if took := time.Since(start); took != total/workers*time.Second {
			t.Errorf("%d one-second jobs on %d workers took %v", total, workers, took)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if most.Load() != workers || overRunning.Load() != 0 {
			t.Fatalf("at most %d jobs ran at once (want %d); %d handed out at once", most.Load(), workers, overRunning.Load())
		}
	})
}
