// Package ova reads OVA appliances, as VMware's ovftool, VirtualBox and
// image builders export them: a tar archive (ustar, GNU or pax; members in
// any order) holding an OVF descriptor (DMTF DSP0243 1.x or 2.x), an
// optional .mf manifest of SHA-1, SHA-256 or SHA-512 checksums, an
// optional .cert, and the disk files.
//
// Nothing is extracted: each disk is read in place, as a storage over its
// member's byte range, and opened through diskport's format table with
// the format the descriptor declares checked against the bytes
// ([diskport.OpenStorage]). Member names are never used as paths. The .mf
// checksum of a disk member is computed as a conversion reads the member
// and checked by [Image.Verify] at its end (which reads only the bytes the
// conversion skipped), so each byte of the OVA is read once. A
// gzip-compressed member (ovf:compression="gzip") is inflated as a stream,
// in one pass, and must be read in order ([Image.Sequential]): a
// streamOptimized VMDK or a RAW disk. The .cert's signature over the .mf
// is checked; its certificate's chain of trust is not.
//
// Hostile appliances are refused with disk.Err* errors in bounded time
// and memory: truncated members and headers that lie about sizes, a
// descriptor with a DOCTYPE, thousands of disks, capacities past the
// limit, over-long manifest lines.
package ova

import (
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
)

// Options say how an appliance is read.
type Options struct {
	// NoVerifyManifest reads an appliance whose .mf is missing, lacks a
	// disk, or lists a file the archive lacks. Checksums the .mf lists are
	// verified still.
	NoVerifyManifest bool
	// MaxVirtualSize caps each disk's capacity (0: 64 TiB) and is passed
	// to the disk readers.
	MaxVirtualSize int64
	// MaxDisks caps the number of disks (0: 64).
	MaxDisks int
}

const (
	defaultMaxVirtualSize = 64 << 40
	defaultMaxDisks       = 64
	maxMembers            = 1024
	maxManifest           = 1 << 20
)

// An Appliance is an open OVA.
type Appliance struct {
	s       disk.Storage
	own     io.Closer // the file Open opened, or nil
	opts    Options
	members map[string]Member

	// Members lists the archive's regular files in archive order.
	Members []Member
	// Descriptor, Manifest and Cert name the .ovf, .mf and .cert members
	// ("" when absent).
	Descriptor, Manifest, Cert string
	// Version is the OVF version the descriptor declares ("1.0", "2.0").
	Version string
	// System is the virtual system's name (or id).
	System string
	// Disks lists the virtual system's disks in boot order: as attached
	// in the hardware section (controllers in the order listed, then by
	// address on the controller), then any disks no hardware item uses.
	Disks []Disk
	// Digests are the .mf's checksums by file name.
	Digests map[string]Digest
	// Signature is what the .cert says of the .mf; nil without a .cert
	// (or without an .mf for it to sign).
	Signature *Signature
	// Unverified lists the files the .mf lists that are neither the
	// descriptor nor a disk and too large to check on open (over 1 MiB):
	// their checksums are not checked.
	Unverified []string
}

// A Disk is one disk of the appliance.
type Disk struct {
	// ID is the descriptor's ovf:diskId.
	ID string `json:"id"`
	// File is the member holding the disk (its ovf:href).
	File string `json:"file"`
	// FormatURI is the ovf:format; Format the diskport format it declares.
	FormatURI string          `json:"format_uri"`
	Format    diskport.Format `json:"format"`
	// Capacity is the virtual size the descriptor declares, in bytes.
	Capacity int64 `json:"capacity"`
	// Compression is the member's ovf:compression ("" or "gzip").
	Compression string `json:"compression,omitempty"`
	// Controller and Address say where the disk is attached ("SCSI
	// controller 0", "0"); "" when no hardware item attaches it.
	Controller string `json:"controller,omitempty"`
	Address    string `json:"address,omitempty"`
	// Digest is the .mf's checksum of the member (Algorithm "" if none).
	Digest Digest `json:"-"`

	member Member
}

// OpenFile opens the OVA at path (a regular file, opened without
// blocking); closing the appliance closes the file.
func OpenFile(path string, opts Options) (*Appliance, error) {
	h, err := disk.OpenHostFile(path)
	if err != nil {
		return nil, err
	}
	a, err := Open(h, opts)
	if err != nil {
		h.Close()
		return nil, err
	}
	a.own = h
	return a, nil
}

