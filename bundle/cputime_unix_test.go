//go:build unix

package bundle

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time the process has used (user+system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
