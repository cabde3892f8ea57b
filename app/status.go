package app

import (
	"fmt"
	"io"
	"time"

	"github.com/palleto/palleto/sqs"
)

// StatusLine reports progress: rewritten in place on a terminal, or as a log line now and
// then otherwise.
type StatusLine struct {
	W        io.Writer
	Terminal bool          // rewrite one line in place
	Every    time.Duration // default 1 s on a terminal, 30 s otherwise
}

// inFlight reports messages received and not yet acknowledged.
type inFlight interface{ Stats() sqs.Stats }

func (s *StatusLine) start(t *tally, src inFlight, began time.Time) (stop func()) {
	if s == nil || s.W == nil {
		return func() {}
	}
	every := s.Every
	if every == 0 {
		every = 30 * time.Second
		if s.Terminal {
			every = time.Second
		}
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				s.print(t, src, began, false)
			case <-done:
				s.print(t, src, began, true)
				return
			}
		}
	}()
	return func() { close(done); <-ended }
}

func (s *StatusLine) print(t *tally, src inFlight, began time.Time, last bool) {
	sum := t.summary(time.Since(began))
	st := src.Stats()
	line := fmt.Sprintf("received %d  in flight %d  done %d  failed %d  %.1f objects/s  fetchers %d  %s",
		sum.Messages, st.InFlight+st.Held, sum.Objects, sum.Failed, sum.ObjPerSec, t.fetchers.Load(), sum.Elapsed.Round(time.Second))
	switch {
	case s.Terminal && last:
		fmt.Fprintf(s.W, "\r\033[K%s\n", line)
	case s.Terminal:
		fmt.Fprintf(s.W, "\r\033[K%s", line)
	default:
		fmt.Fprintf(s.W, "status: %s\n", line)
	}
}
