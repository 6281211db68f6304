package ova

import (
	"errors"
	"fmt"
	"io"
	"iter"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
)

// An Image is a disk of the appliance, open: a disk.Image read in place
// from its member. Closing it does not close the appliance.
type Image struct {
	disk.Image
	// Disk is the appliance's disk the image reads.
	Disk   Disk
	app    *Appliance
	hs     *hashedStorage // nil when the .mf lists no checksum for it
	stream *streamImage   // a gzip-compressed member, read as a stream
}

// OpenDisk opens disk i of [Appliance.Disks] through diskport's format
// table, as the format the descriptor declares (the bytes must agree),
// and checks the image's virtual size against the declared capacity. The
// member's .mf checksum is computed as the image is read; call
// [Image.Verify] when done.
func (a *Appliance) OpenDisk(i int) (*Image, error) {
	if i < 0 || i >= len(a.Disks) {
		return nil, disk.Errorf("ova", disk.ErrUnsupported, "%s: no disk %d: the appliance has %d", a.s.Name(), i, len(a.Disks))
	}
	d := a.Disks[i]
	switch {
	case d.File == "":
		return nil, disk.Errorf("ova", disk.ErrUnsupported, "%s: disk %q has no file: it is an empty disk the importer creates", a.s.Name(), d.ID)
	case d.Format == "":
		return nil, disk.Errorf("ova", disk.ErrUnsupported, "%s: disk %q has format %q, which names no format diskport reads", a.s.Name(), d.ID, d.FormatURI)
	}
	if d.Compression == "gzip" {
		img, err := a.openStream(d)
		if err != nil {
			return nil, err
		}
		return img, a.checkCapacity(img)
	}
	var s disk.Storage = newSection(a.s, d.member)
	var hs *hashedStorage
	if d.Digest.Algorithm != "" {
		hs = newHashedStorage(s, d.File, d.Digest)
		s = hs
	}
	img, err := diskport.OpenStorage(s, diskport.Options{Format: string(d.Format), SingleFile: true, MaxVirtualSize: a.opts.MaxVirtualSize})
	if err != nil {
		return nil, fmt.Errorf("ova: disk %q (member %q): %w", d.ID, d.File, err)
	}
	m := &Image{Image: img, Disk: d, hs: hs, app: a}
	if err := a.checkCapacity(m); err != nil {
		img.Close()
		return nil, err
	}
	return m, nil
}

// checkCapacity checks the image's virtual size against the declared
// capacity (rounded up to a sector, as RAW sizes are).
func (a *Appliance) checkCapacity(m *Image) error {
	d := m.Disk
	if sz := m.Size(); sz != d.Capacity && sz != (d.Capacity+disk.SectorSize-1)/disk.SectorSize*disk.SectorSize {
		return disk.Errorf("ova", disk.ErrCorrupt, "%s: disk %q: the descriptor says a capacity of %d bytes, but the image in %q is %d bytes", a.s.Name(), d.ID, d.Capacity, d.File, sz)
	}
	return nil
}

// Fingerprint identifies a streamed disk for a resume journal
// (convert.Fingerprinter), without reading it: the member, its size and
// .mf checksum, and the capacity. It is "" for a disk read in place, whose
// bytes can be sampled.
func (m *Image) Fingerprint() string {
	if m.stream == nil {
		return ""
	}
	d := m.Disk
	return fmt.Sprintf("ova-stream|%s|%d|%s:%s|%d", d.File, d.member.Size, d.Digest.Algorithm, d.Digest.Sum, d.Capacity)
}

// Storage returns the storage the disk's image reads: the member's bytes
// in place, hashed for the .mf as they are read (so [Image.Verify] checks
// whatever reads them, such as an import manifest's writer); nil for a
// gzip-compressed member, which has no such storage.
func (m *Image) Storage() disk.Storage {
	if m.stream != nil {
		return nil
	}
	if m.hs != nil {
		return m.hs
	}
	return newSection(m.app.s, m.Disk.member)
}

// Sequential reports that the disk is a gzip-compressed member read as a
// stream: it must be read in ascending order (convert it with one
// worker), and Verify then finishes the stream.
func (m *Image) Sequential() bool { return m.stream != nil }

// Verify checks the member's .mf checksum, reading only the bytes the
// reads so far skipped: a mismatch is a disk.ErrCorrupt error naming the
// member. With no checksum listed (Options.NoVerifyManifest) it does
// nothing.
func (m *Image) Verify() error {
	if m.stream != nil {
		return m.stream.check(m.Disk)
	}
	if m.hs == nil {
		return nil
	}
	return m.hs.Check()
}

// BytesRead is how many bytes of the member have been read, for the
// record that a conversion reads each byte once.
func (m *Image) BytesRead() int64 {
	if m.stream != nil {
		m.stream.mu.Lock()
		defer m.stream.mu.Unlock()
		return m.stream.cr.n
	}
	if m.hs == nil {
		return 0
	}
	return m.hs.bytesRead()
}

// Info describes the disk as its reader does, with the appliance's view
// under Specific["ova"].
func (m *Image) Info() disk.Info {
	info := m.Image.Info()
	spec := map[string]any{}
	for k, v := range info.Specific {
		spec[k] = v
	}
	spec["ova"] = m.Disk
	info.Specific = spec
	return info
}

// ReadAt reads the disk; an error names the member.
func (m *Image) ReadAt(p []byte, off int64) (int, error) {
	n, err := m.Image.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("ova member %q: %w", m.Disk.File, err)
	}
	return n, err
}

// Extents yields the disk's extents; an error names the member.
func (m *Image) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	return func(yield func(disk.Extent, error) bool) {
		for e, err := range m.Image.Extents(off, n) {
			if err != nil {
				err = fmt.Errorf("ova member %q: %w", m.Disk.File, err)
			}
			if !yield(e, err) {
				return
			}
		}
	}
}
