//go:build unix && !linux

package app

import "syscall"

// jobProcAttr puts a job in a process group of its own. Only Linux can have the kernel end
// the job when the server dies; elsewhere a job cut off by a crash may run on.
func jobProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
