package app

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/palleto/palleto/sqs"
)

// StatusLine reports progress: rewritten in place on a terminal, or as a log line now and
// then otherwise. On a terminal, logs written to the same terminal go through Logs, so that
// a log record is never glued to the live line.
type StatusLine struct {
	W        io.Writer
	Terminal bool          // rewrite one line in place
	Every    time.Duration // default 1 s on a terminal, 30 s otherwise

	mu   sync.Mutex
	live string // the line on the terminal now, "" when none
}

// Logs returns the writer for log records that share W: on a terminal, each record clears
// the live line, is written on a line of its own, and the live line is drawn again below it.
// Otherwise it is W itself. A log handler writes one record per Write.
func (s *StatusLine) Logs() io.Writer {
	if !s.Terminal {
		return s.W
	}
	return logWriter{s}
}

type logWriter struct{ s *StatusLine }

func (w logWriter) Write(p []byte) (int, error) {
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == "" {
		return s.W.Write(p)
	}
	if _, err := io.WriteString(s.W, "\r\033[K"); err != nil {
		return 0, err
	}
	n, err := s.W.Write(p)
	if err == nil {
		_, err = io.WriteString(s.W, s.live)
	}
	return n, err
}

// inFlight reports messages received and not yet acknowledged.
type inFlight interface{ Stats() sqs.Stats }

func (s *StatusLine) start(t *tally, src inFlight, g *gate, began time.Time) (stop func()) {
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
				s.print(t, src, g, began, false)
			case <-done:
				s.print(t, src, g, began, true)
				return
			}
		}
	}()
	return func() { close(done); <-ended }
}

// statusText is the status: what was received, what is being worked on and what is done. SQS may
// deliver a message more than once; the distinct messages are counted where the run keeps
// them (a drain), and otherwise the count says deliveries, as it is.
func statusText(t *tally, src inFlight, elapsed time.Duration) string {
	sum := t.summary(elapsed)
	st := src.Stats()
	received := fmt.Sprintf("deliveries %d", sum.Messages)
	if t.messages != nil {
		if n, ok := t.messages(); ok {
			received = fmt.Sprintf("messages %d (%d deliveries)", n, sum.Messages)
		}
	}
	return fmt.Sprintf("%s  in flight %d  objects done %d  failures %d  %.1f objects/s  fetchers %d  %s",
		received, st.InFlight+st.Held, sum.Objects, sum.Failed, sum.ObjPerSec, t.fetchers.Load(), sum.Elapsed.Round(time.Second))
}

func (s *StatusLine) print(t *tally, src inFlight, g *gate, began time.Time, last bool) {
	line := statusText(t, src, time.Since(began))
	if ok, reason := g.Health(); !ok {
		line += "  PAUSED: " + reason
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.Terminal && last:
		fmt.Fprintf(s.W, "\r\033[K%s\n", line)
		s.live = ""
	case s.Terminal:
		fmt.Fprintf(s.W, "\r\033[K%s", line)
		s.live = line
	default:
		fmt.Fprintf(s.W, "status: %s\n", line)
	}
}
