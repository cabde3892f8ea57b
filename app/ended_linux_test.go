package app_test

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ended reports whether process pid has ended, or ends within d: a signal already sent may
// take a moment. Linux says so through a pidfd, which becomes readable when the process exits;
// a zombie has exited (its parent, the job's shell, is gone).
func ended(t *testing.T, pid int, d time.Duration) bool {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", pid, err)
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(d)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(max(time.Until(deadline), 0).Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			t.Fatalf("poll on the pidfd of %d: %v", pid, err)
		}
		return n > 0
	}
}
