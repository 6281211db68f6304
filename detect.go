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
// or a valid footer at the end), VHDX, and the formats diskport recognises
// only to refuse: qcow2, QED, VDI, and the containers (tar and so OVA,
// zip, gzip, xz, bzip2, zstd), which count only when no disk format
// matches. Anything else is RAW.
//
// One format matches or Detect refuses, as OpenStack's format inspector
// rules: bytes that carry a format's signature but fail that format's
// checks (a fixed VHD's footer with a bad checksum, a damaged text
// descriptor) are that format's error, disk.ErrCorrupt, never RAW; bytes
// that two formats claim are disk.ErrUnsafe.
func Detect(s disk.Storage) (Format, error) {
	var found, containers []*formatEntry
	for i := range table {
		e := &table[i]
		if e.probe == nil {
			continue
		}
		ok, err := e.probe(s)
		if err != nil {
			return "", err
		}
		switch {
		case ok && e.container:
			containers = append(containers, e)
		case ok:
			found = append(found, e)
		}
	}
	if len(found) == 0 {
		found = containers
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

// magic returns a probe for a signature at byte off.
func magic(off int64, sig string) func(disk.Storage) (bool, error) {
	return func(s disk.Storage) (bool, error) {
		b, err := peek(s, off, len(sig))
		return b != nil && bytes.Equal(b, []byte(sig)), err
	}
}

// peek reads n bytes at off, or returns nil when s is shorter.
func peek(s disk.Storage, off int64, n int) ([]byte, error) {
	if s.Size() < off+int64(n) {
		return nil, nil
	}
	b := make([]byte, n)
	if k, err := s.ReadAt(b, off); k < len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%s: reading %d bytes at byte %d: %w", s.Name(), len(b), off, err)
	}
	return b, nil
}

// tarProbe recognises a tar header: the POSIX "ustar\x0000" or the GNU
// "ustar  \x00" magic at byte 257 of the first 512-byte block.
func tarProbe(s disk.Storage) (bool, error) {
	b, err := peek(s, 257, 8)
	return b != nil && (string(b) == "ustar\x0000" || string(b) == "ustar  \x00"), err
}

// bzip2Probe recognises "BZh", a block size digit, and the magic of the
// first block (or of the end of an empty stream).
func bzip2Probe(s disk.Storage) (bool, error) {
	b, err := peek(s, 0, 10)
	if b == nil {
		return false, err
	}
	return string(b[:3]) == "BZh" && b[3] >= '1' && b[3] <= '9' &&
		(string(b[4:]) == "1AY&SY" || string(b[4:]) == "\x17rE8P\x90"), nil
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
	if !e.Found.Readable() {
		return fmt.Sprintf("%s (set Options.TrustFormat to read them as %s anyway)", e.Reason(), upper(e.Declared))
	}
	return fmt.Sprintf("%s (declare %s, or set Options.TrustFormat to read them as %s anyway)", e.Reason(), upper(e.Found), upper(e.Declared))
}

// Unwrap returns disk.ErrFormatMismatch.
func (e *MismatchError) Unwrap() error { return disk.ErrFormatMismatch }

// unsupported is the error for an image of a format that is recognised
// but not read.
func unsupported(f Format, name string) error {
	e := entry(f)
	if e == nil || e.advice == "" {
		return disk.Errorf(string(f), disk.ErrUnsupported, "%s is %s, which diskport does not read (it reads %s); convert it to one of those first",
			name, describe(f), FormatNames())
	}
	msg := fmt.Sprintf("%s is %s, which diskport does not read as a disk image (it reads %s): %s", name, describe(f), FormatNames(), e.advice)
	if e.container {
		msg += "; or declare the format RAW to read these bytes as a raw disk"
	}
	return disk.Errorf(string(f), disk.ErrUnsupported, "%s", msg)
}
