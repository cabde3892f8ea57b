package admin

import (
	"slices"
	"sync"
	"time"
)

// HistoryLen is how many samples each series keeps: 10 minutes at one a second.
const HistoryLen = 600

// history keeps the latest samples of named series, all taken at the same times, in rings.
type history struct {
	mu     sync.Mutex
	seq    uint64 // samples taken so far; the latest has number seq
	times  []int64
	series map[string][]float64 // each as long as times; a series that starts late is 0 before
	names  []string             // in the order they first appeared
}

func newHistory() *history {
	return &history{series: map[string][]float64{}}
}

// add appends one sample of every series in vals, taken at t.
func (h *history) add(t time.Time, vals map[string]float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	full := len(h.times) == HistoryLen
	if full {
		copy(h.times, h.times[1:])
		h.times[len(h.times)-1] = t.UnixMilli()
	} else {
		h.times = append(h.times, t.UnixMilli())
	}
	for name := range vals {
		if _, ok := h.series[name]; !ok {
			h.series[name] = make([]float64, len(h.times)-1, HistoryLen)
			h.names = append(h.names, name)
		}
	}
	for _, name := range h.names {
		s := h.series[name]
		v := vals[name]
		if full {
			copy(s, s[1:])
			s[len(s)-1] = v
		} else {
			s = append(s, v)
		}
		h.series[name] = s
	}
}

// Series is the samples of the dashboard's charts taken after a given one.
type Series struct {
	// Seq is the number of the latest sample: pass it back as since to get only newer ones.
	Seq         uint64               `json:"seq"`
	StepSeconds int                  `json:"step_seconds"`
	Times       []int64              `json:"times"` // Unix milliseconds
	Values      map[string][]float64 `json:"values"`
}

// since returns the samples numbered after seq (all that are kept for 0).
func (h *history) since(seq uint64) Series {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.times)
	if seq < h.seq {
		n = min(n, int(h.seq-seq))
	} else {
		n = 0
	}
	out := Series{Seq: h.seq, StepSeconds: int(sampleEvery / time.Second), Times: slices.Clone(h.times[len(h.times)-n:]),
		Values: make(map[string][]float64, len(h.series))}
	for name, s := range h.series {
		out.Values[name] = slices.Clone(s[len(s)-n:])
	}
	return out
}

// mean returns the mean of the latest k samples of a series, 0 when it has none.
func (h *history) mean(name string, k int) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.series[name]
	k = min(k, len(s))
	if k == 0 {
		return 0
	}
	sum := 0.0
	for _, v := range s[len(s)-k:] {
		sum += v
	}
	return sum / float64(k)
}
