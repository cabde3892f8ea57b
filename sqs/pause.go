package sqs

// Pause stops the source from starting receives, for as long as the caller cannot handle
// messages (its disk is full, its credentials for other services failed): each receive would
// count towards the queue's maxReceiveCount for nothing. The demand of waiting Receive calls
// is kept. Receives already in flight are let finish rather than cancelled, since SQS hides
// what it took for a cancelled request until the visibility timeout; what they bring is handed
// out as usual. Deletes, visibility changes and the heartbeat go on.
func (s *Source) Pause() {
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
}

// Resume undoes Pause: receives start again for the demand that waits.
func (s *Source) Resume() {
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
	s.wake()
}
