// Package metricstest reads Prometheus metrics back, from a registry or a /metrics endpoint,
// so that tests can assert on single values.
package metricstest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are metric families by name.
type Families map[string]*dto.MetricFamily

// Gather gathers g.
func Gather(g prometheus.Gatherer) (Families, error) {
	list, err := g.Gather()
	f := Families{}
	for _, mf := range list {
		f[mf.GetName()] = mf
	}
	return f, err
}

// Scrape fetches url and parses its text exposition.
func Scrape(ctx context.Context, url string) (Families, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// Ask for text: the parser reads nothing else.
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// Value returns the value of the counter, gauge or untyped metric name whose labels include
// the given name, value pairs; ok is false when there is none.
func (f Families) Value(name string, labelPairs ...string) (v float64, ok bool) {
	mf := f[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labelPairs) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// Histogram returns the sample count and sum of the histogram name whose labels include the
// given name, value pairs; ok is false when there is none.
func (f Families) Histogram(name string, labelPairs ...string) (count uint64, sum float64, ok bool) {
	mf := f[name]
	if mf == nil {
		return 0, 0, false
	}
	for _, m := range mf.GetMetric() {
		if h := m.GetHistogram(); h != nil && hasLabels(m, labelPairs) {
			return h.GetSampleCount(), h.GetSampleSum(), true
		}
	}
	return 0, 0, false
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Poll scrapes url until ok returns true for what it read, and returns that. If ctx ends
// first, it returns the last families it read (nil if none) and an error that says why.
func Poll(ctx context.Context, url string, ok func(Families) bool) (Families, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last Families
	var lastErr error
	for {
		f, err := Scrape(ctx, url)
		switch {
		case err == nil && ok(f):
			return f, nil
		case err == nil:
			last = f
		case ctx.Err() == nil:
			lastErr = err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			if lastErr != nil && last == nil {
				return nil, fmt.Errorf("%w (last scrape: %v)", ctx.Err(), lastErr)
			}
			return last, ctx.Err()
		}
	}
}

// Wait scrapes url until ok holds and returns what it read; it fails t if that takes more
// than a minute. what says what is awaited, for the failure message.
func Wait(t testing.TB, url, what string, ok func(Families) bool) Families {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	f, err := Poll(ctx, url, ok)
	if err != nil {
		t.Fatalf("waiting for %s at %s: %v", what, url, err)
	}
	return f
}

// A Want is the value a test expects of one series: the metric Name whose labels include
// the Labels pairs.
type Want struct {
	Name   string
	Labels []string
	Value  float64
}

// Check returns a line for each want whose series is missing or holds another value.
func (f Families) Check(wants ...Want) []string {
	var bad []string
	for _, w := range wants {
		switch v, ok := f.Value(w.Name, w.Labels...); {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s%v: missing, want %v", w.Name, w.Labels, w.Value))
		case v != w.Value:
			bad = append(bad, fmt.Sprintf("%s%v = %v, want %v", w.Name, w.Labels, v, w.Value))
		}
	}
	return bad
}
