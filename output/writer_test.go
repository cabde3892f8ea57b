package output

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/internal/durable"
)

func result(bucket, key, seq string) Result {
	return Result{
		Bucket: bucket, Key: key, VersionID: "v1", ETag: "etag-" + seq,
		Size: 1234, Bytes: 56789, Lines: 1000, Encoding: "gzip",
		Sequencer: seq, MessageID: "m-" + seq,
		ProcessedAt: time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("X", 3600)),
	}
}

func newWriter(t testing.TB) *Writer {
	t.Helper()
	w, err := NewWriter(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func mustWrite(t *testing.T, w *Writer, r Result, want Outcome) string {
	t.Helper()
	p, got, err := w.Write(r)
	if err != nil {
		t.Fatalf("Write(%q, %q, seq %q): %v", r.Bucket, r.Key, r.Sequencer, err)
	}
	if got != want {
		t.Fatalf("Write(%q, %q, seq %q) = %v, want %v", r.Bucket, r.Key, r.Sequencer, got, want)
	}
	return p
}

func readBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// temps lists the temporary files left anywhere under dir (not the OpenMarker).
func temps(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tempPrefix) && strings.HasSuffix(d.Name(), ".tmp") {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestWriteRead(t *testing.T) {
	w := newWriter(t)
	in := result("b", "logs/2024/app.log.gz", "0055AED6DCD90281E5")
	p := mustWrite(t, w, in, Written)
	if want := filepath.Join(w.Dir(), "b", "logs", "2024", "app.log.gz.json"); p != want {
		t.Errorf("path %q, want %q", p, want)
	}
	got, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if !got.ProcessedAt.Equal(in.ProcessedAt) || got.ProcessedAt.Location() != time.UTC {
		t.Errorf("processed_at %v, want %v in UTC", got.ProcessedAt, in.ProcessedAt)
	}
	got.ProcessedAt, in.ProcessedAt = time.Time{}, time.Time{}
	if got != in {
		t.Errorf("read %+v\nwant %+v", got, in)
	}
	// The contract: exact field names, processed_at in RFC 3339, keys not HTML-escaped.
	want := `{"bucket":"b","key":"logs/2024/app.log.gz","version_id":"v1","etag":"etag-0055AED6DCD90281E5",` +
		`"size":1234,"bytes":56789,"lines":1000,"encoding":"gzip","sequencer":"0055AED6DCD90281E5",` +
		`"message_id":"m-0055AED6DCD90281E5","processed_at":"2024-05-06T06:08:09.123456789Z"}` + "\n"
	if b := readBytes(t, p); string(b) != want {
		t.Errorf("file holds\n%s want\n%s", b, want)
	}
	p = mustWrite(t, w, result("b", "a&b<c>", "01"), Written)
	if b := readBytes(t, p); !bytes.Contains(b, []byte(`"key":"a&b<c>"`)) {
		t.Errorf("key escaped: %s", b)
	}
}

func TestZeroProcessedAt(t *testing.T) {
	w := newWriter(t)
	r := result("b", "k", "01")
	r.ProcessedAt = time.Time{}
	before := time.Now()
	got, err := Read(mustWrite(t, w, r, Written))
	if err != nil {
		t.Fatal(err)
	}
	if got.ProcessedAt.Before(before.Truncate(time.Second)) || got.ProcessedAt.After(time.Now()) {
		t.Errorf("processed_at %v, want about %v", got.ProcessedAt, before)
	}
}

func TestDuplicate(t *testing.T) {
	w := newWriter(t)
	r := result("b", "k", "0A")
	p := mustWrite(t, w, r, Written)
	first := readBytes(t, p)
	stat1, _ := os.Stat(p)

	// The same event processed again, later, from another delivery of the message.
	again := r
	again.ProcessedAt = r.ProcessedAt.Add(time.Hour)
	again.MessageID = "another"
	mustWrite(t, w, again, Duplicate)
	// S3's GET answers quote the ETag; its events do not.
	again.ETag = `"` + r.ETag + `"`
	again.Sequencer = "0a00" // the same, padded on the right and in lower case
	mustWrite(t, w, again, Duplicate)

	if b := readBytes(t, p); !bytes.Equal(b, first) {
		t.Errorf("file changed:\n%s\n%s", first, b)
	}
	stat2, _ := os.Stat(p)
	if !os.SameFile(stat1, stat2) {
		t.Error("file was replaced")
	}

	// Same sequencer, another object (ETag or version): not a duplicate.
	other := r
	other.ETag = "changed"
	mustWrite(t, w, other, Written)
	other.VersionID = "v2"
	mustWrite(t, w, other, Written)
	if got, _ := Read(p); got.VersionID != "v2" {
		t.Errorf("version %q, want v2", got.VersionID)
	}
}

func TestSequencerOrder(t *testing.T) {
	w := newWriter(t)
	p := mustWrite(t, w, result("b", "k", "0A"), Written)
	kept := readBytes(t, p)

	mustWrite(t, w, result("b", "k", "09"), Stale)
	mustWrite(t, w, result("b", "k", "0"), Stale) // "00"
	if b := readBytes(t, p); !bytes.Equal(b, kept) {
		t.Fatalf("a stale event changed the file:\n%s", b)
	}
	// The same key in another bucket is another file.
	mustWrite(t, w, result("c", "k", "01"), Written)

	// Sequencers of different lengths: the shorter is padded with zeros on the right.
	mustWrite(t, w, result("b", "k", "0b"), Written)
	mustWrite(t, w, result("b", "k", "FF"), Written)
	mustWrite(t, w, result("b", "k", "FF01"), Written) // "FF00" < "FF01"
	mustWrite(t, w, result("b", "k", "FF"), Stale)
	mustWrite(t, w, result("b", "k", "100"), Stale) // "1000" < "FF01"
	if got, _ := Read(p); got.Sequencer != "FF01" {
		t.Fatalf("sequencer %q, want FF01", got.Sequencer)
	}
	// Without a sequencer on either side the order is unknown: the newer write wins.
	mustWrite(t, w, result("b", "k", ""), Written)
	mustWrite(t, w, result("b", "k", "05"), Written)
	if got, _ := Read(p); got.Sequencer != "05" {
		t.Fatalf("sequencer %q, want 05", got.Sequencer)
	}
}

// TestSequencersOfDifferentLengths: the result of an older event never replaces a newer
// one's, whatever the lengths of their sequencers (AWS's rule: the shorter is padded with
// zeros on the right; see s3event.CompareSequencer).
func TestSequencersOfDifferentLengths(t *testing.T) {
	for _, c := range []struct{ older, newer string }{
		{"0055AED6DCD90281E5", "0056"},
		{"0055AED6DCD90281E5", "0055aed6dcd90281e501"},
		{"09", "1"},
	} {
		w := newWriter(t)
		if _, o, err := w.Write(result("b", "k", c.older)); err != nil || o != Written {
			t.Fatalf("first write (%s): %v, %v", c.older, o, err)
		}
		if _, o, err := w.Write(result("b", "k", c.newer)); err != nil || o != Written {
			t.Errorf("newer %s after older %s: %v, %v; want written", c.newer, c.older, o, err)
		}
		if _, o, err := w.Write(result("b", "k", c.older)); err != nil || o != Stale {
			t.Errorf("older %s after newer %s: %v, %v; want stale", c.older, c.newer, o, err)
		}
	}
}

func TestReplacesUnparsable(t *testing.T) {
	w := newWriter(t)
	r := result("b", "k", "0A")
	p := mustWrite(t, w, r, Written)
	good := readBytes(t, p)
	for _, bad := range []string{
		string(good[:len(good)/2]),
		"",
		"{}",
		`{"bucket":"b","key":"k"}`,
		string(good) + "{}",
		"null",
	} {
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(p); !errors.Is(err, ErrInvalid) {
			t.Errorf("Read(%q): %v, want ErrInvalid", bad, err)
		}
		// The same event again, and even an older one, replaces it: it orders nothing.
		mustWrite(t, w, result("b", "k", "01"), Written)
		if got, err := Read(p); err != nil || got.Sequencer != "01" {
			t.Errorf("after %q: %+v, %v", bad, got, err)
		}
	}
}

func TestCollision(t *testing.T) {
	w := newWriter(t)
	px := mustWrite(t, w, result("b", "x", "01"), Written)
	py := w.Path("b", "y")
	// What a case-folding file system does to keys "Y" and "y", done by hand.
	if err := os.Rename(px, py); err != nil {
		t.Fatal(err)
	}
	before := readBytes(t, py)
	_, _, err := w.Write(result("b", "y", "02"))
	if !errors.Is(err, ErrCollision) {
		t.Fatalf("Write over another key's file: %v, want ErrCollision", err)
	}
	if b := readBytes(t, py); !bytes.Equal(b, before) {
		t.Error("another key's result was changed")
	}
}

func TestReadMissing(t *testing.T) {
	if _, err := Read(filepath.Join(t.TempDir(), "none.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a missing file: %v", err)
	}
}

var errInjected = errors.New("injected")

// TestFailedWriteLeavesNoTemp fails each step of a write after the temporary file exists.
func TestFailedWriteLeavesNoTemp(t *testing.T) {
	for _, step := range []string{"write", "sync", "close", "rename", "syncdir"} {
		for _, exists := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/exists=%v", step, exists), func(t *testing.T) {
				w := newWriter(t)
				p := w.Path("b", "d/k")
				var before []byte
				if exists {
					mustWrite(t, w, result("b", "d/k", "01"), Written)
					before = readBytes(t, p)
				}
				var reached bool
				w.fail = func(s string) error {
					if s == step {
						reached = true
						return errInjected
					}
					return nil
				}
				_, outcome, err := w.Write(result("b", "d/k", "02"))
				if !errors.Is(err, errInjected) || !reached {
					t.Fatalf("Write: %v (step reached: %v), want the injected error", err, reached)
				}
				if outcome != 0 {
					t.Errorf("outcome %v on error", outcome)
				}
				if left := temps(t, w.Dir()); len(left) > 0 {
					t.Errorf("temporary files left: %q", left)
				}
				after, err := os.ReadFile(p)
				switch {
				case step == "syncdir": // renamed already: the new result is in place
					if got, err := Read(p); err != nil || got.Sequencer != "02" {
						t.Errorf("after a failed directory sync: %+v, %v", got, err)
					}
				case exists:
					if !bytes.Equal(after, before) {
						t.Errorf("file changed by a failed write:\n%s", after)
					}
				default:
					if !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("a failed write left a result file: %v", err)
					}
				}
				w.fail = nil
				mustWrite(t, w, result("b", "d/k", "02"), map[bool]Outcome{true: Duplicate, false: Written}[step == "syncdir"])
			})
		}
	}
}

