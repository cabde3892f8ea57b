package jobs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
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
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("jobs: data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("jobs: opening %s: %w", path, err)
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
const recordVersion = 1

func encode(e *entry) []byte {
	st := e.state
	if st == running {
		st = waiting // a run is never stored: after a crash it runs again
	}
	b := make([]byte, 0, 2+4*binary.MaxVarintLen64+len(e.lastErr))
	b = append(b, recordVersion, byte(st))
	b = binary.AppendUvarint(b, uint64(e.attempts))
	b = binary.AppendUvarint(b, e.seq)
	b = binary.AppendVarint(b, unixNano(e.due))
	b = binary.AppendVarint(b, unixNano(e.diedAt))
	b = binary.AppendUvarint(b, uint64(len(e.lastErr)))
	return append(b, e.lastErr...)
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
	if len(b) < 2 || b[0] != recordVersion {
		return nil, &RecordError{id, "unknown format"}
	}
	e := &entry{id: id, state: state(b[1])}
	switch e.state {
	case waiting, retrying, dead:
	case running:
		e.state = waiting
	default:
		return nil, &RecordError{id, fmt.Sprintf("unknown state %d", b[1])}
	}
	b = b[2:]
	var vals [5]uint64
	for i := range vals {
		var n int
		if i == 2 || i == 3 {
			var v int64
			v, n = binary.Varint(b)
			vals[i] = uint64(v)
		} else {
			vals[i], n = binary.Uvarint(b)
		}
		if n <= 0 {
			return nil, &RecordError{id, "truncated"}
		}
		b = b[n:]
	}
	if vals[4] != uint64(len(b)) {
		return nil, &RecordError{id, "truncated"}
	}
	e.attempts = int(vals[0])
	e.seq = vals[1]
	e.due = fromUnixNano(int64(vals[2]))
	e.diedAt = fromUnixNano(int64(vals[3]))
	e.lastErr = string(b)
	return e, nil
}
