// Package testwait waits in tests for a condition to hold, polling it,
// instead of sleeping for a guessed while: a fixed sleep is too long on
// an idle machine and too short on a loaded one (CI runs packages' tests
// side by side on two cores).
package testwait

import (
	"testing"
	"time"
)

// maxInterval bounds the pause between two polls.
const maxInterval = 50 * time.Millisecond

// For polls cond, at first every millisecond and then less often (at most
// every 50 ms), until it returns true; it fails the test, naming what it
// waited for, when timeout passes first. cond runs on the test's
// goroutine, so it may call t.Fatal itself.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(timeout, cond) {
		t.Fatalf("waited %v for %s", timeout, what)
	}
}

// Until polls cond as For does and reports whether it held before timeout
// passed, for callers that fail with their own message.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
		pause = min(2*pause, maxInterval)
	}
}
