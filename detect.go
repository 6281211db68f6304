package diskport

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/diskport/diskport/disk"
)

// A Format names an image format.
type Format string

// The formats Detect recognises. Only Raw, VMDK and VHD are read; the
// others are recognised so they are never mistaken for RAW.
const (
	Raw   Format = "raw"
	VMDK  Format = "vmdk"
	VHD   Format = "vhd"
	VHDX  Format = "vhdx"
	QCOW2 Format = "qcow2"
)

// ParseFormat parses a declared format name, case-insensitively: RAW, VMDK
// and VHD as EC2 spells them, and qemu's "vpc" for VHD.
func ParseFormat(name string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "raw", "img":
		return Raw, nil
	case "vmdk":
		return VMDK, nil
	case "vhd", "vpc":
		return VHD, nil
	case "vhdx":
		return VHDX, nil
	case "qcow2":
		return QCOW2, nil
	}
	return "", disk.Errorf("diskport", disk.ErrUnsupported, "unknown image format %q (want RAW, VMDK or VHD)", name)
}

// Detect sniffs the format of the image stored in s from its magic bytes:
// VMDK sparse extents (KDMV, COWD) and text descriptors, VHD (the
// "conectix" footer copy at offset 0, or the footer at the end with a valid
// checksum), VHDX, qcow2. Anything else is RAW.
func Detect(s disk.Storage) (Format, error) {
	head := make([]byte, min(s.Size(), 4096))
	if err := disk.ReadFull(s, "diskport", "first sector", head, 0); err != nil {
		return "", err
	}
	switch {
	case bytes.HasPrefix(head, []byte("KDMV")), bytes.HasPrefix(head, []byte("COWD")):
		return VMDK, nil
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return VHDX, nil
	case bytes.HasPrefix(head, []byte("conectix")):
		return VHD, nil
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		return QCOW2, nil
	}
	if s.Size() >= 512 {
		foot := make([]byte, 512)
		if err := disk.ReadFull(s, "diskport", "last sector", foot, s.Size()-512); err != nil {
			return "", err
		}
		if vhdFooter(foot) {
			return VHD, nil
		}
	}
	if vmdkDescriptor(head) {
		return VMDK, nil
	}
	return Raw, nil
}

// vhdFooter reports whether b is a VHD footer with a valid checksum: the
// one's complement of the sum of its bytes, the checksum field (64..67)
// counted as zero.
func vhdFooter(b []byte) bool {
	if !bytes.HasPrefix(b, []byte("conectix")) {
		return false
	}
	var sum uint32
	for i, c := range b[:85] {
		if i < 64 || i > 67 {
			sum += uint32(c)
		}
	}
	return ^sum == binary.BigEndian.Uint32(b[64:68])
}

// vmdkDescriptor applies qemu's probe for a text descriptor: skipping
// comment lines and lines of spaces, the first line must be
// "version=1", "version=2" or "version=3".
func vmdkDescriptor(head []byte) bool {
	for line := range bytes.Lines(head) {
		l := bytes.TrimRight(line, "\r\n")
		if len(bytes.Trim(l, " ")) == 0 || l[0] == '#' {
			if !bytes.HasSuffix(line, []byte("\n")) {
				return false // a comment cut off at the probe's end
			}
			continue
		}
		switch string(l) {
		case "version=1", "version=2", "version=3":
			return bytes.HasSuffix(line, []byte("\n"))
		}
		return false
	}
	return false
}

// String returns the format's name.
func (f Format) String() string { return string(f) }

func mismatch(declared, found Format, name string) error {
	return disk.Errorf("diskport", disk.ErrFormatMismatch,
		"%s: declared %s but the bytes are %s (set TrustFormat / --trust-format to read it as %s anyway)",
		name, strings.ToUpper(string(declared)), describe(found), strings.ToUpper(string(declared)))
}

func describe(f Format) string {
	switch f {
	case VMDK:
		return "a VMDK image or descriptor"
	case VHD:
		return "a VHD image"
	case VHDX:
		return "a VHDX image"
	case QCOW2:
		return "a qcow2 image"
	}
	return strings.ToUpper(string(f))
}
