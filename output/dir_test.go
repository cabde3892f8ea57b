package output

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// TestGroupSyncShares checks the group commit: writers that ask while a sync runs share the
// next one, which starts after they asked; none is answered by a sync that began before it.
func TestGroupSyncShares(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g groupSync
		var calls atomic.Int32
		release := make(chan struct{})
		var began sync.Map // caller → calls when it began
		do := func() error {
			calls.Add(1)
			<-release
			return nil
		}
		var wg sync.WaitGroup
		ended := make([]int32, 4)
		wg.Go(func() {
			began.Store(0, calls.Load())
			g.sync(do)
			ended[0] = calls.Load()
		})
		synctest.Wait() // the first sync runs
		for i := 1; i < 4; i++ {
			wg.Go(func() {
				began.Store(i, calls.Load())
				g.sync(do)
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
				t.Errorf("writer %d was answered by a sync that began before it asked", i)
			}
		}
	})
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
