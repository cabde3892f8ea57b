package output

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestCommitRoundsShare checks the group commit: writes that ask while a round runs share
// the next one, which starts after they asked; none is answered by a round that began before
// it.
func TestCommitRoundsShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c commits
		var calls atomic.Int32
		release := make(chan struct{})
		item := commitItem{key: "dir", sync: func() error {
			calls.Add(1)
			<-release
			return nil
		}}
		var began sync.Map // write → calls when it began
		var wg sync.WaitGroup
		ended := make([]int32, 4)
		wg.Go(func() {
			began.Store(0, calls.Load())
			c.sync(item)
			ended[0] = calls.Load()
		})
		synctest.Wait() // the first round runs
		for i := 1; i < 4; i++ {
			wg.Go(func() {
				began.Store(i, calls.Load())
				c.sync(item)
				ended[i] = calls.Load()
			})
		}
		synctest.Wait() // three wait for the next round
		if got := calls.Load(); got != 1 {
			t.Fatalf("%d syncs running, want 1", got)
		}
		release <- struct{}{} // the first ends; the shared second one starts
		synctest.Wait()
		if got := calls.Load(); got != 2 {
			t.Fatalf("%d syncs after the first ended, want 2 (one for the three waiting)", got)
		}
		release <- struct{}{}
		wg.Wait()
		if got := calls.Load(); got != 2 {
			t.Errorf("%d syncs in all, want 2", got)
		}
		for i := 1; i < 4; i++ {
			b, _ := began.Load(i)
			if ended[i] <= b.(int32) {
				t.Errorf("write %d was answered by a round that began before it asked", i)
			}
		}
	})
}

// TestCommitRunnerLeavesAfterItsRound checks that the write that ran a round returns when its
// round ends, while the next round, opened by another write, runs.
func TestCommitRunnerLeavesAfterItsRound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c commits
		release := make(chan struct{})
		item := func(key string) commitItem {
			return commitItem{key: key, sync: func() error { <-release; return nil }}
		}
		first, second := make(chan struct{}), make(chan struct{})
		go func() { c.sync(item("a")); close(first) }()
		synctest.Wait()
		go func() { c.sync(item("b")); close(second) }()
		synctest.Wait()
		release <- struct{}{} // round one ends; round two starts and blocks
		synctest.Wait()
		select {
		case <-first:
		default:
			t.Fatal("the first write still waits while the round after its own runs")
		}
		select {
		case <-second:
			t.Fatal("the second write returned before its round ran")
		default:
		}
		release <- struct{}{}
		<-second
	})
}

// TestCommitRoundsAreSpaced checks that a round begins no sooner than the spacing after the
// one before it began, that the writes that ask meanwhile share it, and that a write to an
// idle Writer is not held back.
func TestCommitRoundsAreSpaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const spacing = 3 * time.Millisecond
		c := commits{spacing: spacing}
		var mu sync.Mutex
		var starts []time.Duration // when each sync began, from t0
		t0 := time.Now()
		item := func(key string) commitItem {
			return commitItem{key: key, sync: func() error {
				mu.Lock()
				starts = append(starts, time.Since(t0))
				mu.Unlock()
				return nil
			}}
		}
		var wg sync.WaitGroup
		wg.Go(func() { c.sync(item("a")) }) // idle: at once
		time.Sleep(time.Millisecond)
		wg.Go(func() { c.sync(item("b")) }) // waits for 3 ms after a began
		time.Sleep(time.Millisecond)
		wg.Go(func() { c.sync(item("c")) }) // joins b's round
		wg.Wait()
		if want := []time.Duration{0, spacing, spacing}; !slices.Equal(starts, want) {
			t.Errorf("syncs began at %v, want %v", starts, want)
		}

		time.Sleep(time.Second) // idle again
		starts = nil
		t0 = time.Now()
		c.sync(item("d"))
		if want := []time.Duration{0}; !slices.Equal(starts, want) {
			t.Errorf("after a pause, the sync began at %v, want %v", starts, want)
		}
	})
}

