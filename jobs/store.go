package jobs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/palleto/palleto/internal/durable"
)

// FileName is the name of the queue's file in its data directory.
const FileName = "jobs.db"

var bucketJobs = []byte("jobs")

// store writes the queue's changes to a bbolt file. One goroutine, the writer, owns the
// transactions: it takes every change made since its last commit and commits them together,
// so that one fsync covers all the Enqueue calls that arrived while the previous one ran
// (group commit). An idle store commits a lone change at once; nothing waits for a batch to
// fill.
type store struct {
	db     *bolt.DB
	log    *slog.Logger
	onFail func(error)

	mu       sync.Mutex
	pending  []write
	spare    []write
	waiters  []chan error
	inflight bool // the writer holds changes that are not yet committed

	kickc chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

// write is one change: the record of an id, or its removal when val is nil.
type write struct {
	key string
	val []byte
}

func openStore(dir string, log *slog.Logger) (*store, []*entry, error) {
	if err := durable.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("jobs: data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	_, statErr := os.Lstat(path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("jobs: opening %s: %w", path, err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		// bbolt syncs a new file's pages, not its name: without the directory synced, a crash
		// could take the file, and the jobs accepted into it, with it. A file whose name could
		// not be synced is removed, so that the next Open makes it, and syncs it, anew.
		if err := durable.SyncDir(os.Open, dir); err != nil {
			db.Close()
			os.Remove(path)
			return nil, nil, fmt.Errorf("jobs: syncing %s: %w", dir, err)
		}
	}
	var restored []*entry
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketJobs)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			e, err := decode(string(k), v)
			if err != nil {
				return err
			}
			restored = append(restored, e)
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("jobs: reading %s: %w", path, err)
	}
	s := &store{
		db:    db,
		log:   log,
		kickc: make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	return s, restored, nil
}

// start runs the writer; onFail is told of a commit that failed.
func (s *store) start(onFail func(error)) {
	s.onFail = onFail
	go s.run()
}

func (s *store) put(e *entry) {
	val := encode(e)
	s.mu.Lock()
	s.pending = append(s.pending, write{key: e.id, val: val})
	s.mu.Unlock()
}

func (s *store) delete(id string) {
	s.mu.Lock()
	s.pending = append(s.pending, write{key: id})
	s.mu.Unlock()
}

func (s *store) kick() { signal(s.kickc) }

// waiter returns a channel that receives the outcome of the commit that covers every change
// made so far, or nil when all of them are already on disk.
func (s *store) waiter() <-chan error {
	s.mu.Lock()
	if len(s.pending) == 0 && !s.inflight {
		s.mu.Unlock()
		return nil
	}
	c := make(chan error, 1)
	s.waiters = append(s.waiters, c)
	s.mu.Unlock()
	s.kick()
	return c
}

func (s *store) run() {
	defer close(s.done)
	for {
		select {
		case <-s.kickc:
			s.flush()
		case <-s.quit:
			s.flush()
			return
		}
	}
}

// flush commits the pending changes and answers the waiters. A waiter that arrived while a
// commit was in flight is answered by the next flush, after that commit: the writer is the
// only one that commits, in order.
func (s *store) flush() {
	s.mu.Lock()
	ws, waiters := s.pending, s.waiters
	s.pending, s.spare, s.waiters = s.spare[:0], nil, nil
	s.inflight = len(ws) > 0
	s.mu.Unlock()

	var err error
	if len(ws) > 0 {
		err = s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketJobs)
			for _, w := range ws {
				var err error
				if w.val == nil {
					err = b.Delete([]byte(w.key))
				} else {
					err = b.Put([]byte(w.key), w.val)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			err = &StoreError{err}
			s.log.Error("jobs: store failed; the queue stops", "changes", len(ws), "err", err)
			s.onFail(err)
		}
	}
	clear(ws)
	s.mu.Lock()
	s.inflight = false
	s.spare = ws[:0]
	s.mu.Unlock()
	for _, c := range waiters {
		c <- err
	}
}

// close stops the writer after a last flush and closes the file.
func (s *store) close() error {
	close(s.quit)
	<-s.done
	return s.db.Close()
}

// The record of an id: a version byte, the state, then varints (failed attempts, queue
// order, due time and time of death in Unix nanoseconds, zero for none) and the last error.
// Version 2 adds the time it was queued and when it became ready, and its latest failed
// attempts (attempt, start, end, error). Version 1 records are still read.
const recordVersion = 2

func encode(e *entry) []byte {
	st := e.state
	if st == running {
		st = waiting // a run is never stored: after a crash it runs again
	}
	size := 2 + 6*binary.MaxVarintLen64 + len(e.lastErr)
	for _, a := range e.history {
		size += 4*binary.MaxVarintLen64 + len(a.Error)
	}
	b := make([]byte, 0, size)
	b = append(b, recordVersion, byte(st))
	b = binary.AppendUvarint(b, uint64(e.attempts))
	b = binary.AppendUvarint(b, e.seq)
	b = binary.AppendVarint(b, unixNano(e.due))
	b = binary.AppendVarint(b, unixNano(e.diedAt))
	b = appendString(b, e.lastErr)
	b = binary.AppendVarint(b, unixNano(e.queued))
	b = binary.AppendVarint(b, unixNano(e.ready))
	b = binary.AppendUvarint(b, uint64(len(e.history)))
	for _, a := range e.history {
		b = binary.AppendUvarint(b, uint64(a.Attempt))
		b = binary.AppendVarint(b, unixNano(a.Started))
		b = binary.AppendVarint(b, unixNano(a.Ended))
		b = appendString(b, a.Error)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// A RecordError reports a record in the data directory that cannot be read.
type RecordError struct {
	ID     string
	Reason string
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("jobs: record of %q: %s", e.ID, e.Reason)
}

func decode(id string, b []byte) (*entry, error) {
	if len(b) < 2 || (b[0] != 1 && b[0] != recordVersion) {
		return nil, &RecordError{id, "unknown format"}
	}
	version := b[0]
	e := &entry{id: id, state: state(b[1])}
	switch e.state {
	case waiting, retrying, dead:
	case running:
		e.state = waiting
	default:
		return nil, &RecordError{id, fmt.Sprintf("unknown state %d", b[1])}
	}
	r := recordReader{b: b[2:]}
	e.attempts = int(r.uvarint())
	e.seq = r.uvarint()
	e.due = fromUnixNano(r.varint())
	e.diedAt = fromUnixNano(r.varint())
	if version == 1 {
		// The last error runs to the end of a version 1 record.
		if n := r.uvarint(); !r.bad && n != uint64(len(r.b)) {
			r.bad = true
		}
		e.lastErr = string(r.b)
		r.b = nil
	} else {
		e.lastErr = r.string()
		e.queued = fromUnixNano(r.varint())
		e.ready = fromUnixNano(r.varint())
		n := r.uvarint()
		if n > maxHistory {
			r.bad = true
		}
		for i := uint64(0); i < n && !r.bad; i++ {
			a := Attempt{Attempt: int(r.uvarint())}
			a.Started = fromUnixNano(r.varint())
			a.Ended = fromUnixNano(r.varint())
			a.Error = r.string()
			e.history = append(e.history, a)
		}
	}
	if r.bad || len(r.b) != 0 {
		return nil, &RecordError{id, "truncated"}
	}
	return e, nil
}

// recordReader reads the varints and strings of a record; bad is set at the first that
// does not fit.
type recordReader struct {
	b   []byte
	bad bool
}

func (r *recordReader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) string() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
