package app

import "syscall"

// jobProcAttr puts a job in a process group of its own, and has the kernel kill the job's
// process when the server dies (a kill -9 included), so that the restart does not run a job
// while the cut-off run of it goes on. Processes that the job started itself are not reached
// that way: they stay in the job's group, which a SIGTERM or SIGKILL of the server's own
// shutdown still reaches.
func jobProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
