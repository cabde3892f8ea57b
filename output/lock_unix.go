//go:build unix

package output

import (
	"errors"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on the open directory d, which the kernel drops when d is
// closed or the process ends, however it ends. A lock held elsewhere is ErrInUse; an
// error of the file system (some network file systems cannot lock) is returned as it is.
func lockDir(d *os.File) error {
	err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return ErrInUse
	}
	return err
}
