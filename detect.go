package diskport

import (
	"bytes"
	"strings"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/vhd"
	"github.com/diskport/diskport/vmdk"
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
	if ok, err := vhd.Probe(s); ok || err != nil {
		return VHD, err
	}
	if ok, err := vmdk.Probe(s); ok || err != nil {
		return VMDK, err
	}
	return Raw, nil
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