// TestFailedParentSync checks that a directory whose parent could not be synced is not left
// for the next write to take as durable: that write makes it again, and syncs its parent.
func TestFailedParentSync(t *testing.T) {
	w := newWriter(t)
	mustWrite(t, w, result("b", "k", "01"), Written) // the bucket's directory exists
	syncs := 0
	w.fail = func(s string) error {
		if s != "syncparent" {
			return nil
		}
		syncs++
		if syncs == 1 {
			return errInjected
		}
		return nil
	}
	if _, _, err := w.Write(result("b", "d/k", "01")); !errors.Is(err, errInjected) {
		t.Fatalf("Write: %v, want the injected error", err)
	}
	if _, err := os.Stat(filepath.Dir(w.Path("b", "d/k"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the directory whose parent was not synced is still there: %v", err)
	}
	mustWrite(t, w, result("b", "d/k", "01"), Written)
	if syncs != 2 {
		t.Errorf("parent synced %d times, want 2: the retry must make the directory again", syncs)
	}
}

// TestNewDirectoriesShareOneRound checks that the parents of the directories a write makes
// are synced in one commit round, not in one round per level: three new levels are three
// items of one round, which syncs the file system as a whole.
// TestNewWriterSyncsWhatItMakes: an output directory that NewWriter makes is durable before
// any result under it is (package durable tests the rest), and so is its OpenMarker.
func TestNewWriterSyncsWhatItMakes(t *testing.T) {
	base := t.TempDir()
	var synced []string
	orig := durable.SyncDir
	t.Cleanup(func() { durable.SyncDir = orig })
	durable.SyncDir = func(open func(string) (*os.File, error), name string) error {
		synced = append(synced, name)
		return orig(open, name)
	}
	dir := filepath.Join(base, "a", "out")
	w, err := NewWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if want := []string{base, filepath.Join(base, "a"), dir}; !slices.Equal(synced, want) {
		t.Errorf("NewWriter(%s) synced %q, want %q", dir, synced, want)
	}
}

func TestNewDirectoriesShareOneRound(t *testing.T) {
	w := newWriter(t)
	wholes := 0
	w.commits.whole = func() error { wholes++; return nil }
	mustWrite(t, w, result("b", "d/e/k", "01"), Written) // makes b, b/d and b/d/e
	if wholes != 1 {
		t.Errorf("%d rounds synced three items at once, want 1", wholes)
	}
}

func TestReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes to read-only directories; TestFailedWriteLeavesNoTemp covers the cleanup")
	}
	w := newWriter(t)
	p := mustWrite(t, w, result("b", "k", "01"), Written)
	dir := filepath.Dir(p)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if _, _, err := w.Write(result("b", "k", "02")); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Write in a read-only directory: %v, want a permission error", err)
	}
	if left := temps(t, w.Dir()); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

