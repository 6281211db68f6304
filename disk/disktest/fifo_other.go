//go:build !unix

package disktest

import "testing"

// Mkfifo skips the test: the OS has no FIFOs in its file system.
func Mkfifo(t testing.TB, path string) {
	t.Helper()
	t.Skip("no FIFOs on this OS")
}
