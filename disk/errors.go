package disk

import (
	"errors"
	"fmt"
)

// The error classes every reader's errors match with errors.Is.
var (
	// ErrCorrupt: the bytes break the format (bad magic or checksum, an
	// offset past the end of file, a table pointing into metadata).
	ErrCorrupt = errors.New("corrupt image")
	// ErrUnsupported: valid, but a variant diskport does not read.
	ErrUnsupported = errors.New("unsupported image")
	// ErrUnsafe: refused by the safety policy (external files, path
	// escapes, parent images not supplied by the caller).
	ErrUnsafe = errors.New("unsafe image")
	// ErrTooLarge: a size or count beyond the configured limits.
	ErrTooLarge = errors.New("image too large")
	// ErrFormatMismatch: the bytes are not the format the caller declared.
	ErrFormatMismatch = errors.New("format mismatch")
)

// An Error is a reader's error: which format, which class, and a message
// saying which structure, where, and what was expected.
type Error struct {
	Format string // "vmdk", "vhd", "raw", ...; "" for none
	Class  error  // one of the Err* classes above
	Msg    string
}

// Error returns "format: message", or the message alone when Format is ""
// (an error about no one format, such as a declared format the bytes
// contradict).
func (e *Error) Error() string {
	if e.Format == "" {
		return e.Msg
	}
	return e.Format + ": " + e.Msg
}

// Unwrap returns the error class, so errors.Is(err, ErrCorrupt) works.
func (e *Error) Unwrap() error { return e.Class }

// Errorf returns an *Error of the given format and class.
func Errorf(format string, class error, msg string, args ...any) error {
	return &Error{Format: format, Class: class, Msg: fmt.Sprintf(msg, args...)}
}
