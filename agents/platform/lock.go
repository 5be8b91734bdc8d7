package platform

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Label names a platform's Docker objects: one value per state dir.
func Label(stateDir string) string {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		abs = stateDir
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:6])
}

// errLocked: another process holds the pid lock.
var errLocked = errors.New("a platform supervisor already runs from this state dir")

// pidLock is the exclusive lock of <state>/up.pid holding our pid. The
// lock lives as long as the file descriptor: the kernel drops it when
// the supervisor dies, so a stale pid file never blocks a new start.
type pidLock struct {
	f    *os.File
	path string
}

func lockPid(stateDir string) (*pidLock, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	path := filepath.Join(stateDir, PidFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, errLocked
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", path, err)
	}
	return &pidLock{f: f, path: path}, nil
}

// release removes the pid file and drops the lock.
func (l *pidLock) release() {
	if l == nil {
		return
	}
	os.Remove(l.path)
	l.f.Close()
}

// RunningPid returns the supervisor's pid if one holds the lock.
func RunningPid(stateDir string) (int, bool) {
	f, err := os.OpenFile(filepath.Join(stateDir, PidFile), os.O_RDWR, 0)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return 0, false
	}
	b, _ := io.ReadAll(f)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return pid, true
}

// AlreadyUpError: a platform runs from the state dir (Run is
// idempotent: the caller shows where it listens).
type AlreadyUpError struct {
	// Pid of the supervisor (0: containers run without one).
	Pid int
	// Containers counts the running platform containers (containers
	// mode).
	Containers int
	Status     Status
}

func (e *AlreadyUpError) Error() string {
	if e.Containers > 0 {
		return fmt.Sprintf("paddock is already up in %d containers", e.Containers)
	}
	return fmt.Sprintf("paddock is already up (supervisor pid %d)", e.Pid)
}
