package app

import (
	"testing"
	"time"
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
	if off > len(limits[5:])/8 {
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
