package backoff

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStep(t *testing.T) {
	const s = time.Second
	for _, c := range []struct {
		p    *Policy
		n    int
		want time.Duration
	}{
		{Immediate(), 1, 0},
		{Immediate(), 50, 0},
		{Fixed(time.Minute), 1, time.Minute},
		{Fixed(time.Minute), 9, time.Minute},
		{Exponential(s, 5*time.Minute), 0, s},
		{Exponential(s, 5*time.Minute), 1, s},
		{Exponential(s, 5*time.Minute), 2, 2 * s},
		{Exponential(s, 5*time.Minute), 3, 4 * s},
		{Exponential(s, 5*time.Minute), 9, 256 * s},
		{Exponential(s, 5*time.Minute), 10, 5 * time.Minute},
		{Exponential(s, 5*time.Minute), 100, 5 * time.Minute},
		{Exponential(100*time.Millisecond, 2*s), 5, 1600 * time.Millisecond},
		{Exponential(100*time.Millisecond, 2*s), 6, 2 * s},
		{&Policy{Base: time.Nanosecond, Max: time.Duration(1<<63 - 1)}, 70, time.Duration(1<<63 - 1)},
	} {
		if got := c.p.Step(c.n); got != c.want {
			t.Errorf("%+v.Step(%d) = %v, want %v", *c.p, c.n, got, c.want)
		}
	}
}

func TestDelayAt(t *testing.T) {
	const s = time.Second
	for _, c := range []struct {
		p    *Policy
		n    int
		r    float64
		want time.Duration
	}{
		{Exponential(s, time.Minute), 1, 0, s},
		{Exponential(s, time.Minute), 1, 0.5, 750 * time.Millisecond},
		{Exponential(s, time.Minute), 3, 0.5, 3 * s},
		{Exponential(s, time.Minute), 3, 0.75, 2500 * time.Millisecond},
		{Exponential(s, time.Minute), 20, 0.5, 45 * s},
		{&Policy{Base: 100 * time.Millisecond, Max: 2 * s, Jitter: 1}, 2, 0.25, 150 * time.Millisecond},
		{&Policy{Base: 100 * time.Millisecond, Max: 2 * s, Jitter: 1}, 9, 0.5, s},
		{Fixed(time.Minute), 4, 0.9, time.Minute},
		{Immediate(), 4, 0.9, 0},
	} {
		if got := c.p.DelayAt(c.n, c.r); got != c.want {
			t.Errorf("%+v.DelayAt(%d, %v) = %v, want %v", *c.p, c.n, c.r, got, c.want)
		}
	}
}

// TestDelayJitter draws real random delays: each within its bounds, and not all the same.
func TestDelayJitter(t *testing.T) {
	p := Exponential(time.Second, time.Minute)
	for n := 1; n <= 8; n++ {
		step := p.Step(n)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.Delay(n)
			if d <= step/2 || d > step {
				t.Fatalf("Delay(%d) = %v, outside (%v, %v]", n, d, step/2, step)
			}
			seen[d] = true
		}
		if len(seen) < 50 {
			t.Fatalf("Delay(%d): %d distinct delays in 200: no jitter", n, len(seen))
		}
	}
	if d := Fixed(time.Minute).Delay(3); d != time.Minute {
		t.Errorf("Fixed(1m).Delay(3) = %v", d)
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []*Policy{Immediate(), Fixed(time.Second), Exponential(time.Second, time.Hour), Default(),
		{Base: time.Second, Max: time.Minute, Jitter: 1}} {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", *p, err)
		}
	}
	for _, p := range []Policy{{Base: -1}, {Base: time.Minute, Max: time.Second}, {Jitter: -0.1}, {Jitter: 1.5}} {
		if err := p.Validate(); err == nil {
			t.Errorf("%+v: no error", p)
		}
	}
}
