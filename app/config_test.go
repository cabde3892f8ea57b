package app

import (
	"testing"
	"time"
)

// TestNoWaitReachesTheSource: a wait the user turned off stays off on its way to the SQS
// source and the runtime; zero still means the default.
func TestNoWaitReachesTheSource(t *testing.T) {
	off := Config{QueueURL: "q", WaitTime: NoWait, RetryDelay: NoWait, MaxDelay: NoWait, Shutdown: NoWait}
	if err := off.Validate(); err != nil {
		t.Fatalf("Validate(%+v) = %v, want nil", off, err)
	}
	off.setDefaults()
	s := off.sqsConfig()
	if s.WaitTime >= 0 {
		t.Errorf("WaitTime NoWait: sqs WaitTime %v, want negative (short polling)", s.WaitTime)
	}
	for n := 1; n <= 5; n++ {
		if d := s.Retry.Delay(n); d != 0 {
			t.Errorf("RetryDelay NoWait: delay after %d receives %v, want 0", n, d)
		}
	}
	if off.Shutdown >= 0 {
		t.Errorf("Shutdown NoWait became %v after defaults, want negative (no grace)", off.Shutdown)
	}

	var zero Config
	zero.setDefaults()
	if s := zero.sqsConfig(); s.WaitTime != 20*time.Second || zero.RetryDelay != 5*time.Second || zero.MaxDelay != 5*time.Minute || zero.Shutdown != 30*time.Second {
		t.Errorf("zero Config: WaitTime %v, RetryDelay %v, MaxDelay %v, Shutdown %v; want the defaults 20s, 5s, 5m, 30s",
			s.WaitTime, zero.RetryDelay, zero.MaxDelay, zero.Shutdown)
	}
}