// TestCommitSyncsWholeFileSystem checks that a round of wholeMin distinct items or more makes
// one whole-file-system sync, that smaller rounds sync each distinct item once, and that a
// refused whole sync falls back to the items, for good.
func TestCommitSyncsWholeFileSystem(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wholes, items atomic.Int32
		var refuse atomic.Bool
		c := commits{whole: func() error {
			wholes.Add(1)
			if refuse.Load() {
				return errNoWholeSync
			}
			return nil
		}}
		hold := make(chan struct{})
		blocker := commitItem{key: "blocker", sync: func() error { <-hold; return nil }}
		// roundOf runs one round holding the given keys, behind a round that blocks.
		roundOf := func(keys ...string) {
			t.Helper()
			var wg sync.WaitGroup
			wg.Go(func() { c.sync(blocker) })
			synctest.Wait()
			for _, k := range keys {
				wg.Go(func() {
					if err := c.sync(commitItem{key: k, sync: func() error { items.Add(1); return nil }}); err != nil {
						t.Errorf("sync %s: %v", k, err)
					}
				})
			}
			synctest.Wait()
			hold <- struct{}{}
			wg.Wait()
		}

		roundOf("a", "a", "b")
		if w, i := wholes.Swap(0), items.Swap(0); w != 0 || i != 2 {
			t.Errorf("two distinct items: %d whole syncs, %d item syncs; want 0 and 2", w, i)
		}
		roundOf("a", "b", "c", "c")
		if w, i := wholes.Swap(0), items.Swap(0); w != 1 || i != 0 {
			t.Errorf("three distinct items: %d whole syncs, %d item syncs; want 1 and 0", w, i)
		}
		refuse.Store(true)
		roundOf("a", "b", "c")
		if w, i := wholes.Swap(0), items.Swap(0); w != 1 || i != 3 {
			t.Errorf("whole sync refused: %d whole syncs, %d item syncs; want 1 and 3", w, i)
		}
		roundOf("a", "b", "c")
		if w, i := wholes.Swap(0), items.Swap(0); w != 0 || i != 3 {
			t.Errorf("after a refusal: %d whole syncs, %d item syncs; want 0 and 3", w, i)
		}
	})
}

// TestCommitErrorsReachTheirItems checks that an item's failed sync fails the writes of that
// item only, and that a failed whole sync fails every write of its round.
func TestCommitErrorsReachTheirItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bad := errors.New("EIO")
		var wholeErr atomic.Pointer[error]
		c := commits{whole: func() error {
			if p := wholeErr.Load(); p != nil {
				return *p
			}
			return nil
		}}
		hold := make(chan struct{})
		blocker := commitItem{key: "blocker", sync: func() error { <-hold; return nil }}
		run := func(items map[string]error) map[string]error {
			var mu sync.Mutex
			got := map[string]error{}
			var wg sync.WaitGroup
			wg.Go(func() { c.sync(blocker) })
			synctest.Wait()
			for k, err := range items {
				wg.Go(func() {
					e := c.sync(commitItem{key: k, sync: func() error { return err }})
					mu.Lock()
					got[k] = e
					mu.Unlock()
				})
			}
			synctest.Wait()
			hold <- struct{}{}
			wg.Wait()
			return got
		}
		got := run(map[string]error{"good": nil, "bad": bad})
		if got["good"] != nil || !errors.Is(got["bad"], bad) {
			t.Errorf("item syncs: got %v, want only bad to fail", got)
		}
		wholeErr.Store(&bad)
		got = run(map[string]error{"a": nil, "b": nil, "c": nil})
		for k, err := range got {
			if !errors.Is(err, bad) {
				t.Errorf("whole sync failed but write %s got %v", k, err)
			}
		}
	})
}

func TestReleaseAtLeast(t *testing.T) {
	for _, c := range []struct {
		release string
		want    bool
	}{
		{"5.8.0", true},
		{"5.7.19", false},
		{"5.10.0-28-amd64", true},
		{"6.1.0", true},
		{"4.19.0", false},
		{"5.8-rc1", true},
		{"5.08", true},
		{"", false},
		{"five.eight", false},
		{"5", false},
	} {
		if got := releaseAtLeast(c.release, 5, 8); got != c.want {
			t.Errorf("releaseAtLeast(%q, 5, 8) = %v, want %v", c.release, got, c.want)
		}
	}
}

// TestWriterKeepsDirectoriesOpen checks that results in one directory share its descriptor,
// and that Close releases it.
func TestWriterKeepsDirectoriesOpen(t *testing.T) {
	w, err := NewWriter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"d/a", "d/b", "d/c", "e/a"} {
		if _, _, err := w.Write(Result{Bucket: "b", Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(w.dirs); got != 2 {
		t.Errorf("%d directories open, want 2 (b/d and b/e)", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.dirs != nil {
		t.Errorf("directories still open after Close: %v", w.dirs)
	}
}
