package sqs

import (
	"strings"
	"time"
)

// A group is a FIFO message group with a message handed out (or about to be): the others
// wait here, in order, until it succeeds.
type group struct {
	id   string
	held []*entry
}

// nextInGroupLocked lets the next message of e's FIFO group be handed out, now that e succeeded.
func (s *Source) nextInGroupLocked(e *entry) {
	g := e.group
	if g == nil {
		return
	}
	e.group = nil
	if len(g.held) == 0 {
		delete(s.groups, g.id)
		return
	}
	next := g.held[0]
	g.held = g.held[1:]
	s.ready = append(s.ready, next)
}

// releaseGroupLocked makes the messages held behind e visible again: e did not succeed, so SQS
// must deliver its group again from e on, in order.
func (s *Source) releaseGroupLocked(e *entry, now time.Time) {
	g := e.group
	if g == nil {
		return
	}
	e.group = nil
	delete(s.groups, g.id)
	for _, h := range g.held {
		h.group = nil
		s.releaseLocked(h, now)
	}
}

// isFIFO tells whether queueURL names a FIFO queue: its name ends in ".fifo".
func isFIFO(queueURL string) bool {
	return strings.HasSuffix(strings.TrimRight(queueURL, "/"), ".fifo")
}
