package platform

import (
	"os"
	"os/exec"
	"syscall"
)

// newDetached runs binary in a session of its own, so it outlives the
// terminal that started it.
func newDetached(binary string, args []string, out *os.File) *exec.Cmd {
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}
