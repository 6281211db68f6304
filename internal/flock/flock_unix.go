//go:build unix

package flock

import (
	"os"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive lock on f, waiting for it unless wait is false,
// in which case a lock held elsewhere is an error. Closing f releases it.
func Lock(f *os.File, wait bool) error {
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	return unix.Flock(int(f.Fd()), how)
}

// Unlock releases the lock on f.
func Unlock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }
