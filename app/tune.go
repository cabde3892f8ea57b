package app

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/palleto/palleto/flow"
)

// Finding the number of downloads in flight. Unless --fetchers pins it, the fetch stage runs
// with up to tuneMax workers under a flow.Limit that a tuner moves every tuneInterval: it
// grows while throughput grows with it, goes back to the last good value when growing
// stopped paying, probes upwards now and then, and never lets the downloads in flight hold
// more than tuneMemory of content (by the average object size seen so far).
const (
	tuneInterval = 200 * time.Millisecond
	tuneStart    = 4
	tuneMax      = 64
	tuneMemory   = 64 << 20
	// tuneGain is the throughput gain that makes a larger limit worth keeping.
	tuneGain = 1.1
	// tuneBusy is the share of the limit's download slots that must be in use for a larger
	// limit to be tried: below it, downloads wait for work, not the other way round.
	tuneBusy = 0.5
	// tuneProbe is how many intervals the tuner holds a limit before it tries a larger one.
	tuneProbe = 10
)

// fetchSample is what the fetch stage did during one interval.
type fetchSample struct {
	Done    int64         // downloads finished
	Busy    time.Duration // their durations added up
	Bytes   int64         // their sizes added up
	Elapsed time.Duration // length of the interval
}

// tuner chooses the fetch limit from samples; it is a pure function of the samples it is fed.
type tuner struct {
	limit     int
	max       int
	prevLimit int     // the limit before the last change
	prevRate  float64 // objects/s at prevLimit (0: none yet)
	avgSize   float64 // bytes per object, averaged
	holds     int     // intervals since the last change
}

func newTuner() *tuner { return &tuner{limit: tuneStart, max: tuneMax} }

// next takes the sample of the interval that ran at t.limit and returns the limit for the
// next one.
func (t *tuner) next(s fetchSample) int {
	if s.Done <= 0 || s.Elapsed <= 0 {
		return t.limit // nothing came through: nothing to learn
	}
	rate := float64(s.Done) / s.Elapsed.Seconds()
	busy := s.Busy.Seconds() / (s.Elapsed.Seconds() * float64(t.limit))
	size := float64(s.Bytes) / float64(s.Done)
	if t.avgSize == 0 {
		t.avgSize = size
	} else {
		t.avgSize = 0.8*t.avgSize + 0.2*size
	}
	memCap := t.max
	if t.avgSize > 0 {
		memCap = int(min(float64(t.max), math.Max(1, tuneMemory/t.avgSize)))
	}

	t.holds++
	switch {
	case t.prevRate == 0:
		t.prevLimit, t.prevRate = t.limit, rate
		if busy >= tuneBusy {
			t.grow(2 * t.limit)
		}
	case t.limit > t.prevLimit:
		if rate >= t.prevRate*tuneGain {
			// Growing paid: keep going, doubling while it pays.
			t.prevLimit, t.prevRate = t.limit, rate
			if busy >= tuneBusy {
				t.grow(2 * t.limit)
			}
		} else {
			// It did not: back to the last good limit.
			t.limit, t.holds = t.prevLimit, 0
		}
	default:
		// Holding: follow the rate at this limit, and probe a larger one now and then.
		t.prevLimit, t.prevRate = t.limit, 0.5*t.prevRate+0.5*rate
		if busy >= tuneBusy && t.holds >= tuneProbe {
			t.grow(t.limit + max(1, t.limit/4))
		}
	}
	t.limit = min(t.limit, memCap)
	return t.limit
}

func (t *tuner) grow(to int) {
	if to = min(to, t.max); to != t.limit {
		t.limit, t.holds = to, 0
	}
}

// fetchMeter counts what the fetch stage does, for the tuner.
type fetchMeter struct {
	done, busy, bytes atomic.Int64
}

func (m *fetchMeter) record(d time.Duration, bytes int64) {
	m.done.Add(1)
	m.busy.Add(int64(d))
	m.bytes.Add(max(bytes, 0))
}

func (m *fetchMeter) take(elapsed time.Duration) fetchSample {
	return fetchSample{Done: m.done.Swap(0), Busy: time.Duration(m.busy.Swap(0)), Bytes: m.bytes.Swap(0), Elapsed: elapsed}
}

// parseWorkers is how many parse workers keep the receives ahead of fetchers downloads in
// flight. Each asks for one full receive (10 messages) once all of its last one has gone
// on; a receive can take a few times as long as a download (a busy SQS), so there are
// enough to keep about twice the downloads' demand received or on its way, and never more
// than the source's 10 receives in flight.
func parseWorkers(fetchers int) int {
	return min(10, (fetchers+4)/5+2)
}

// tune moves the limits every tuneInterval until stop is closed; done is closed when it
// returns. It owns nothing else.
func tune(m *fetchMeter, t *tuner, fetch, parse *flow.Limit, chosen *atomic.Int64, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(tuneInterval)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			n := t.next(m.take(now.Sub(last)))
			last = now
			fetch.Set(n)
			parse.Set(parseWorkers(n))
			chosen.Store(int64(n))
		}
	}
}

// meteredFetch wraps the fetch handler to feed m.
func meteredFetch(fetch func(context.Context, objectJob) ([]*fetched, error), m *fetchMeter) func(context.Context, objectJob) ([]*fetched, error) {
	return func(ctx context.Context, j objectJob) ([]*fetched, error) {
		began := time.Now()
		fs, err := fetch(ctx, j)
		var size int64
		for _, f := range fs {
			size += f.info.Size
		}
		m.record(time.Since(began), size)
		return fs, err
	}
}

// writeWorkers is the concurrency of the write stage. Each result is synced on its own
// before its message is acknowledged; with many written at once, the file system commits
// their syncs together, and the output.Writer shares the directory syncs.
const writeWorkers = 16
