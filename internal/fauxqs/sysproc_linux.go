package fauxqs

import "syscall"

// sysProcAttr puts the server in its own process group, so that Stop reaches
// whatever it spawns and a Ctrl-C meant for the test binary does not, and
// has the kernel kill it if the test binary dies first (Pdeathsig survives the
// exec of start.sh into node).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
