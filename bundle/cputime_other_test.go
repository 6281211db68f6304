//go:build !unix

package bundle

import "time"

// cpuTime returns 0: without getrusage the MB/cpu-s figure is not kept.
func cpuTime() time.Duration { return 0 }
