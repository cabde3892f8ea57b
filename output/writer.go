package output

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/palleto/palleto/internal/durable"
	"github.com/palleto/palleto/s3event"
)

// Errors reported by this package.
var (
	// ErrCollision means the result file for a key holds the result of another bucket or
	// key. It happens only on file systems that fold case or Unicode normalisation; the
	// existing file is left alone.
	ErrCollision = errors.New("output: result file holds another key")
	// ErrInvalid means a file is not a result: it cannot be parsed, or lacks a field.
	ErrInvalid = errors.New("output: not a result file")
	// ErrInUse means another Writer, in this process or another, holds the directory.
	ErrInUse = errors.New("output: directory in use by another writer")
	// ErrNotWritable means that NewWriter could not write its OpenMarker in the directory (a
	// read-only or full file system, no permission): results could not be written either.
	ErrNotWritable = errors.New("output: cannot write to the directory")
)

// OpenMarker is the file that a Writer keeps at the top of its directory while it is open
// and removes when it closes. Found by NewWriter, it means that the last Writer there did
// not close (its process crashed or was killed), so that temporary files may have been left
// behind: see [Writer.Unclean]. No result's path can take its name (a bucket's name does not
// begin with a dot).
const OpenMarker = ".palleto-open"

// Result is what is recorded for one processed S3 object. The JSON field names are a
// contract with users and scripts.
type Result struct {
	Bucket string `json:"bucket"`
	// Key is the decoded key ("+" is a space, %XX decoded). Bytes that are not valid UTF-8,
	// which JSON cannot carry, are written as U+FFFD; the file name keeps them apart.
	Key       string `json:"key"`
	VersionID string `json:"version_id"`
	ETag      string `json:"etag"`
	Size      int64  `json:"size"`  // stored size of the object
	Bytes     int64  `json:"bytes"` // decompressed size
	Lines     int64  `json:"lines"` // newline bytes in the decompressed content
	Encoding  string `json:"encoding"`
	Sequencer string `json:"sequencer"`
	MessageID string `json:"message_id"`
	// ProcessedAt is written in UTC, in RFC 3339 (with fractional seconds when not zero).
	ProcessedAt time.Time `json:"processed_at"`
}

// Outcome says what [Writer.Write] did.
type Outcome int

const (
	// Written: the result file was created or replaced.
	Written Outcome = iota + 1
	// Duplicate: the file already recorded the same object and was left as it is.
	Duplicate
	// Stale: the file records a newer event for the key; nothing was written.
	Stale
)

