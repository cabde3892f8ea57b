package jobs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/palleto/palleto/backoff"
	"github.com/palleto/palleto/flow"
	"github.com/palleto/palleto/internal/durable"
)

// TestReopen closes a queue in the middle of its work and opens its directory again: what
// waited still waits, runs cut off are not attempts and run again (once, even if posted
// during the run), retries keep their due time and failed attempts, dead jobs stay dead.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, MaxAttempts: 2, Retry: backoff.Fixed(time.Hour)}
	q, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, "a", "b", "c", "x", "d")
	m := take(t, q, 4) // a, b, c, x
	if want := []Job{{"a", 1}, {"b", 1}, {"c", 1}, {"x", 1}}; !slices.Equal(jobsOf(m), want) {
		t.Fatalf("received %v, want %v", jobsOf(m), want)
	}
	ack(q, flow.Failed, m[2], m[3]) // c and x wait an hour for a retry
	enqueue(t, q, "x")              // x runs now…
	mx := take(t, q, 1)
	if mx[0].Data != (Job{"x", 2}) {
		t.Fatalf("received %v, want x's second attempt", mx[0].Data)
	}
	ack(q, flow.Failed, mx...) // …and is dead
	enqueue(t, q, "b")         // running and posted again
	before := Counts{Queued: 3, Running: 2, Failed: 3, Dead: 1}
	wantCounts(t, q, before)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	// a and b were running: waiting again; b once. c waits for its retry. d never ran.
	wantCounts(t, q, Counts{Queued: 4, Dead: 1})
	m = take(t, q, 3)
	if want := []Job{{"a", 1}, {"b", 1}, {"d", 1}}; !slices.Equal(jobsOf(m), want) {
		t.Fatalf("after reopening, received %v, want %v", jobsOf(m), want)
	}
	none(t, q, 300*time.Millisecond) // c's retry is an hour away
	ack(q, flow.Succeeded, m...)
	enqueue(t, q, "c")
	mc := take(t, q, 1)
	if mc[0].Data != (Job{"c", 2}) {
		t.Fatalf("received %v, want c's second attempt", mc[0].Data)
	}
	ack(q, flow.Succeeded, mc...)
	dead := q.Dead()
	if len(dead) != 1 || dead[0].ID != "x" || dead[0].Attempts != 2 || dead[0].LastErr != "sync of x failed" {
		t.Fatalf("Dead() after reopening = %+v", dead)
	}
	wantCounts(t, q, Counts{Done: 4, Dead: 1})
}

// TestReopenRetryDue: a retry whose time passed while the process was down is ready at once.
func TestReopenRetryDue(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, Retry: backoff.Fixed(time.Nanosecond)}
	q, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, "a")
	ack(q, flow.Failed, take(t, q, 1)...)
	q.Close()
	q, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if m := take(t, q, 1); m[0].Data != (Job{"a", 2}) {
		t.Fatalf("received %v, want a's second attempt", m[0].Data)
	}
}

// TestEnqueueIsOnDisk copies the data file the moment Enqueue returns, as a crash would leave
// it, and finds the jobs in the copy.
func TestEnqueueIsOnDisk(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for i, ids := range [][]string{{"a"}, {"b", "c"}, {"a"}} {
		enqueue(t, q, ids...)
		crashed := filepath.Join(t.TempDir(), "copy")
		copyFile(t, filepath.Join(dir, FileName), filepath.Join(crashed, FileName))
		c, err := Open(Config{Dir: crashed})
		if err != nil {
			t.Fatal(err)
		}
		got := c.Counts().Queued
		c.Close()
		if want := []int{1, 3, 3}[i]; got != want {
			t.Fatalf("after Enqueue(%v), a copy of the file holds %d jobs, want %d", ids, got, want)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	q, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := Open(Config{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open of %s = %v, want ErrLocked", dir, err)
	}
}

func TestCorruptRecord(t *testing.T) {
	for _, b := range [][]byte{nil, {9, 1}, {recordVersion, 7, 0, 0, 0, 0, 0}, {recordVersion, byte(waiting), 0, 1}} {
		if _, err := decode("a", b); !errors.As(err, new(*RecordError)) {
			t.Errorf("decode(%v) = %v, want a *RecordError", b, err)
		}
	}
	e := &entry{id: "a", state: dead, attempts: 5, seq: 7, diedAt: time.Unix(0, 12345), lastErr: "boom"}
	got, err := decode("a", encode(e))
	if err != nil || got.state != dead || got.attempts != 5 || got.seq != 7 || !got.diedAt.Equal(e.diedAt) || got.lastErr != "boom" {
		t.Fatalf("round trip of %+v = %+v, %v", e, got, err)
	}
}

// TestNewQueueFileIsDurable: opening a queue in a new data directory syncs the directories
// that hold what it made, the data directory (for the queue's file) included; opening it again
// syncs nothing, and a sync that fails is Open's error.
func TestNewQueueFileIsDurable(t *testing.T) {
	base := t.TempDir()
	var synced []string
	fail := ""
	orig := durable.SyncDir
	t.Cleanup(func() { durable.SyncDir = orig })
	durable.SyncDir = func(open func(string) (*os.File, error), name string) error {
		synced = append(synced, name)
		if name == fail {
			return errInjectedSync
		}
		return orig(open, name)
	}
	dir := filepath.Join(base, "data")
	q, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	if want := []string{base, dir}; !slices.Equal(synced, want) {
		t.Errorf("Open of a new data directory synced %q, want %q", synced, want)
	}

	synced = nil
	q, err = Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
	if len(synced) > 0 {
		t.Errorf("Open of an existing queue synced %q", synced)
	}

	other := filepath.Join(base, "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	fail = other
	if _, err := Open(Config{Dir: other}); !errors.Is(err, errInjectedSync) {
		t.Errorf("Open whose directory cannot be synced: %v, want the sync's error", err)
	}
	if _, err := os.Lstat(filepath.Join(other, FileName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a queue file whose name was not synced was left behind (%v): the next Open would not sync it", err)
	}
}

var errInjectedSync = errors.New("injected sync failure")
