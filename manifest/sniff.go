package manifest

import (
	"bytes"
	"encoding/binary"
	"io"

	"github.com/diskport/diskport/disk"
)

// Sniff tells which manifest file-format the image file in r (of the given
// size) is, from its magic numbers, and the size of the virtual disk it
// holds: RAW for anything that is not a VMDK sparse extent or a VHD; VMDK
// descriptor files (whose data is in other files), VHDX and QCOW2 are
// refused, since an import manifest carries one file of a format EC2 takes.
func Sniff(r io.ReaderAt, size int64) (format string, virtualSize int64, err error) {
	var head [512]byte
	n, err := r.ReadAt(head[:], 0)
	if err != nil && err != io.EOF {
		return "", 0, err
	}
	h := head[:n]
	switch {
	case bytes.HasPrefix(h, []byte("KDMV")) && n >= 20:
		capacity := binary.LittleEndian.Uint64(h[12:20])
		if capacity > MaxFileSize/512 {
			return "", 0, errorf(disk.ErrTooLarge, "VMDK capacity of %d sectors", capacity)
		}
		return FormatVMDK, int64(capacity) * 512, nil
	case bytes.HasPrefix(h, []byte("# Disk DescriptorFile")):
		return "", 0, errorf(disk.ErrUnsupported, "a VMDK descriptor file keeps its data in other files; convert it to a single-file (streamOptimized or monolithicSparse) VMDK or to raw first")
	case bytes.HasPrefix(h, []byte("vhdxfile")):
		return "", 0, errorf(disk.ErrUnsupported, "VHDX is not an import format (RAW, VHD or VMDK); convert it first")
	case bytes.HasPrefix(h, []byte("QFI\xfb")):
		return "", 0, errorf(disk.ErrUnsupported, "QCOW2 is not an import format (RAW, VHD or VMDK); convert it first")
	}
	if size >= 512 {
		var foot [512]byte
		if _, err := r.ReadAt(foot[:], size-512); err != nil && err != io.EOF {
			return "", 0, err
		}
		if v, ok := vhdFooter(foot[:]); ok {
			return FormatVHD, v, nil
		}
		// Old writers left a 511-byte footer.
		if size >= 511 {
			if _, err := r.ReadAt(foot[:511], size-511); err == nil || err == io.EOF {
				if v, ok := vhdFooter(foot[:511]); ok {
					return FormatVHD, v, nil
				}
			}
		}
	}
	if v, ok := vhdFooter(h); ok { // dynamic VHD's copy of the footer
		return FormatVHD, v, nil
	}
	return FormatRAW, size, nil
}

// vhdFooter returns the current size field of a VHD footer.
func vhdFooter(b []byte) (int64, bool) {
	if len(b) < 56 || !bytes.HasPrefix(b, []byte("conectix")) {
		return 0, false
	}
	v := binary.BigEndian.Uint64(b[48:56])
	if v > MaxFileSize {
		return 0, false
	}
	return int64(v), true
}
