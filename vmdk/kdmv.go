package vmdk

import (
	"github.com/diskport/diskport/disk"
)

// openKDMV opens the hosted sparse extent s: header (or stream footer),
// embedded descriptor, grain directory. The descriptor is nil when the
// extent embeds none.
func openKDMV(s disk.Storage, cache *gtCache) (*sparseExtent, *descriptor, error) {
	name := s.Name()
	var b [headerSize]byte
	if err := disk.ReadFull(s, formatName, "sparse extent header", b[:], 0); err != nil {
		return nil, nil, err
	}
	if string(b[:4]) != magicKDMV {
		return nil, nil, disk.Errorf(formatName, disk.ErrFormatMismatch, "%s: no KDMV magic at offset 0", name)
	}
	h := parseSparseHeader(b[:])
	fileSecs := uint64(s.Size()) / disk.SectorSize
	x := &sparseExtent{s: s, kind: magicKDMV, fileSecs: fileSecs, cache: cache}
	x.meta = []span{{0, 1, "header"}}
	if h.GDOffset == gdAtEnd {
		f, err := readFooter(s, &h)
		if err != nil {
			return nil, nil, err
		}
		h = f
		x.footer = true
		x.meta = append(x.meta, span{fileSecs - 3, fileSecs, "footer"})
	}
	if err := h.validate(name, fileSecs); err != nil {
		return nil, nil, err
	}
	x.hdr = h
	x.capacity = int64(h.Capacity) * disk.SectorSize
	x.grainSecs = h.GrainSize
	x.grainBytes = int64(h.GrainSize) * disk.SectorSize
	x.gtes = uint64(h.NumGTEsPerGT)
	x.gtSecs = (x.gtes*4 + disk.SectorSize - 1) / disk.SectorSize
	x.zeroed = h.Flags&flagZeroedGTE != 0 && h.Version >= 2
	x.compressed = h.compressed()
	x.gtBelowOver = !x.compressed
	x.overHead = h.OverHead
	if h.OverHead > fileSecs {
		return nil, nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: file truncated: metadata ends at sector %d, file has %d sectors", name, h.OverHead, fileSecs)
	}
	if h.OverHead == 0 {
		return nil, nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: overhead of 0 sectors leaves no room for the header", name)
	}

	var desc *descriptor
	if h.DescriptorOffset != 0 {
		end := h.DescriptorOffset + h.DescriptorSize // validated: no overflow, inside the file
		if err := x.addMeta(span{h.DescriptorOffset, end, "embedded descriptor"}); err != nil {
			return nil, nil, err
		}
		if x.gtBelowOver && end > x.overHead {
			return nil, nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: embedded descriptor at sectors %d-%d overlaps the grain area starting at sector %d", name, h.DescriptorOffset, end, x.overHead)
		}
		n := min(h.DescriptorSize*disk.SectorSize, maxDescriptorBytes)
		buf := make([]byte, n)
		if err := disk.ReadFull(s, formatName, "embedded descriptor", buf, int64(h.DescriptorOffset)*disk.SectorSize); err != nil {
			return nil, nil, err
		}
		d, err := parseDescriptor(buf, true)
		if err != nil {
			return nil, nil, err
		}
		desc = d
	}

	entries := h.gdEntries()
	if h.Flags&flagRedundantGD != 0 && h.RGDOffset != 0 {
		// The redundant directory is only mapped as metadata, so nothing
		// may point into it; reads use the primary directory like qemu.
		gdSecs := (entries*4 + disk.SectorSize - 1) / disk.SectorSize
		end, ok := addSectors(h.RGDOffset, gdSecs)
		if !ok || end > fileSecs {
			return nil, nil, disk.Errorf(formatName, disk.ErrCorrupt, "%s: redundant grain directory at sector %d (%d entries) past end of file (%d sectors)", name, h.RGDOffset, entries, fileSecs)
		}
		if err := x.addMeta(span{h.RGDOffset, end, "redundant grain directory"}); err != nil {
			return nil, nil, err
		}
	}
	if err := x.loadGD(h.GDOffset, entries, "grain directory"); err != nil {
		return nil, nil, err
	}
	return x, desc, nil
}

// readFooter reads the footer of a stream whose header says GD_AT_END:
// [footer marker][footer][end-of-stream marker] in the last three sectors.
// The footer replaces the header (qemu: "the footer takes precedence").
func readFooter(s disk.Storage, h *sparseHeader) (sparseHeader, error) {
	name := s.Name()
	if h.Flags&flagEmbeddedLBA == 0 {
		return sparseHeader{}, disk.Errorf(formatName, disk.ErrCorrupt, "%s: grain directory at end of file without stream markers", name)
	}
	size := s.Size()
	if size%disk.SectorSize != 0 || size < 4*disk.SectorSize {
		return sparseHeader{}, disk.Errorf(formatName, disk.ErrCorrupt, "%s: truncated stream: no room for a footer (file size %d bytes: want whole sectors, at least 4)", name, size)
	}
	var b [3 * disk.SectorSize]byte
	if err := disk.ReadFull(s, formatName, "stream footer", b[:], size-int64(len(b))); err != nil {
		return sparseHeader{}, err
	}
	fm := parseMarker(b[:disk.SectorSize])
	eos := parseMarker(b[2*disk.SectorSize:])
	if fm.size != 0 || fm.typ != markerFooter || string(b[512:516]) != magicKDMV ||
		eos.val != 0 || eos.size != 0 || eos.typ != markerEOS {
		return sparseHeader{}, disk.Errorf(formatName, disk.ErrCorrupt, "%s: truncated or corrupt stream: no footer marker, footer and end-of-stream marker in the last 3 sectors (footer marker type %d size %d, end marker type %d size %d)", name, fm.typ, fm.size, eos.typ, eos.size)
	}
	f := parseSparseHeader(b[512:1024])
	switch {
	case f.GDOffset == gdAtEnd:
		return sparseHeader{}, disk.Errorf(formatName, disk.ErrCorrupt, "%s: footer's grain directory is again at end of file", name)
	case f.Version != h.Version:
		return sparseHeader{}, disk.Errorf(formatName, disk.ErrCorrupt, "%s: footer version %d differs from header version %d", name, f.Version, h.Version)
	case f.DescriptorOffset != h.DescriptorOffset || f.DescriptorSize != h.DescriptorSize:
		return sparseHeader{}, disk.Errorf(formatName, disk.ErrCorrupt, "%s: footer's descriptor (sector %d, %d sectors) differs from the header's (sector %d, %d sectors)", name, f.DescriptorOffset, f.DescriptorSize, h.DescriptorOffset, h.DescriptorSize)
	case f.Capacity != h.Capacity || f.GrainSize != h.GrainSize:
		return sparseHeader{}, disk.Errorf(formatName, disk.ErrCorrupt, "%s: footer's capacity %d / grain %d differ from the header's %d / %d", name, f.Capacity, f.GrainSize, h.Capacity, h.GrainSize)
	}
	return f, nil
}
