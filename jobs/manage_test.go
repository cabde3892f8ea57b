package jobs

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/flow"
)

func ids(list []Info) []string {
	out := make([]string, len(list))
	for i, in := range list {
		out[i] = in.ID
	}
	return out
}

// List tells the jobs of each state in order, and Info the history of a job's failed runs,
// with its times; both survive a reopening of a durable queue.
func TestListAndInfo(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := open(t, b.durable, Config{MaxAttempts: 2, Retry: backoff.Fixed(time.Hour)})
				start := time.Now()
				enqueue(t, q, "a", "b", "c", "d")
				m := take(t, q, 3) // a, b, c
				time.Sleep(time.Minute)
				ack(q, flow.Failed, m[1], m[2]) // b and c wait for a retry
				time.Sleep(time.Minute)
				enqueue(t, q, "c") // c runs now…
				mc := take(t, q, 1)
				ack(q, flow.Failed, mc...) // …and is dead after its second failure

				if got, want := ids(q.List(StateQueued)), []string{"d"}; !slices.Equal(got, want) {
					t.Errorf("queued %v, want %v", got, want)
				}
				if got, want := ids(q.List(StateRunning)), []string{"a"}; !slices.Equal(got, want) {
					t.Errorf("running %v, want %v", got, want)
				}
				if got, want := ids(q.List(StateRetrying)), []string{"b"}; !slices.Equal(got, want) {
					t.Errorf("retrying %v, want %v", got, want)
				}
				if got, want := ids(q.List(StateDead)), []string{"c"}; !slices.Equal(got, want) {
					t.Errorf("dead %v, want %v", got, want)
				}
				if got, want := ids(q.List("")), []string{"d", "a", "b", "c"}; !slices.Equal(got, want) {
					t.Errorf("all %v, want %v", got, want)
				}
				a, _ := q.Info("a")
				if a.State != StateRunning || !a.Started.Equal(start) {
					t.Errorf("a: %+v, want running since %v", a, start)
				}
				in, err := q.Info("b")
				if err != nil || in.State != StateRetrying || in.Attempts != 1 || !in.RetryAt.After(start.Add(time.Minute)) {
					t.Errorf("Info(b) = %+v, %v; want retrying after 1 failure", in, err)
				}
				c, err := q.Info("c")
				if err != nil {
					t.Fatal(err)
				}
				want := []Attempt{
					{Attempt: 1, Started: start, Ended: start.Add(time.Minute), Error: "sync of c failed"},
					{Attempt: 2, Started: start.Add(2 * time.Minute), Ended: start.Add(2 * time.Minute), Error: "sync of c failed"},
				}
				if c.State != StateDead || c.Attempts != 2 || !slices.EqualFunc(c.History, want, sameAttempt) || !c.DiedAt.Equal(start.Add(2*time.Minute)) {
					t.Errorf("Info(c) = %+v, want dead with history %+v", c, want)
				}
				if _, err := q.Info("nobody"); !errors.Is(err, ErrNotFound) {
					t.Errorf("Info(nobody) = %v, want ErrNotFound", err)
				}
				if !b.durable {
					return
				}
				dir := q.cfg.Dir
				q.Close()
				q2, err := Open(Config{Dir: dir, MaxAttempts: 2})
				if err != nil {
					t.Fatal(err)
				}
				defer q2.Close()
				c2, err := q2.Info("c")
				if err != nil || c2.State != StateDead || !slices.EqualFunc(c2.History, want, sameAttempt) || !c2.Queued.Equal(c.Queued) {
					t.Errorf("after reopening, Info(c) = %+v, %v; want %+v", c2, err, c)
				}
			})
		})
	}
}

func sameAttempt(a, b Attempt) bool {
	return a.Attempt == b.Attempt && a.Started.Equal(b.Started) && a.Ended.Equal(b.Ended) && a.Error == b.Error
}

