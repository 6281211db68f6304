package vhdx

import "github.com/diskport/diskport/disk"

// Probe tells whether s holds a VHDX: true when it starts with the file
// type signature "vhdxfile", false with a nil error when it does not, and
// the error of reading s otherwise. A file with the signature that fails
// VHDX's checks is a damaged VHDX (Open says how), never a RAW disk.
func Probe(s disk.Storage) (bool, error) {
	if s.Size() < int64(len(signature)) {
		return false, nil
	}
	var b [len(signature)]byte
	if err := disk.ReadFull(s, "vhdx", "file identifier", b[:], 0); err != nil {
		return false, err
	}
	return string(b[:]) == signature, nil
}
