package app

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/palleto/palleto/flow"
)

// feed runs the tuner for n intervals against a model of the fetch stage: rate(limit) is
// the objects/s it reaches at that limit, with every slot busy and objects of size bytes.
func feed(t *tuner, n int, size int64, rate func(limit int) float64) (limits []int) {
	for range n {
		l := t.limit
		r := rate(l)
		done := int64(r * tuneInterval.Seconds())
		lat := time.Duration(float64(time.Second) * float64(l) / r)
		limits = append(limits, t.next(fetchSample{Done: done, Busy: time.Duration(done) * lat, Bytes: done * size, Elapsed: tuneInterval}))
	}
	return limits
}

func TestTunerGrowsWhileThroughputGrows(t *testing.T) {
	// Downloads limited by their round trip: 100 objects/s per slot, up to 2,000 objects/s.
	tu := newTuner()
	limits := feed(tu, 40, 4<<10, func(l int) float64 { return 100 * float64(min(l, 20)) })
	if got := limits[1]; got != 32 {
		t.Errorf("after 2 intervals the limit is %d, want 32 (8 → 16 → 32 while latency holds)", got)
	}
	off := 0
	for _, l := range limits[5:] {
		if l < 20 {
			t.Errorf("limit %d below the plateau (20)", l)
		}
		if l > 40 {
			off++ // a probe of a larger limit
		}
	}
	if off > len(limits[5:])/5 { // a probe lasts two intervals: the second confirms the first
		t.Errorf("%d of %d intervals above 40: want the limit to stay on the plateau but for probes (%v)", off, len(limits[5:]), limits)
	}
}

func TestTunerHoldsWhenThroughputDoesNot(t *testing.T) {
	// CPU-bound: more downloads in flight bring nothing.
	tu := newTuner()
	limits := feed(tu, 30, 4<<10, func(int) float64 { return 500 })
	if last := limits[len(limits)-1]; last > 2*tuneStart {
		t.Errorf("limit %d after 30 intervals of flat throughput, want at most %d", last, 2*tuneStart)
	}
	at4 := 0
	for _, l := range limits {
		if l == tuneStart {
			at4++
		}
	}
	if at4 < 20 {
		t.Errorf("limit was %d for %d of 30 intervals, want most of them (limits %v)", tuneStart, at4, limits)
	}
}

// One sample after a growth that says to step back (the growth's own cost, or chance) is not
// enough: the tuner stays, and steps back only if the next sample says so too.
func TestTunerConfirmsBeforeSteppingBack(t *testing.T) {
	// 100 objects/s per slot, 10 ms each, with no plateau below 64.
	sample := func(limit int, lat time.Duration) fetchSample {
		done := int64(float64(limit) * tuneInterval.Seconds() / lat.Seconds())
		return fetchSample{Done: done, Busy: time.Duration(done) * lat, Bytes: done << 12, Elapsed: tuneInterval}
	}
	tu := newTuner()
	if got := tu.next(sample(8, 10*time.Millisecond)); got != 16 {
		t.Fatalf("limit %d after a good sample at 8, want 16", got)
	}
	// At 16, one sample three times as slow: no more throughput, latency did not hold.
	if got := tu.next(sample(16, 30*time.Millisecond)); got != 16 {
		t.Fatalf("limit %d after one bad sample at 16, want 16 (a second sample decides)", got)
	}
	if got := tu.next(sample(16, 10*time.Millisecond)); got != 32 {
		t.Fatalf("limit %d after a good second sample at 16, want 32", got)
	}
	// At 32, two bad samples in a row: back to 16.
	if got := tu.next(sample(32, 30*time.Millisecond)); got != 32 {
		t.Fatalf("limit %d after one bad sample at 32, want 32", got)
	}
	if got := tu.next(sample(32, 30*time.Millisecond)); got != 16 {
		t.Fatalf("limit %d after two bad samples at 32, want 16", got)
	}
}

