package fsutil

import (
	"errors"
	"syscall"
)

// ProcessAlive reports whether pid runs on this host (EPERM: it runs, as someone
// else). It is how the owner of a leftover or a lock named by PID is judged gone.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