// Open reads the OVA stored in s: its tar headers, descriptor and
// manifest (not the disks). Closing the appliance does not close s.
func Open(s disk.Storage, opts Options) (*Appliance, error) {
	if opts.MaxVirtualSize <= 0 {
		opts.MaxVirtualSize = defaultMaxVirtualSize
	}
	if opts.MaxDisks <= 0 {
		opts.MaxDisks = defaultMaxDisks
	}
	ms, err := walk(s, maxMembers)
	if err != nil {
		return nil, err
	}
	a := &Appliance{s: s, opts: opts, Members: ms, members: map[string]Member{}}
	for _, m := range ms {
		a.members[m.Name] = m
		var slot *string
		switch strings.ToLower(path.Ext(m.Name)) {
		case ".ovf":
			slot = &a.Descriptor
		case ".mf":
			slot = &a.Manifest
		case ".cert":
			slot = &a.Cert
		default:
			continue
		}
		if *slot != "" {
			return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s: two %s members, %q and %q", s.Name(), path.Ext(m.Name), *slot, m.Name)
		}
		*slot = m.Name
	}
	if a.Descriptor == "" {
		return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s: no .ovf descriptor in the archive: not an OVA (from another tar, extract the disk image first)", s.Name())
	}
	desc, err := a.readMember(a.Descriptor, maxDescriptor)
	if err != nil {
		return nil, err
	}
	if a.Manifest != "" {
		mf, err := a.readMember(a.Manifest, maxManifest)
		if err != nil {
			return nil, err
		}
		if a.Cert != "" {
			cert, err := a.readMember(a.Cert, maxCert)
			if err != nil {
				return nil, err
			}
			if a.Signature, err = checkCert(a.Cert, cert, a.Manifest, mf); err != nil {
				return nil, err
			}
		}
		if a.Digests, err = parseManifest(a.Manifest, mf); err != nil {
			return nil, err
		}
		if err := a.checkListed(); err != nil {
			return nil, err
		}
		if d, ok := a.Digests[a.Descriptor]; ok {
			if err := checkSum(a.Descriptor, d, desc); err != nil {
				return nil, err
			}
		} else if !opts.NoVerifyManifest {
			return nil, coverage(disk.ErrCorrupt, "%s: the .mf %q does not list the descriptor %q", s.Name(), a.Manifest, a.Descriptor)
		}
	} else if !opts.NoVerifyManifest {
		return nil, coverage(disk.ErrUnsafe, "%s: no .mf manifest, so the disks' checksums cannot be verified", s.Name())
	}
	env, err := parseDescriptor(a.Descriptor, desc)
	if err != nil {
		return nil, err
	}
	if err := a.describe(env); err != nil {
		return nil, err
	}
	if err := a.checkOthers(); err != nil {
		return nil, err
	}
	return a, nil
}

// maxOther bounds the files other than disks that Open checks against
// the .mf (NVRAM, small ISO and text files).
const maxOther = 1 << 20

// checkOthers checks the .mf checksums of the listed files that are
// neither the descriptor nor a disk, when small; it lists the others in
// Unverified.
func (a *Appliance) checkOthers() error {
	disks := map[string]bool{a.Descriptor: true}
	for _, d := range a.Disks {
		disks[d.File] = true
	}
	for _, m := range a.Members {
		dg, ok := a.Digests[m.Name]
		if !ok || disks[m.Name] {
			continue
		}
		if m.Size > maxOther {
			a.Unverified = append(a.Unverified, m.Name)
			continue
		}
		b, err := a.readMember(m.Name, maxOther)
		if err != nil {
			return err
		}
		if err := checkSum(m.Name, dg, b); err != nil {
			return err
		}
	}
	return nil
}

// checkSum checks b against the .mf's checksum of member name.
func checkSum(name string, d Digest, b []byte) error {
	h := d.newHash()
	h.Write(b)
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != d.Sum {
		return disk.Errorf("ova", disk.ErrCorrupt, "member %q: %s checksum mismatch: the bytes hash to %s, the .mf says %s", name, d.Algorithm, got, d.Sum)
	}
	return nil
}

// A CoverageError is the error for an .mf that does not cover the
// appliance (missing, lacking a disk or the descriptor, or listing a file
// the archive lacks), which Options.NoVerifyManifest accepts. It matches
// its class, disk.ErrCorrupt or disk.ErrUnsafe (no .mf at all).
type CoverageError struct {
	Class error  // disk.ErrCorrupt or disk.ErrUnsafe
	Msg   string // what the .mf lacks or lists, naming the OVA
}

// Error returns "ova: " and the message.
func (e *CoverageError) Error() string { return "ova: " + e.Msg }

// Unwrap returns the class.
func (e *CoverageError) Unwrap() error { return e.Class }

func coverage(class error, msg string, args ...any) error {
	return &CoverageError{Class: class, Msg: fmt.Sprintf(msg, args...)}
}

// checkListed refuses a .mf that lists a file the archive lacks.
func (a *Appliance) checkListed() error {
	if a.opts.NoVerifyManifest {
		return nil
	}
	for name := range a.Digests {
		if _, ok := a.members[name]; !ok {
			return coverage(disk.ErrCorrupt, "%s: the .mf lists %q, which the archive lacks", a.s.Name(), name)
		}
	}
	return nil
}

// readMember reads a small member whole.
func (a *Appliance) readMember(name string, limit int64) ([]byte, error) {
	m := a.members[name]
	if m.Size > limit {
		return nil, disk.Errorf("ova", disk.ErrTooLarge, "%s: member %q is %d bytes, more than the %d a %s may have", a.s.Name(), name, m.Size, limit, path.Ext(name))
	}
	b := make([]byte, m.Size)
	if err := disk.ReadFull(a.s, "ova", "member "+strconv.Quote(name), b, m.Offset); err != nil {
		return nil, err
	}
	return b, nil
}

// Close closes the file OpenFile opened.
func (a *Appliance) Close() error {
	if a.own != nil {
		return a.own.Close()
	}
	return nil
}

// Storage returns the storage the appliance reads.
func (a *Appliance) Storage() disk.Storage { return a.s }
