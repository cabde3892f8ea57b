package app

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/palleto/palleto/flow"
)

// Finding the number of downloads in flight. Unless --fetchers pins it, the fetch stage runs
// with up to tuneMax workers under a flow.Limit that a tuner moves after every sample (one
// per tuneInterval, or sooner when downloads are fast: see tune): it doubles the limit while
// the downloads' latency holds (more in flight is then more throughput: the downloads wait
// on the network, not on a CPU or a server that is full), goes back to the last limit when a
// larger one raised latency without raising throughput by tuneGain in two samples in a row
// (the first one after a growth also pays for the growth: new connections, stacks grown), and
// after a step back
// waits tuneProbe samples before it tries again (the lowest latency seen drifts up slowly, so
// that it is learnt again when all downloads get slower, and larger limits are probed now and
// then). Downloads in flight never hold more than tuneMemory of content (by the average object
// size seen so far).
const (
	tuneInterval = 200 * time.Millisecond
	tuneStart    = 8
	tuneMax      = 64
	tuneMemory   = 64 << 20
	// tuneGain is the throughput gain that makes a larger limit worth its latency.
	tuneGain = 1.1
	// tuneHold is how much above the lowest latency seen the latency may be and still
	// count as holding.
	tuneHold = 1.5
	// tuneBusy is the share of the limit's download slots that must be in use for a larger
	// limit to be tried: below it, downloads wait for work, not the other way round.
	tuneBusy = 0.5
	// tuneProbe is how many samples the tuner waits after a step back before it grows.
	tuneProbe = 10
	// tuneLooks is how many times an interval the meter is looked at, and tuneTurns how many
	// downloads per slot of the limit make a sample before the interval is over: see tune.
	tuneLooks = 4
	tuneTurns = 1
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
	prevLimit int           // the limit before the last growth
	prevRate  float64       // objects/s at prevLimit (0: none yet)
	minLat    time.Duration // the lowest mean download latency seen, drifting up slowly
	avgSize   float64       // bytes per object, averaged
	wait      int           // intervals left before growing again
	doubt     bool          // the first sample after a growth said to step back; the next decides
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
	lat := s.Busy / time.Duration(s.Done)
	size := float64(s.Bytes) / float64(s.Done)
	if t.avgSize == 0 {
		t.avgSize = size
	} else {
		t.avgSize = 0.8*t.avgSize + 0.2*size
	}
	if t.minLat == 0 || lat < t.minLat {
		t.minLat = lat
	} else {
		t.minLat += t.minLat / 50 // relearn slowly when every download got slower
	}
	memCap := t.max
	if t.avgSize > 0 {
		memCap = int(min(float64(t.max), math.Max(1, tuneMemory/t.avgSize)))
	}

	holds := float64(lat) <= tuneHold*float64(t.minLat)
	grew := t.limit > t.prevLimit && t.prevRate > 0
	t.wait = max(t.wait-1, 0)
	doubt := false
	switch {
	case grew && !holds && rate < t.prevRate*tuneGain && !t.doubt:
		// The first sample at a larger limit may say so because of the growth itself (new
		// connections, stacks grown, a collection) or by chance: a second sample at the same
		// limit decides.
		doubt = true
	case grew && !holds && rate < t.prevRate*tuneGain:
		// The last growth bought latency, not throughput: back to the limit before it.
		t.limit, t.wait = t.prevLimit, tuneProbe
	case holds && busy >= tuneBusy && t.wait == 0:
		t.prevLimit, t.prevRate = t.limit, rate
		t.limit = min(2*t.limit, t.max)
	default:
		t.prevLimit, t.prevRate = t.limit, rate
	}
	t.doubt = doubt
	t.limit = min(t.limit, memCap)
	return t.limit
}

// fetchMeter counts what the fetch stage does, for the tuner.
type fetchMeter struct {
	done, busy, bytes atomic.Int64
	first             atomic.Int64 // when the first download began, in Unix nanoseconds; 0 before
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

// tune moves the limits until stop is closed; done is closed when it returns. It owns
// nothing else. It looks at the meter every tuneInterval/tuneLooks, and feeds the tuner a
// sample once tuneInterval has passed or every download slot of the limit has finished
// tuneTurns downloads, whichever comes first: fast downloads are measured, and the limit
// found, in a fraction of an interval.
func tune(m *fetchMeter, t *tuner, fetch, parse *flow.Limit, chosen *atomic.Int64, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(tuneInterval / tuneLooks)
	defer tick.Stop()
	last := time.Now()
	n := t.limit
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			if first := m.first.Load(); first == 0 {
				last = now // no download yet: the first interval begins with the first one
				continue
			} else if began := time.Unix(0, first); began.After(last) {
				last = began
			}
			if now.Sub(last) < tuneInterval && m.done.Load() < int64(tuneTurns*n) {
				continue
			}
			n = t.next(m.take(now.Sub(last)))
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
		m.first.CompareAndSwap(0, began.UnixNano())
		fs, err := fetch(ctx, j)
		var size int64
		for _, f := range fs {
			size += f.info.Size
		}
		m.record(time.Since(began), size)
		return fs, err
	}
}

// writeWorkers is the concurrency of the write stage. Each result is durable before its
// message is acknowledged; the output.Writer makes the results written at once durable
// together, in rounds, so that the more wait, the fewer syncs each costs.
const writeWorkers = 64
