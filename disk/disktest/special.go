package disktest

import (
	"errors"
	"net"
	"testing"
	"time"
)

// ErrBlocked is what [Within] returns for a call still blocked.
var ErrBlocked = errors.New("disktest: still blocked")

// Within runs f and returns its error; when f has not returned after 5
// seconds (an open of a FIFO without O_NONBLOCK blocks forever), it fails
// the test and returns ErrBlocked, leaving f blocked.
func Within(t testing.TB, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Errorf("%s: still blocked after 5s", what)
		return ErrBlocked
	}
}

// Listen makes a listening unix socket at path, closed at the end of the
// test.
func Listen(t testing.TB, path string) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}