// TestForeignEntries puts entries this package never makes where it expects its own.
func TestForeignEntries(t *testing.T) {
	w := newWriter(t)
	// A directory, not empty, at a result file's path.
	p := w.Path("b", "k")
	if err := os.MkdirAll(filepath.Join(p, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Write(result("b", "k", "01")); err == nil {
		t.Error("Write over a directory succeeded")
	}
	// A file where a directory of the path should be.
	if err := os.WriteFile(filepath.Join(w.Dir(), "c"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Write(result("c", "k", "01")); err == nil {
		t.Error("Write under a file succeeded")
	}
	if left := temps(t, w.Dir()); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
}

func TestClosed(t *testing.T) {
	w := newWriter(t)
	w.Close()
	if _, _, err := w.Write(result("b", "k", "01")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v, want os.ErrClosed", err)
	}
}

// TestSecondWriterRefused: a Writer holds its directory alone until Close.
func TestSecondWriterRefused(t *testing.T) {
	w1 := newWriter(t)
	if err := w1.Unlocked(); err != nil {
		t.Fatalf("Unlocked() = %v on a local file system, want nil", err)
	}
	w2, err := NewWriter(w1.Dir())
	if !errors.Is(err, ErrInUse) {
		if w2 != nil {
			w2.Close()
		}
		t.Fatalf("second NewWriter on %s: %v, want ErrInUse", w1.Dir(), err)
	}
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	w3, err := NewWriter(w1.Dir())
	if err != nil {
		t.Fatalf("NewWriter after Close: %v", err)
	}
	if err := w3.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentSameKey races writers of a few keys, with events delivered out of order and
// twice: the newest event's result is what remains.
func TestConcurrentSameKey(t *testing.T) {
	w1 := newWriter(t)

	const keys, n = 4, 64
	var wg sync.WaitGroup
	errs := make(chan error, 3*keys*n)
	for k := range keys {
		seqs := make([]string, n)
		for i := range seqs {
			seqs[i] = fmt.Sprintf("%X", 0x100+i*37) // 3 digits
		}
		seqs[n/2] = "F000" // the newest, and longer
		rand.Shuffle(n, func(i, j int) { seqs[i], seqs[j] = seqs[j], seqs[i] })
		for i, seq := range seqs {
			w := w1
			wg.Go(func() {
				for range 2 {
					if _, _, err := w.Write(result("b", fmt.Sprintf("hot/%d", k), seq)); err != nil {
						errs <- err
					}
				}
			})
			// Other keys, in directories that are created at the same time.
			wg.Go(func() {
				if _, _, err := w.Write(result("b", fmt.Sprintf("new/%d/%d", k%2, i), seq)); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for k := range keys {
		got, err := Read(w1.Path("b", fmt.Sprintf("hot/%d", k)))
		if err != nil {
			t.Fatal(err)
		}
		if got.Sequencer != "F000" {
			t.Errorf("hot/%d: sequencer %q, want the newest, F000", k, got.Sequencer)
		}
	}
	for d := range 2 {
		entries, err := os.ReadDir(filepath.Join(w1.Dir(), "b", "new", fmt.Sprint(d)))
		if err != nil || len(entries) != n {
			t.Errorf("%d files in new/%d, want %d (%v)", len(entries), d, n, err)
		}
	}
	if left := temps(t, w1.Dir()); len(left) > 0 {
		t.Errorf("temporary files left: %q", left)
	}
	w1.paths.mu.Lock()
	held := len(w1.paths.m)
	w1.paths.mu.Unlock()
	if held != 0 {
		t.Errorf("%d path locks still in the table", held)
	}
}

// TestWriteWaitsForItsDirectoryToBeDurable pauses a write that made a result's directory
// before the directory's parent is synced: another write of a result in that directory must
// wait until it is, or it could report its result written while a crash would still take the
// directory, and the result with it.
func TestWriteWaitsForItsDirectoryToBeDurable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWriter(t)
		paused, release := make(chan struct{}), make(chan struct{})
		var armed atomic.Bool
		armed.Store(true)
		w.fail = func(step string) error {
			if step == "syncparent" && armed.CompareAndSwap(true, false) {
				close(paused)
				<-release
			}
			return nil
		}
		first := make(chan error, 1)
		go func() {
			_, _, err := w.Write(result("b", "d/k1", "01")) // makes b and b/d
			first <- err
		}()
		<-paused
		second := make(chan error, 1)
		go func() {
			_, _, err := w.Write(result("b", "d/k2", "01"))
			second <- err
		}()
		time.Sleep(time.Second) // past any wait of the commit rounds
		synctest.Wait()
		select {
		case err := <-second:
			t.Errorf("a write in a directory whose parent was not yet synced returned (%v)", err)
			second <- err
		default:
		}
		close(release)
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		if err := <-second; err != nil {
			t.Fatal(err)
		}
	})
}

// TestWriterWaitsForPath pauses a write of an older event just before its rename: a write
// of a newer event for the same key must wait for it, and then win.
func TestWriterWaitsForPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWriter(t)
		paused, release := make(chan struct{}), make(chan struct{})
		var armed atomic.Bool // the next write to reach its rename pauses there
		armed.Store(true)
		w.fail = func(step string) error {
			if step == "rename" && armed.CompareAndSwap(true, false) {
				close(paused)
				<-release
			}
			return nil
		}
		older := make(chan error, 1)
		go func() {
			_, _, err := w.Write(result("b", "k", "01"))
			older <- err
		}()
		<-paused
		newer := make(chan Outcome, 1)
		go func() {
			_, outcome, err := w.Write(result("b", "k", "02"))
			if err != nil {
				t.Error(err)
			}
			newer <- outcome
		}()
		synctest.Wait()
		select {
		case <-newer:
			t.Fatal("a write of the same key went ahead while another was between check and rename")
		default:
		}
		close(release)
		if err := <-older; err != nil {
			t.Fatal(err)
		}
		if outcome := <-newer; outcome != Written {
			t.Errorf("newer write: %v, want written", outcome)
		}
		if got, err := Read(w.Path("b", "k")); err != nil || got.Sequencer != "02" {
			t.Errorf("result %+v, %v; want sequencer 02", got, err)
		}
		// Another key is not held up by a paused write.
		paused, release = make(chan struct{}), make(chan struct{})
		armed.Store(true)
		go func() {
			_, _, err := w.Write(result("b", "k", "03"))
			older <- err
		}()
		<-paused
		if _, _, err := w.Write(result("b", "other", "01")); err != nil {
			t.Error(err)
		}
		close(release)
		if err := <-older; err != nil {
			t.Error(err)
		}
	})
}

func BenchmarkWrite(b *testing.B) {
	b.Run("new", func(b *testing.B) {
		w := newWriter(b)
		for i := 0; b.Loop(); i++ {
			if _, _, err := w.Write(result("bucket", fmt.Sprintf("logs/%d/%d.log.gz", i/1000, i), fmt.Sprintf("%016X", i))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("newer", func(b *testing.B) {
		w := newWriter(b)
		for i := 0; b.Loop(); i++ {
			if _, _, err := w.Write(result("bucket", "logs/2024/app.log.gz", fmt.Sprintf("%016X", i))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("duplicate", func(b *testing.B) {
		w := newWriter(b)
		r := result("bucket", "logs/2024/app.log.gz", "0055AED6DCD90281E5")
		for b.Loop() {
			if _, _, err := w.Write(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stale", func(b *testing.B) {
		w := newWriter(b)
		if _, _, err := w.Write(result("bucket", "logs/2024/app.log.gz", "FF")); err != nil {
			b.Fatal(err)
		}
		r := result("bucket", "logs/2024/app.log.gz", "01")
		for b.Loop() {
			if _, _, err := w.Write(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestOpenMarker checks that a Writer says whether the last one on its directory closed:
// not after a crash (its OpenMarker stayed), nor after a write failed once it could have made
// a temporary file; yes on a fresh directory and after a Close.
func TestOpenMarker(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	marker := filepath.Join(dir, OpenMarker)
	open := func(wantUnclean bool) *Writer {
		t.Helper()
		w, err := NewWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		if w.Unclean() != wantUnclean {
			t.Fatalf("Unclean() = %v, want %v", w.Unclean(), wantUnclean)
		}
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("open Writer, no marker: %v", err)
		}
		return w
	}
	closed := func(w *Writer, wantMarker bool) {
		t.Helper()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(marker); (err == nil) != wantMarker {
			t.Fatalf("closed Writer: marker there: %v, want %v", err == nil, wantMarker)
		}
	}

	w := open(false) // a fresh directory
	mustWrite(t, w, result("b", "k", "01"), Written)
	closed(w, false)
	w = open(false) // after a Close

	// A crash: the process ends without Close, which the kernel's closing of its files is.
	w.root.Close()
	w.lockFile.Close()
	closed(open(true), true) // no Sweep: the next Writer is told too
	w = open(true)
	// A leftover of a crash a second ago (young: kept), and a file of this Writer's own.
	young, own := filepath.Join(dir, "b", tempPrefix+"young.tmp"), filepath.Join(dir, "b", tempPrefix+"own.tmp")
	for _, p := range []string{young, own} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := w.opened.Add(-time.Second)
	if err := os.Chtimes(young, before, before); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Sweep(t.Context(), time.Hour); n != 0 || err != nil || !w.Unclean() {
		t.Fatalf("Sweep = %d, %v, Unclean %v; want 0, nil, true: a young leftover was left", n, err, w.Unclean())
	}
	if err := os.Remove(young); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Sweep(t.Context(), time.Hour); n != 0 || err != nil || w.Unclean() {
		t.Fatalf("Sweep = %d, %v, Unclean %v; want 0, nil, false: only the Writer's own file is left", n, err, w.Unclean())
	}
	if err := os.Remove(own); err != nil {
		t.Fatal(err)
	}
	closed(w, false)

	w = open(false)
	w.fail = func(s string) error {
		if s == "rename" {
			return errInjected
		}
		return nil
	}
	if _, _, err := w.Write(result("b", "k", "02")); !errors.Is(err, errInjected) {
		t.Fatalf("Write: %v, want the injected error", err)
	}
	closed(w, true)
	w = open(true)
	if _, err := w.Sweep(t.Context(), time.Hour); err != nil {
		t.Fatal(err)
	}
	closed(w, false)
}

// TestNotWritable checks that NewWriter refuses a directory it cannot write to, saying so.
func TestNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes to read-only directories; the app's tests mount a read-only file system")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if w, err := NewWriter(dir); !errors.Is(err, ErrNotWritable) || !errors.Is(err, fs.ErrPermission) {
		if w != nil {
			w.Close()
		}
		t.Fatalf("NewWriter of a read-only directory: %v, want ErrNotWritable and a permission error", err)
	}
}

// Sweep removes the temporary files a crash left behind once they are old enough, and
// nothing else: not results, not fresh temporary files, not links or directories that
// merely carry the name.
func TestSweep(t *testing.T) {
	w := newWriter(t)
	p := mustWrite(t, w, result("b", "logs/a.gz", "01"), Written)
	want := readBytes(t, p)
	dir := filepath.Dir(p)
	old := time.Now().Add(-2 * time.Hour)
	plant := func(p string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	stale := []string{filepath.Join(w.Dir(), tempPrefix+"1.tmp"), filepath.Join(dir, tempPrefix+"2.tmp")}
	for _, p := range stale {
		plant(p, old)
	}
	fresh := filepath.Join(dir, tempPrefix+"3.tmp")
	plant(fresh, time.Now())
	outside := filepath.Join(t.TempDir(), "outside")
	plant(outside, old)
	link := filepath.Join(dir, tempPrefix+"4.tmp")
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(w.Dir(), tempPrefix+"5.tmp"), 0o755); err != nil {
		t.Fatal(err)
	}

	n, err := w.Sweep(t.Context(), time.Hour)
	if err != nil || n != len(stale) {
		t.Fatalf("Sweep = %d, %v; want %d, nil", n, err, len(stale))
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s is still there (%v)", p, err)
		}
	}
	for _, p := range []string{fresh, link, outside, filepath.Join(w.Dir(), tempPrefix+"5.tmp")} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	if got := readBytes(t, p); !bytes.Equal(got, want) {
		t.Fatalf("the result changed:\n%s\n%s", got, want)
	}
}
