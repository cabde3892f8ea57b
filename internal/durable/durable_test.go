package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errInjected = errors.New("injected")

// TestMkdirAllSyncsWhatItMakes: the directory holding each directory MkdirAll made is synced,
// outermost first; one that exists costs no sync; a sync that fails leaves nothing made behind.
func TestMkdirAllSyncsWhatItMakes(t *testing.T) {
	base := t.TempDir()
	var synced []string
	fail := ""
	orig := SyncDir
	t.Cleanup(func() { SyncDir = orig })
	SyncDir = func(open func(string) (*os.File, error), name string) error {
		synced = append(synced, name)
		if name == fail {
			return errInjected
		}
		return orig(open, name)
	}

	dir := filepath.Join(base, "a", "b", "c")
	if err := MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("MkdirAll(%s) made no directory (%v)", dir, err)
	}
	if want := []string{base, filepath.Join(base, "a"), filepath.Join(base, "a", "b")}; !slices.Equal(synced, want) {
		t.Errorf("MkdirAll(%s) synced %q, want %q", dir, synced, want)
	}

	synced = nil
	if err := MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if len(synced) > 0 {
		t.Errorf("MkdirAll of an existing directory synced %q", synced)
	}

	fail = filepath.Join(base, "x")
	if err := MkdirAll(filepath.Join(base, "x", "y", "z"), 0o755); !errors.Is(err, errInjected) {
		t.Fatalf("MkdirAll with a failing sync: %v, want the sync's error", err)
	}
	if _, err := os.Lstat(fail); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed sync left %s behind (%v)", fail, err)
	}
}

// TestMkdirAllUnderAFile: a file where a directory should be is os.MkdirAll's error, and
// nothing is synced.
func TestMkdirAllUnderAFile(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	syncs := 0
	orig := SyncDir
	t.Cleanup(func() { SyncDir = orig })
	SyncDir = func(open func(string) (*os.File, error), name string) error {
		syncs++
		return orig(open, name)
	}
	if err := MkdirAll(filepath.Join(file, "d", "e"), 0o755); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("MkdirAll under a file: %v, want ENOTDIR", err)
	}
	if syncs > 0 {
		t.Errorf("a failed MkdirAll synced %d directories", syncs)
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(os.Open, t.TempDir()); err != nil {
		t.Errorf("SyncDir of a directory: %v", err)
	}
	if err := SyncDir(os.Open, filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDir of a missing directory: %v, want not exist", err)
	}
}
