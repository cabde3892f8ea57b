package sqs

import (
	"fmt"
	"time"
)

// An entry is one received message, the token handed out with it. Its fields are guarded by
// the source's mutex.
type entry struct {
	src        *Source
	msg        Message
	handle     string
	state      state
	beat       beat
	receivedAt time.Time
	expires    time.Time     // when its visibility runs out, as far as the source knows
	group      *group        // its FIFO group, while the group waits on it (fifo.go)
	queuedAt   time.Time     // when it joined dels, vis or sends
	hide       time.Duration // the visibility timeout that its queued change in s.vis asks for
}

// A state is where a message is in its life at the source. Each state but held, out and gone
// names the one request that the message waits for or is in; the s.dels, s.vis and s.sends
// queues hold exactly the entries in the matching to… state (and, in s.vis, those whose
// extension is queued). The transitions, enforced by [entry.to]:
//
//	from                      to         when
//	held                      out        Receive hands it out
//	held                      toRelease  Close; its FIFO group is released; it arrived after
//	                                     Close or a fatal error
//	out                       toDelete   succeeded
//	out                       toRelease  released, or still out at Close
//	out                       toRetry    failed
//	out                       toSend     failed for good, with a dead-letter queue
//	toSend                    sending    a SendMessage starts
//	sending                   toDelete   sent to the dead-letter queue
//	sending                   toRetry    could not be sent
//	toDelete                  deleting   a DeleteMessageBatch starts
//	toRelease, toRetry        changing   a ChangeMessageVisibilityBatch starts (once no
//	                                     extension of the message is in flight)
//	deleting, changing        gone       answered, refused, or given up
//	sending, to… (any queued) gone       Close gave up
//
// A gone message is forgotten: nothing more is asked of SQS for it.
type state uint8

const (
	held      state = iota // received, waiting in s.ready or in its FIFO group
	out                    // handed out, no outcome yet
	toDelete               // succeeded or dead-lettered: waiting in s.dels
	deleting               // in a DeleteMessageBatch
	toRelease              // unfinished: waiting in s.vis to be made visible at once
	toRetry                // failed: waiting in s.vis to be made visible after e.hide
	changing               // in a ChangeMessageVisibilityBatch
	toSend                 // failed for good: waiting in s.sends for the dead-letter queue
	sending                // in a SendMessage to the dead-letter queue
	gone                   // forgotten
	nStates
)

var stateNames = [nStates]string{"held", "out", "toDelete", "deleting", "toRelease", "toRetry",
	"changing", "toSend", "sending", "gone"}

func (st state) String() string {
	if st < nStates {
		return stateNames[st]
	}
	return fmt.Sprintf("state(%d)", uint8(st))
}

// transitions[from] has bit 1<<to set for each allowed transition: the table above.
var transitions = func() [nStates]uint16 {
	var t [nStates]uint16
	allow := func(from []state, to ...state) {
		for _, f := range from {
			for _, x := range to {
				t[f] |= 1 << x
			}
		}
	}
	one := func(s state) []state { return []state{s} }
	allow(one(held), out, toRelease)
	allow(one(out), toDelete, toRelease, toRetry, toSend)
	allow(one(toSend), sending)
	allow(one(sending), toDelete, toRetry)
	allow(one(toDelete), deleting)
	allow([]state{toRelease, toRetry}, changing)
	allow([]state{deleting, changing, sending, toDelete, toRelease, toRetry, toSend}, gone)
	return t
}()

// to moves e to state next. A transition that the table does not allow is a bug of the
// source: it panics rather than lose track of a message.
func (e *entry) to(next state) {
	if transitions[e.state]&(1<<next) == 0 {
		panic(fmt.Sprintf("sqs: message %s: no transition from %v to %v", e.msg.ID, e.state, next))
	}
	e.state = next
}

// inVis tells whether e waits in s.vis: for a release, a retry or an extension.
func (e *entry) inVis() bool {
	return e.state == toRelease || e.state == toRetry || e.beat == beatQueued
}

// busy tells whether a request that names e's receipt handle is in flight.
func (e *entry) busy() bool { return e.state == deleting || e.state == changing || e.beat == beatBusy }

// mine tells whether the message is still the pipeline's: received and without an outcome.
func (e *entry) mine() bool { return e.state == held || e.state == out }

// A beat is where a message's heartbeat is. It runs beside the state: an extension that is in
// flight when the outcome arrives is let finish. The transitions:
//
//	from         to           when
//	beatIdle     beatQueued   a third of its visibility has passed (heartbeatLocked)
//	beatIdle     beatOff      Config.MaxExtension reached
//	beatQueued   beatBusy     a ChangeMessageVisibilityBatch starts
//	beatQueued   beatIdle     an outcome came first, or a release replaced it
//	beatBusy     beatIdle     extended, or given up (the next tick tries again)
//	beatBusy     beatOff      it was the last before MaxExtension, or SQS refused it
//
// A visibility change that is asked for while an extension is in flight waits for it, so that
// the last one asked for is the last made.
type beat uint8

const (
	beatIdle beat = iota
	beatQueued
	beatBusy
	beatOff
)

// finishLocked forgets e: nothing more will be asked of SQS for it.
func (s *Source) finishLocked(e *entry) {
	e.to(gone)
	if s.byID[e.msg.ID] == e {
		delete(s.byID, e.msg.ID)
		if len(s.byID) == 0 && len(s.polls) > 0 {
			s.checkDrainLocked()
		}
	}
}
