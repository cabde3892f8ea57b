//go:build !linux

package app_test

import (
	"testing"
	"time"
)

// ended needs Linux's pidfd to wait for a process that is not a child.
func ended(t *testing.T, pid int, d time.Duration) bool {
	t.Skip("waiting for a process to end needs Linux")
	return false
}