func (o Outcome) String() string {
	switch o {
	case Written:
		return "written"
	case Duplicate:
		return "duplicate"
	case Stale:
		return "stale"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Writer writes results under one directory. It is safe for concurrent use.
//
// A Writer holds its directory alone: the checks of a result file (sequencer, duplicate) and
// its rename are made safe against each other by the Writer's own locks, so NewWriter takes
// an exclusive lock on the directory, and a second Writer on it, in this process or another,
// is refused with ErrInUse until Close.
type Writer struct {
	dir      string
	root     *os.Root
	lockFile *os.File // the directory, open for its lock
	lockErr  error    // why the directory could not be locked, where the file system cannot
	paths    pathLocks

	// life is held for reading by writes and for writing by Close, so that Close waits for
	// the writes before it closes the directories they use. It guards closed.
	life   sync.RWMutex
	closed bool
	dirMu  sync.Mutex
	dirs   map[string]*resultDir // open directories by relative path ("" for the top)
	// commits makes the temporary files and renames of concurrent writes durable together.
	commits commits
	// unclean: OpenMarker was there when NewWriter came (see Unclean), until a Sweep found
	// nothing left to remove. failed: a write failed after it could have made a temporary
	// file, whose removal may have failed too. Either way Close leaves OpenMarker, for the
	// next Writer's sweep.
	unclean atomic.Bool
	failed  atomic.Bool
	opened  time.Time // when NewWriter began: later temporary files are this Writer's

	// fail, set by tests only, makes the write fail at the named step.
	fail func(step string) error
}

// NewWriter returns a Writer for dir, creating the directory if needed, and locks it (see
// [Writer]): a directory held by another Writer is an error that wraps ErrInUse. Close
// releases it.
func NewWriter(dir string) (*Writer, error) {
	opened := time.Now()
	if err := durable.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	lockErr := lockDir(d)
	if errors.Is(lockErr, ErrInUse) {
		d.Close()
		return nil, fmt.Errorf("%w: %s", ErrInUse, dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("output: %w", err)
	}
	w := &Writer{dir: dir, root: root, lockFile: d, lockErr: lockErr, dirs: map[string]*resultDir{}, opened: opened}
	w.commits.whole = wholeSync(d)
	w.commits.spacing = roundSpacing
	if err := w.mark(); err != nil {
		root.Close()
		d.Close()
		return nil, fmt.Errorf("%w %s: %w", ErrNotWritable, dir, err)
	}
	return w, nil
}

// mark notes whether OpenMarker is there, then writes it, syncs it and syncs the directory:
// the proof that the file system takes writes (a read-only or full one refuses them here),
// and, after a crash, the sign that this Writer did not close.
func (w *Writer) mark() error {
	if _, err := w.root.Lstat(OpenMarker); err == nil {
		w.unclean.Store(true)
	}
	f, err := w.root.OpenFile(OpenMarker, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte("palleto\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = durable.SyncDir(os.Open, w.dir)
	}
	return err
}

// Unclean reports whether the last Writer on the directory did not close (its process
// crashed or was killed), or closed after a write failed once it could have made a temporary
// file; and no Sweep since has found the directory clear. Only then can temporary files have
// been left behind for [Writer.Sweep]. A directory that no Writer had opened is clean. An
// unclean Writer leaves OpenMarker when it closes, so that the next one sweeps again.
func (w *Writer) Unclean() bool { return w.unclean.Load() }

// Unlocked reports why the directory could not be locked (some network file systems cannot),
// or nil when the Writer holds its lock. An unlocked Writer works, but nothing keeps another
// one off its directory.
func (w *Writer) Unlocked() error { return w.lockErr }

// Close releases the directory. Writes after Close fail.
func (w *Writer) Close() error {
	w.life.Lock()
	defer w.life.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	for _, d := range w.dirs {
		errs = append(errs, d.close())
	}
	w.dirs = nil
	if !w.failed.Load() && !w.unclean.Load() {
		// Not synced: should a crash bring it back, the next Writer only sweeps for nothing.
		if err := w.root.Remove(OpenMarker); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, w.root.Close(), w.lockFile.Close())
	return errors.Join(errs...)
}

// Dir is the directory the Writer writes under, as given to [NewWriter].
func (w *Writer) Dir() string { return w.dir }

// Path is the path of the result file for key in bucket: the Writer's directory joined with
// [RelPath].
func (w *Writer) Path(bucket, key string) string {
	return filepath.Join(w.dir, RelPath(bucket, key))
}

// Write records r in its result file unless the file already records the same object or a
// newer event for the key (see the package documentation). It returns the file's path and
// what was done; on error the outcome is 0. A zero ProcessedAt is set to the current time.
func (w *Writer) Write(r Result) (string, Outcome, error) {
	rel := relSlash(r.Bucket, r.Key)
	p := filepath.Join(w.dir, filepath.FromSlash(rel))
	if r.ProcessedAt.IsZero() {
		r.ProcessedAt = time.Now()
	}
	r.ProcessedAt = r.ProcessedAt.UTC()
	data, err := encode(r)
	if err != nil {
		return p, 0, fmt.Errorf("output: %s: %w", p, err)
	}

	w.life.RLock()
	defer w.life.RUnlock()
	if w.closed {
		return p, 0, fmt.Errorf("output: %s: %w", p, os.ErrClosed)
	}
	unlock := w.paths.lock(rel)
	defer unlock()

	dirRel, name := path.Split(rel)
	dir, release, err := w.openDir(dirRel)
	if err != nil {
		return p, 0, fmt.Errorf("output: %s: %w", p, err)
	}
	defer release()

	old, err := dir.root.ReadFile(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return p, 0, fmt.Errorf("output: %s: %w", p, err)
	default:
		prev, err := decode(old)
		if err != nil {
			break // not a result (say, truncated by hand): replace it
		}
		// Compare with what the file would hold: JSON cannot carry invalid UTF-8.
		var mine Result
		if err := json.Unmarshal(data, &mine); err != nil {
			return p, 0, fmt.Errorf("output: %s: %w", p, err)
		}
		if prev.Bucket != mine.Bucket || prev.Key != mine.Key {
			return p, 0, fmt.Errorf("%w: %s holds bucket %q key %q", ErrCollision, p, prev.Bucket, prev.Key)
		}
		if sameObject(prev, r) {
			return p, Duplicate, nil
		}
		if r.Sequencer != "" && prev.Sequencer != "" && s3event.CompareSequencer(r.Sequencer, prev.Sequencer) < 0 {
			return p, Stale, nil
		}
	}

	if err := w.replace(dir, name, data); err != nil {
		w.failed.Store(true)
		return p, 0, fmt.Errorf("output: %s: %w", p, err)
	}
	return p, Written, nil
}

// openDir returns the directory that holds a result file, creating it if needed, and the
// function to call when done with it. A directory is opened once and kept open, up to
// maxCachedDirs of them. The caller holds w.life for reading.
func (w *Writer) openDir(dirRel string) (*resultDir, func(), error) {
	noop := func() {}
	w.dirMu.Lock()
	d := w.dirs[dirRel]
	w.dirMu.Unlock()
	if d != nil {
		return d, noop, nil
	}
	// Through mkdirs even when the directory exists: another write may have made it and not
	// yet synced its parent, and mkdirs waits for that.
	if err := w.mkdirs(dirRel); err != nil {
		return nil, nil, err
	}
	d, err := openResultDir(w.root, dirRel)
	if err != nil {
		return nil, nil, err
	}
	w.dirMu.Lock()
	defer w.dirMu.Unlock()
	if cur := w.dirs[dirRel]; cur != nil {
		d.close()
		return cur, noop, nil
	}
	if len(w.dirs) < maxCachedDirs {
		w.dirs[dirRel] = d
		return d, noop, nil
	}
	return d, func() { d.close() }, nil
}

// mkdirs creates each missing directory of dirRel and syncs its parent, so that a result
// reported written is still reachable after a crash. Each directory is created under its
// own lock, held until its parent is synced: a goroutine that finds it existing knows that
// it is durable. The syncs of the parents are commit items, all in one round shared with
// concurrent writes: a write that makes three levels waits for one round, not three, and a
// run whose keys spread over many new directories pays one sync per round for them, not one
// per directory.
func (w *Writer) mkdirs(dirRel string) (err error) {
	var made []string // made here, each still locked
	var items []commitItem
	var unlocks []func()
	defer func() {
		if err != nil {
			// Unmade, so that the next write makes them again and syncs their parents: one
			// that found them would take them for durable.
			for _, dir := range slices.Backward(made) {
				w.root.Remove(dir)
			}
		}
		for _, unlock := range slices.Backward(unlocks) {
			unlock()
		}
	}()
	parent := "."
	for part := range strings.SplitSeq(strings.TrimSuffix(dirRel, "/"), "/") {
		dir := path.Join(parent, part)
		unlock := w.paths.lock(dir + "/")
		err := w.root.Mkdir(dir, 0o755)
		switch {
		case errors.Is(err, fs.ErrExist):
			unlock()
		case err != nil:
			unlock()
			return err
		default:
			made, unlocks = append(made, dir), append(unlocks, unlock)
			items = append(items, w.dirItem(parent))
		}
		parent = dir
	}
	if len(items) == 0 {
		return nil
	}
	if err := w.step("syncparent"); err != nil {
		return err
	}
	return w.commits.sync(items...)
}

// dirItem is the entries of the directory at rel (a path under the Writer's directory), to
// be made durable.
func (w *Writer) dirItem(rel string) commitItem {
	return commitItem{key: dirPath(rel), sync: func() error { return durable.SyncDir(w.root.Open, rel) }}
}

// dirPath is the commit key of a directory named by its path under the Writer's directory.
type dirPath string

// replace writes data to a temporary file in dir, makes it durable, renames it to name and
// makes the rename durable; the syncs are shared with concurrent writes (see commits). The
// temporary file never outlives a failed call.
func (w *Writer) replace(dir *resultDir, name string, data []byte) error {
	tmp, err := dir.writeTemp(data, w.step)
	if err != nil {
		return err
	}
	err = w.step("sync")
	if err == nil {
		err = w.commits.sync(tmp.syncItem())
	}
	if err == nil {
		err = w.step("close")
	}
	if cerr := tmp.close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = w.step("rename")
	}
	if err == nil {
		err = dir.rename(tmp.name, name)
	}
	if err != nil {
		dir.remove(tmp.name)
		return err
	}
	// The rename is done: the new result is in place whatever happens next.
	if err := w.step("syncdir"); err != nil {
		return err
	}
	return w.commits.sync(dir.syncItem())
}

func (w *Writer) step(name string) error {
	if w.fail == nil {
		return nil
	}
	return w.fail(name)
}

// sameObject reports whether two results record the same version of the same object, as
// told by the event: then the analysis would give the same figures.
func sameObject(a, b Result) bool {
	return s3event.CompareSequencer(a.Sequencer, b.Sequencer) == 0 &&
		trimETag(a.ETag) == trimETag(b.ETag) && a.VersionID == b.VersionID
}

// trimETag drops the quotes that S3's HEAD and GET answers put around an ETag and that its
// event notifications do not.
func trimETag(s string) string { return strings.Trim(s, `"`) }

// Read reads the result file at path.
func Read(path string) (Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Result{}, fmt.Errorf("output: %w", err)
	}
	r, err := decode(data)
	if err != nil {
		return Result{}, fmt.Errorf("output: %s: %w", path, err)
	}
	return r, nil
}

func encode(r Result) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keys with & < > stay readable
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// wire is Result with every field required: a file that lacks one was not written by this
// package and is not trusted to order events.
type wire struct {
	Bucket      *string    `json:"bucket"`
	Key         *string    `json:"key"`
	VersionID   *string    `json:"version_id"`
	ETag        *string    `json:"etag"`
	Size        *int64     `json:"size"`
	Bytes       *int64     `json:"bytes"`
	Lines       *int64     `json:"lines"`
	Encoding    *string    `json:"encoding"`
	Sequencer   *string    `json:"sequencer"`
	MessageID   *string    `json:"message_id"`
	ProcessedAt *time.Time `json:"processed_at"`
}

func decode(data []byte) (Result, error) {
	var v wire
	if err := json.Unmarshal(data, &v); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if v.Bucket == nil || v.Key == nil || v.VersionID == nil || v.ETag == nil ||
		v.Size == nil || v.Bytes == nil || v.Lines == nil || v.Encoding == nil ||
		v.Sequencer == nil || v.MessageID == nil || v.ProcessedAt == nil {
		return Result{}, fmt.Errorf("%w: a field is missing", ErrInvalid)
	}
	return Result{
		Bucket: *v.Bucket, Key: *v.Key, VersionID: *v.VersionID, ETag: *v.ETag,
		Size: *v.Size, Bytes: *v.Bytes, Lines: *v.Lines, Encoding: *v.Encoding,
		Sequencer: *v.Sequencer, MessageID: *v.MessageID, ProcessedAt: *v.ProcessedAt,
	}, nil
}

// pathLocks serialises the check and rename of one result file, and the making of one
// directory, within a Writer.
type pathLocks struct {
	mu sync.Mutex
	m  map[string]*pathLock
}

// pathLock is a channel, not a mutex, so that a writer waiting for it is durably blocked in
// the sense of testing/synctest, which is how the tests see the wait.
type pathLock struct {
	ch   chan struct{}
	refs int // guarded by pathLocks.mu
}

func (t *pathLocks) lock(key string) (unlock func()) {
	t.mu.Lock()
	if t.m == nil {
		t.m = make(map[string]*pathLock)
	}
	l := t.m[key]
	if l == nil {
		l = &pathLock{ch: make(chan struct{}, 1)}
		t.m[key] = l
	}
	l.refs++
	t.mu.Unlock()

	l.ch <- struct{}{}
	return func() {
		<-l.ch
		t.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(t.m, key)
		}
		t.mu.Unlock()
	}
}

// ownSlack is how far before NewWriter began a temporary file may seem to have been modified
// and still be taken for the Writer's own: file times come from a clock that ticks every few
// milliseconds (up to 10). A crashed writer's last file is older than that: a process takes
// longer to be started again and reach NewWriter (palleto run: 40 ms or more).
const ownSlack = 20 * time.Millisecond

// Sweep removes the temporary files (".palleto-*.tmp") that a crash left under the directory
// and that are older than age: a write holds its temporary file for milliseconds, so one
// that old belongs to no write. It stops when ctx ends and returns how many it removed.
// Result files are never touched: escaped names cannot start with ".palleto-". A Sweep that
// ends with none left from before the Writer opened, young or old, makes the Writer clean
// (see [Writer.Unclean]).
func (w *Writer) Sweep(ctx context.Context, age time.Duration) (int, error) {
	cutoff := time.Now().Add(-age)
	removed, young := 0, 0
	err := fs.WalkDir(w.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		name := d.Name()
		if !d.Type().IsRegular() || !strings.HasPrefix(name, tempPrefix) || !strings.HasSuffix(name, ".tmp") {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // renamed or removed meanwhile
		}
		if err != nil {
			return err
		}
		if info.ModTime().After(cutoff) {
			// Young: kept. One of this Writer's own writes (modified since it opened, give
			// or take the file system clock's coarseness) is no leftover.
			if info.ModTime().Before(w.opened.Add(-ownSlack)) {
				young++
			}
			return nil
		}
		if err := w.root.Remove(filepath.FromSlash(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		removed++
		return nil
	})
	if err != nil {
		return removed, fmt.Errorf("output: sweep %s: %w", w.dir, err)
	}
	if young == 0 {
		w.unclean.Store(false)
	}
	return removed, nil
}
