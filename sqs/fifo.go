package sqs

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Everything the source does differently for a FIFO queue is in this file (see "FIFO queues"
// in the package documentation).

// isFIFO tells whether queueURL names a FIFO queue: its name ends in ".fifo".
func isFIFO(queueURL string) bool {
	return strings.HasSuffix(strings.TrimRight(queueURL, "/"), ".fifo")
}

// A group is a FIFO message group with a message handed out (or about to be): the others
// wait here, in order, until it succeeds. The message at its head has e.group set, as has
// each message in held.
type group struct {
	id   string
	held []*entry
}

// joinGroupLocked takes in a received message of a FIFO queue: it returns true when the
// message must wait behind another of its group, which it then does.
func (s *Source) joinGroupLocked(e *entry) (wait bool) {
	if !s.fifo || e.msg.GroupID == "" {
		return false
	}
	if g := s.groups[e.msg.GroupID]; g != nil {
		e.group = g
		g.held = append(g.held, e)
		return true
	}
	e.group = &group{id: e.msg.GroupID}
	s.groups[e.msg.GroupID] = e.group
	return false
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

// releaseGroupsLocked, at Close, makes visible again the messages held behind others of their
// group, and forgets every group.
func (s *Source) releaseGroupsLocked(now time.Time) {
	for _, g := range s.groups {
		for _, h := range g.held {
			h.group = nil
			s.releaseLocked(h, now)
		}
	}
	clear(s.groups)
	for _, e := range s.byID {
		e.group = nil
	}
}

// fifoReceive adds a receive request attempt id to in. The SDK retries a request whose answer
// was lost with the same input: with an attempt id, SQS then hands back the same messages
// instead of keeping them (and their groups) hidden until their visibility runs out.
func (s *Source) fifoReceive(in *awssqs.ReceiveMessageInput) {
	if s.fifo {
		in.ReceiveRequestAttemptId = aws.String(strconv.FormatUint(rand.Uint64(), 36))
	}
}

// fifoDeadLetter adds the group and deduplication ids that a FIFO dead-letter queue requires
// to in, the sending of m: its own group (or its id, when it has none) and its message id.
func (s *Source) fifoDeadLetter(in *awssqs.SendMessageInput, m Message) {
	if !s.fifo {
		return
	}
	in.MessageGroupId = aws.String(m.GroupID)
	if m.GroupID == "" {
		in.MessageGroupId = aws.String(m.ID)
	}
	in.MessageDeduplicationId = aws.String(m.ID)
}
