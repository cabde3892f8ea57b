//go:build !unix

package output

import (
	"errors"
	"os"
)

// lockDir cannot lock a directory on this system.
func lockDir(*os.File) error { return errors.New("directory locks are not supported on this system") }
