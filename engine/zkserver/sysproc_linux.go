package zkserver

import "syscall"

// sysProcAttr: detached servers get their own session; attached ones die
// with their parent (no leaked JVMs after a crashed test).
func sysProcAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
