package output

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

// wholeMin is the number of distinct items from which a round syncs the whole file system
// (where the Writer can) rather than each item: below it, a file's or a directory's own
// fsync writes out less.
const wholeMin = 3

// roundSpacing is a Writer's least time from the start of one round of syncs to the start of
// the next (see commits). Measured at 0 ms in the pipeline benchmark (docs/benchmarks.md,
// sixth round), 3 ms cut the sync calls of 1,000 results from 280–400 to 130–185, and the
// run's time by a tenth in an A/B series; a write waits for it only while another round
// began less than that ago.
const roundSpacing = 3 * time.Millisecond

// errNoWholeSync is returned by a whole-file-system sync that the system refuses (an old
// kernel, a sandbox that filters the call): the Writer falls back to syncing each item.
var errNoWholeSync = errors.New("output: the file system cannot be synced as a whole here")

// commits makes durable what writes have put on disk (a temporary file's data, a directory's
// new entries) in rounds shared by concurrent writes: group commit. A write asks for one item
// and returns once a round that began after it asked has made the item durable.
//
// A round syncs each distinct item once. Where the Writer can sync its whole file system with
// one call that reports write errors (Linux's syncfs, since 5.8), a round of wholeMin items or
// more makes that one call instead, and pays for one flush of the device rather than one per
// item; that call also writes out other files' pending data on the same file system.
//
// The write that opens a round runs it, after the round before has ended and no sooner than
// spacing after that one began; writes that arrive meanwhile join it. So rounds never
// overlap, no write waits for more than the round running when it asked (and the spacing)
// and its own, and no write runs a round for others after its own has ended.
//
// The spacing is for a busy Writer: a round's cost is mostly fixed (a flush of the device,
// a pass over the file system's dirty inodes), and rounds that follow each other at once,
// as results come one by one, hold one or two items each; spaced, they hold several. A write
// that comes to an idle Writer, long after the last round, is not held back.
type commits struct {
	spacing time.Duration // the least time from a round's start to the next one's

	mu        sync.Mutex
	running   *round    // nil when no round runs
	next      *round    // the round that writes join until it runs; nil when none has asked
	lastStart time.Time // when the last round began
	// whole syncs the whole file system, or is nil where that is not possible. Guarded by mu.
	whole func() error
}

// commitItem is something to make durable. Items with equal keys are synced once per round.
type commitItem struct {
	key  any
	sync func() error
}

type round struct {
	items []*pending
	done  chan struct{}
}

type pending struct {
	item commitItem
	err  error
}

// sync returns once the items have been made durable by a round that began after the call,
// all by the same one, with the first error that round met for them.
func (c *commits) sync(items ...commitItem) error {
	ps := make([]*pending, len(items))
	for i, it := range items {
		ps[i] = &pending{item: it}
	}
	firstErr := func() error {
		for _, p := range ps {
			if p.err != nil {
				return p.err
			}
		}
		return nil
	}
	c.mu.Lock()
	if r := c.next; r != nil {
		r.items = append(r.items, ps...)
		c.mu.Unlock()
		<-r.done
		return firstErr()
	}
	r := &round{items: ps, done: make(chan struct{})}
	prev := c.running
	wait := c.spacing - time.Since(c.lastStart)
	if prev == nil && wait <= 0 {
		c.running, c.lastStart = r, time.Now()
		c.mu.Unlock()
	} else {
		c.next = r
		c.mu.Unlock()
		if prev != nil {
			<-prev.done
			c.mu.Lock()
			wait = c.spacing - time.Since(c.lastStart)
			c.mu.Unlock()
		}
		if wait > 0 {
			time.Sleep(wait)
		}
		c.mu.Lock()
		c.next, c.running = nil, r // closed to late comers: they open the round after it
		c.lastStart = time.Now()
		c.mu.Unlock()
	}
	c.run(r.items) // r.items no longer changes: nothing joins a running round
	c.mu.Lock()
	if c.running == r {
		c.running = nil
	}
	c.mu.Unlock()
	close(r.done)
	return firstErr()
}

// run syncs the items of one round and sets each one's error.
func (c *commits) run(items []*pending) {
	distinct := make(map[any][]*pending, len(items))
	order := make([]commitItem, 0, len(items))
	for _, p := range items {
		if _, ok := distinct[p.item.key]; !ok {
			order = append(order, p.item)
		}
		distinct[p.item.key] = append(distinct[p.item.key], p)
	}
	c.mu.Lock()
	whole := c.whole
	c.mu.Unlock()
	if whole != nil && len(order) >= wholeMin {
		err := whole()
		if !errors.Is(err, errNoWholeSync) {
			for _, p := range items {
				p.err = err
			}
			return
		}
		c.mu.Lock()
		c.whole = nil
		c.mu.Unlock()
	}
	for _, it := range order {
		err := it.sync()
		for _, p := range distinct[it.key] {
			p.err = err
		}
	}
}

// releaseAtLeast reports whether a kernel release string ("6.1.0-13-amd64", "5.8.0") names
// version major.minor or later. A string it cannot read is not.
func releaseAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err := strconv.Atoi(parts[0])
	if err != nil {
		return false
	}
	digits := strings.IndexFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
	if digits < 0 {
		digits = len(parts[1])
	}
	mi, err := strconv.Atoi(parts[1][:digits])
	if err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
