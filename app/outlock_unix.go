//go:build unix

package app

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
)

// lockOut takes the output directory for this process: the result files' checks (sequencer,
// duplicate) and their renames are made safe against each other within one process only, so
// two runs must not share a directory. The lock is on the directory itself, so that nothing
// but results is in it, and the kernel drops it when the process ends, however it ends.
// Only a lock held by another process refuses the run: where the file system cannot lock
// (some network file systems), the run goes on without, and says so.
func lockOut(dir string, log *slog.Logger) (unlock func(), err error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		d.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another palleto run", dir)
		}
		log.Warn("cannot lock the output directory: make sure no other run uses it", "dir", dir, "err", err)
		return func() {}, nil
	}
	return func() { d.Close() }, nil
}
