package app

import (
	"bytes"
	"log/slog"
	"testing"
)

// TestLogsClearTheLiveLine: on a terminal, a log record is written on a line of its own,
// never glued to the live status line, which is drawn again below it.
func TestLogsClearTheLiveLine(t *testing.T) {
	var term bytes.Buffer
	s := &StatusLine{W: &term, Terminal: true}
	log := slog.New(slog.NewTextHandler(s.Logs(), &slog.HandlerOptions{ReplaceAttr: noTime}))
	log.Warn("before any status")
	s.mu.Lock()
	term.WriteString("\r\033[Kreceived 3") // as print draws it
	s.live = "received 3"
	s.mu.Unlock()
	log.Warn("object not found")
	want := "level=WARN msg=\"before any status\"\n" +
		"\r\033[Kreceived 3" +
		"\r\033[Klevel=WARN msg=\"object not found\"\nreceived 3"
	if got := term.String(); got != want {
		t.Errorf("terminal got %q\nwant %q", got, want)
	}

	var plain bytes.Buffer
	p := &StatusLine{W: &plain}
	if p.Logs() != &plain {
		t.Error("without a terminal, Logs is not W itself")
	}
}

func noTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
