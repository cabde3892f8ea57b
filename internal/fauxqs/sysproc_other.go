//go:build unix && !linux

package fauxqs

import "syscall"

// sysProcAttr puts the server in its own process group, so that Stop reaches
// whatever it spawns and a Ctrl-C meant for the test binary does not.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
