package diskport

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/diskport/diskport/disk"
)

// Detect tells the format of the image stored in s from its bytes, by
// every format's probe in the table: VMDK (KDMV or COWD magic, a text
// descriptor by qemu's rule), VHD (the "conectix" footer copy at offset 0,
// or a valid footer at the end), VHDX, qcow2. Anything else is RAW.
//
// One format matches or Detect refuses, as OpenStack's format inspector
// rules: bytes that carry a format's signature but fail that format's
// checks (a fixed VHD's footer with a bad checksum, a damaged text
// descriptor) are that format's error, disk.ErrCorrupt, never RAW; bytes
// that two formats claim are disk.ErrUnsafe.
func Detect(s disk.Storage) (Format, error) {
	var found []*formatEntry
	for i := range table {
		e := &table[i]
		if e.probe == nil {
			continue
		}
		ok, err := e.probe(s)
		if err != nil {
			return "", err
		}
		if ok {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		return Raw, nil
	case 1:
		return found[0].format, nil
	}
	var what []string
	for _, e := range found {
		what = append(what, e.what)
	}
	return "", disk.Errorf("", disk.ErrUnsafe, "%s: the bytes carry the signatures of %s: refusing to guess which it is", s.Name(), strings.Join(what, " and of "))
}

// magic returns a probe for a signature at offset 0.
func magic(sig string) func(disk.Storage) (bool, error) {
	return func(s disk.Storage) (bool, error) {
		if s.Size() < int64(len(sig)) {
			return false, nil
		}
		b := make([]byte, len(sig))
		if n, err := s.ReadAt(b, 0); n < len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return false, fmt.Errorf("%s: reading the first %d bytes: %w", s.Name(), len(b), err)
		}
		return bytes.Equal(b, []byte(sig)), nil
	}
}

// describe names f in a phrase for messages: "a VHD image".
func describe(f Format) string {
	if e := entry(f); e != nil {
		return e.what
	}
	return string(f)
}

// upper is f as messages about the bytes spell it: EC2's name, or the
// name in capitals for the formats EC2 does not import ("QCOW2").
func upper(f Format) string {
	if n := f.EC2Name(); n != "" {
		return n
	}
	return strings.ToUpper(string(f))
}

// A MismatchError is the error for bytes that are not the format the
// caller declared. It matches disk.ErrFormatMismatch.
type MismatchError struct {
	Name     string // the storage's name (a path or URL)
	Declared Format
	Found    Format // what Detect found
}

// Reason says what is wrong, without advice: "NAME: declared RAW but the
// bytes are a VMDK image or descriptor". Programs add their own advice.
func (e *MismatchError) Reason() string {
	return fmt.Sprintf("%s: declared %s but the bytes are %s", e.Name, upper(e.Declared), describe(e.Found))
}

// Error returns the reason with the library's advice: declare the format
// the bytes are, or set Options.TrustFormat.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s (declare %s, or set Options.TrustFormat to read them as %s anyway)", e.Reason(), upper(e.Found), upper(e.Declared))
}

// Unwrap returns disk.ErrFormatMismatch.
func (e *MismatchError) Unwrap() error { return disk.ErrFormatMismatch }

// unsupported is the error for an image of a format that is recognised
// but not read.
func unsupported(f Format, name string) error {
	return disk.Errorf(string(f), disk.ErrUnsupported, "%s is %s, which diskport does not read (it reads %s); convert it to one of those first",
		name, describe(f), FormatNames())
}