func TestTunerKeepsWithinMemory(t *testing.T) {
	// 8 MiB objects: 64 MiB hold 8 of them.
	tu := newTuner()
	limits := feed(tu, 20, 8<<20, func(l int) float64 { return 10 * float64(l) })
	for i, l := range limits {
		if l > 8 {
			t.Fatalf("interval %d: limit %d with 8 MiB objects, want at most 8", i, l)
		}
	}
	if limits[len(limits)-1] != 8 {
		t.Errorf("limit %d, want 8 (throughput grows up to the memory bound)", limits[len(limits)-1])
	}
}

func TestTunerDoesNotGrowWhenStarved(t *testing.T) {
	tu := newTuner()
	for i := range 20 {
		// 40 objects/s at 4 slots of 10 ms each: a tenth of the slots in use.
		got := tu.next(fetchSample{Done: 8, Busy: 80 * time.Millisecond, Bytes: 8 << 10, Elapsed: tuneInterval})
		if got != tuneStart {
			t.Fatalf("interval %d: limit %d while the downloads wait for work, want %d", i, got, tuneStart)
		}
	}
	if got := tu.next(fetchSample{Elapsed: tuneInterval}); got != tuneStart {
		t.Errorf("an interval with nothing done moved the limit to %d", got)
	}
}

func TestParseWorkers(t *testing.T) {
	for _, c := range []struct{ fetchers, want int }{{1, 3}, {4, 3}, {8, 4}, {16, 6}, {64, 10}} {
		if got := parseWorkers(c.fetchers); got != c.want {
			t.Errorf("parseWorkers(%d) = %d, want %d", c.fetchers, got, c.want)
		}
	}
}

// TestTuneSamplesFastDownloadsEarly checks the loop around the tuner: the time before the
// first download is not part of a sample, and once every slot of the limit has finished a
// download the sample is taken, before tuneInterval is over; fewer downloads are sampled once
// the interval is over.
func TestTuneSamplesFastDownloadsEarly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const look = tuneInterval / tuneLooks
		var m fetchMeter
		fetch, parse := flow.NewLimit(tuneStart), flow.NewLimit(parseWorkers(tuneStart))
		var chosen atomic.Int64
		stop, done := make(chan struct{}), make(chan struct{})
		t0 := time.Now()
		go tune(&m, newTuner(), fetch, parse, &chosen, stop, done)
		defer func() { close(stop); <-done }()
		download := func(n int, d time.Duration) {
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					meteredFetch(func(context.Context, objectJob) ([]*fetched, error) {
						time.Sleep(d)
						return nil, nil
					}, &m)(t.Context(), objectJob{})
				})
			}
			wg.Wait()
		}
		until := func(d time.Duration) { time.Sleep(time.Until(t0.Add(d))); synctest.Wait() }

		// Start-up: no download for three intervals. Then every slot busy for most of a
		// look: at the next look the sample shows it, and the limit grows.
		until(3 * tuneInterval)
		download(tuneStart, look*4/5)
		until(3*tuneInterval + look + time.Millisecond)
		if got := fetch.N(); got != 2*tuneStart {
			t.Fatalf("limit %d a look after the first downloads, want %d: sampled before the interval ended, its start-up left out", got, 2*tuneStart)
		}
		if got, want := parse.N(), parseWorkers(2*tuneStart); got != want {
			t.Errorf("parse limit %d, want %d", got, want)
		}
		if got := chosen.Load(); got != 2*tuneStart {
			t.Errorf("chosen %d, want %d", got, 2*tuneStart)
		}

		// Two downloads for sixteen slots: sampled when the interval is over, not before.
		download(2, look/2)
		until(3*tuneInterval + look + tuneInterval - look/2)
		if got := m.done.Load(); got != 2 {
			t.Fatalf("%d downloads left in the meter before the interval ended, want the 2 not yet sampled", got)
		}
		until(3*tuneInterval + look + tuneInterval + time.Millisecond)
		if got := m.done.Load(); got != 0 {
			t.Fatalf("%d downloads left in the meter after the interval ended, want them sampled", got)
		}
	})
}
