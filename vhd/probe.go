package vhd

import (
	"strings"

	"github.com/diskport/diskport/disk"
)

// Probe tells whether s holds a VHD, in three answers: true (a "conectix"
// cookie at offset 0, the footer copy of a dynamic or differencing disk;
// or a footer with a valid checksum, version 1.x and a known disk type at
// the end of s, every VHD's and the only mark of a fixed one); false with
// a nil error (no VHD signature); or false with a *disk.Error when s
// carries the signature but fails those checks: the cookie at the end with
// a bad checksum, an unknown version or disk type is disk.ErrCorrupt, the
// cookie one byte later (a 511-byte footer of Virtual PC before 2004) is
// disk.ErrUnsupported. Such a file is a damaged or unread VHD, never a RAW
// disk. Read errors are returned as they are.
func Probe(s disk.Storage) (bool, error) {
	size := s.Size()
	var b [footerSize]byte
	if size >= 8 {
		if err := disk.ReadFull(s, "vhd", "footer copy", b[:8], 0); err != nil {
			return false, err
		}
		if string(b[:8]) == footerCookie {
			return true, nil
		}
	}
	if size < footerSize {
		return false, nil
	}
	at := size - footerSize
	if err := disk.ReadFull(s, "vhd", "footer", b[:], at); err != nil {
		return false, err
	}
	if string(b[:8]) == footerCookie {
		if _, err := parseFooter(b[:], at); err != nil {
			return false, disk.Errorf("vhd", disk.ErrCorrupt, "%s: the last 512 bytes carry the %q cookie of a VHD footer but fail its checks (%s)", s.Name(), footerCookie, strings.TrimPrefix(err.Error(), "vhd: "))
		}
		return true, nil
	}
	if size > footerSize && string(b[1:9]) == footerCookie {
		return false, disk.Errorf("vhd", disk.ErrUnsupported, "%s: 511-byte footer at byte %d (made before Virtual PC 2004)", s.Name(), at+1)
	}
	return false, nil
}