// RunNow runs a job waiting for a retry at once, with its failed attempts, and puts a dead
// job back with none; Delete forgets a waiting, retrying or dead job, never a running one.
func TestRunNowAndDelete(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := open(t, b.durable, Config{MaxAttempts: 2, Retry: backoff.Fixed(time.Hour)})
				enqueue(t, q, "r", "d")
				m := take(t, q, 2)
				ack(q, flow.Failed, m...)
				enqueue(t, q, "d")
				ack(q, flow.Failed, take(t, q, 1)...) // d is dead, r waits an hour

				if st, err := q.RunNow(t.Context(), "r"); err != nil || st != StateQueued {
					t.Fatalf("RunNow(r) = %v, %v; want queued", st, err)
				}
				if got := take(t, q, 1)[0].Data; got != (Job{"r", 2}) {
					t.Fatalf("after RunNow, received %v, want r's second attempt", got)
				}
				if _, err := q.RunNow(t.Context(), "d"); err != nil {
					t.Fatal(err)
				}
				if got := take(t, q, 1)[0].Data; got != (Job{"d", 1}) {
					t.Fatalf("after RunNow of a dead job, received %v, want its first attempt", got)
				}
				if st, err := q.RunNow(t.Context(), "d"); err != nil || st != StateRunning {
					t.Fatalf("RunNow of a running job = %v, %v; want running, nil", st, err)
				}
				if err := q.Delete(t.Context(), "d"); !errors.Is(err, ErrRunning) {
					t.Fatalf("Delete of a running job = %v, want ErrRunning", err)
				}
				if _, err := q.RunNow(t.Context(), "nobody"); !errors.Is(err, ErrNotFound) {
					t.Fatalf("RunNow(nobody) = %v, want ErrNotFound", err)
				}

				enqueue(t, q, "w")
				wantCounts(t, q, Counts{Queued: 1, Running: 2, Failed: 3, Dead: 0})
				if err := q.Delete(t.Context(), "w"); err != nil {
					t.Fatal(err)
				}
				none(t, q, time.Minute)
				if err := q.Delete(t.Context(), "w"); !errors.Is(err, ErrNotFound) {
					t.Fatalf("second Delete = %v, want ErrNotFound", err)
				}
				wantCounts(t, q, Counts{Queued: 0, Running: 2, Failed: 3, Dead: 0})
			})
		})
	}
}

// Delete of a retrying or dead job takes it out of the queue for good, on disk too.
func TestDeleteIsOnDisk(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, MaxAttempts: 1, Retry: backoff.Fixed(time.Hour)}
	q, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, "dead", "retry")
	m := take(t, q, 2)
	ack(q, flow.Failed, m[0])
	q.cfg.MaxAttempts = 2
	ack(q, flow.Failed, m[1])
	for _, id := range []string{"dead", "retry"} {
		if err := q.Delete(t.Context(), id); err != nil {
			t.Fatalf("Delete(%s) = %v", id, err)
		}
	}
	q.Close()
	q, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if l := q.List(""); len(l) != 0 {
		t.Fatalf("after reopening, jobs %+v, want none", l)
	}
}

// OnOutcome hears of each run that ended: how long it waited and ran, and what comes next.
func TestOnOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var got []Outcome
		q := open(t, false, Config{MaxAttempts: 2, Retry: backoff.Fixed(time.Hour), OnOutcome: func(o Outcome) {
			mu.Lock()
			got = append(got, o)
			mu.Unlock()
		}})
		start := time.Now()
		enqueue(t, q, "a", "b")
		time.Sleep(time.Second)
		m := take(t, q, 2)
		time.Sleep(2 * time.Second)
		ack(q, flow.Succeeded, m[0])
		ack(q, flow.Failed, m[1])
		enqueue(t, q, "b")
		ack(q, flow.Failed, take(t, q, 1)...)
		ack(q, flow.Released) // nothing
		if len(got) != 3 {
			t.Fatalf("outcomes %+v, want 3", got)
		}
		if o := got[0]; o.ID != "a" || o.Err != nil || o.Waited != time.Second || o.Ran != 2*time.Second || o.Dead || !o.RetryAt.IsZero() {
			t.Errorf("a: %+v", o)
		}
		if o := got[1]; o.ID != "b" || o.Attempt != 1 || o.Err == nil || o.Dead || o.RetryAt.Sub(start) < 30*time.Minute {
			t.Errorf("b's first failure: %+v, want a retry in half an hour or more", o)
		}
		if o := got[2]; o.ID != "b" || o.Attempt != 2 || !o.Dead || o.Waited != 0 {
			t.Errorf("b's second failure: %+v, want dead", o)
		}
	})
}

// Records of the first format are still read.
func TestRecordVersion1(t *testing.T) {
	v1 := []byte{1, byte(dead), 5, 7, 0}
	v1 = append(v1, 0) // time of death: zero
	v1 = append(v1, 4)
	v1 = append(v1, "boom"...)
	e, err := decode("a", v1)
	if err != nil || e.state != dead || e.attempts != 5 || e.seq != 7 || e.lastErr != "boom" {
		t.Fatalf("decode(v1) = %+v, %v", e, err)
	}
	e = &entry{id: "a", state: retrying, attempts: 1, seq: 2, due: time.Unix(9, 0), lastErr: "x",
		queued: time.Unix(1, 0), ready: time.Unix(2, 0), history: []Attempt{{1, time.Unix(3, 0), time.Unix(4, 0), "x"}}}
	got, err := decode("a", encode(e))
	if err != nil || !got.queued.Equal(e.queued) || !got.ready.Equal(e.ready) || !slices.EqualFunc(got.history, e.history, sameAttempt) {
		t.Fatalf("round trip of %+v = %+v, %v", e, got, err)
	}
	if _, err := decode("a", encode(e)[:20]); !errors.As(err, new(*RecordError)) {
		t.Fatalf("decode of a cut record = %v, want a *RecordError", err)
	}
}
