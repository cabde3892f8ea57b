package sqs

import "time"

type state uint8

const (
	stHeld     state = iota // received, not handed out
	stOut                   // handed out, no outcome yet
	stDeleting              // succeeded or dead-lettered: delete pending or in flight
	stChanging              // failed or released: visibility change pending or in flight
	stSending               // failed for good: SendMessage to the dead-letter queue pending or in flight
	stGone
)

// An entry is one received message, the token handed out with it.
type entry struct {
	src        *Source
	msg        Message
	handle     string
	state      state
	receivedAt time.Time
	expires    time.Time // when its visibility runs out, as far as the source knows
	noExtend   bool
	group      *group
	queuedAt   time.Time // when it joined dels, vis or sends

	delBusy   bool // in a delete request
	visQueued bool // in vis, waiting for a request
	visBusy   bool // in a request
	visKind   visKind
	visTo     time.Duration
	visUrgent bool
}

// finishLocked forgets e: nothing more will be asked of SQS for it.
func (s *Source) finishLocked(e *entry) {
	e.state = stGone
	if s.byID[e.msg.ID] == e {
		delete(s.byID, e.msg.ID)
	}
}
