package vmdk

import (
	"context"
	"fmt"
	"io"

	"github.com/diskport/diskport/disk"
)

// sparseDescSecs is the room qemu-img leaves for a monolithicSparse
// disk's embedded descriptor, and the window qemu reads the CID from.
const sparseDescSecs = 20

// WriteSparse writes src to w as a monolithicSparse VMDK (a hosted sparse
// extent, version 1) laid out as qemu-img lays one out, and returns the
// size of the file written:
//
//   - a header with flags 3 (newline detector, redundant grain directory),
//     grains of 64 KiB stored uncompressed;
//   - at sector 1 the embedded descriptor, in 20 sectors: createType
//     "monolithicSparse", a random CID, no parent, one extent line `RW
//     <sectors> SPARSE "<Name>"` and the same disk database as
//     WriteStream's;
//   - the redundant grain directory and its grain tables, then the grain
//     directory and its grain tables, then the grains from the next
//     64 KiB boundary, in ascending order.
//
// Grains of the source's Zero extents are not read and grains that read
// as zeros are not stored. Unlike qemu-img, which reserves a grain table
// for every 32 MiB of the disk, WriteSparse reserves tables only where the
// source's extent map shows data, and leaves the directory entry of the
// others 0 (unallocated), so a mostly empty disk has little metadata. A
// size that is not a multiple of 512 is rounded up to the next sector; a
// source of 0 bytes, or of more than 2 TiB (the limit of the format's
// 32-bit sector offsets), is refused.
//
// Workers read and test grains in parallel; the calling goroutine writes
// each stored grain from the buffer it was read into, then the tables as
// each 32 MiB group completes, and the header, descriptor and directories
// last. Every byte of the file is written, so w need not start empty; it
// should not be longer than the returned size. On an error (reading src,
// writing w, ctx cancelled) WriteSparse returns 0 and the error; the file
// is then incomplete, and has no header, which is written last.
func WriteSparse(ctx context.Context, w io.WriterAt, src disk.Image, opts WriteOptions) (int64, error) {
	c, err := opts.config()
	if err != nil {
		return 0, err
	}
	size := src.Size()
	capacity, err := capacitySectors(size)
	if err != nil {
		return 0, err
	}
	if capacity > maxSparseSectors {
		return 0, disk.Errorf(formatName, disk.ErrTooLarge, "cannot write a monolithicSparse disk of %d bytes: beyond the 2 TiB its 32-bit sector offsets address", size)
	}
	desc := newDescriptor("monolithicSparse", "RW", capacity, c)
	if len(desc) > sparseDescSecs*disk.SectorSize {
		return 0, fmt.Errorf("vmdk: descriptor of %d bytes does not fit %d sectors", len(desc), sparseDescSecs)
	}
	groups, err := dataGroups(src, size)
	if err != nil {
		return 0, err
	}

	h := sparseHeader{
		Version:          1,
		Flags:            flagValidNewline | flagRedundantGD,
		Capacity:         capacity,
		GrainSize:        writeGrainSecs,
		DescriptorOffset: 1,
		DescriptorSize:   sparseDescSecs,
		NumGTEsPerGT:     writeGTEs,
		NewlineBytes:     newlineDetector,
	}
	entries := h.gdEntries()
	gdSecs := sectorsFor(entries * 4)
	gtsSecs := uint64(len(groups)) * writeGTSecs
	h.RGDOffset = 1 + sparseDescSecs
	rgtOff := h.RGDOffset + gdSecs
	h.GDOffset = rgtOff + gtsSecs
	gtOff := h.GDOffset + gdSecs
	metaEnd := gtOff + gtsSecs
	h.OverHead = (metaEnd + writeGrainSecs - 1) / writeGrainSecs * writeGrainSecs

	sp := &sparseWriter{
		w: w, h: h, groups: groups,
		gd:     make([]uint32, entries),
		rgd:    make([]uint32, entries),
		gt:     make([]uint32, writeGTEs),
		rgtOff: rgtOff, gtOff: gtOff,
		next: h.OverHead,
		size: size, progress: c.progress,
	}
	for i, g := range groups {
		sp.rgd[g] = uint32(rgtOff + uint64(i)*writeGTSecs)
		sp.gd[g] = uint32(gtOff + uint64(i)*writeGTSecs)
	}
	pipe := &grainPipe{src: src, size: size, workers: c.workers}
	if err := pipe.run(ctx, sp.grain); err != nil {
		return 0, err
	}
	if err := sp.finish(desc, metaEnd); err != nil {
		return 0, err
	}
	if sp.progress != nil {
		sp.progress(size, size)
	}
	return int64(sp.next) * disk.SectorSize, nil
}

// dataGroups returns, in order, the grain tables (32 MiB groups of
// grains) that the source's extent map shows data in.
func dataGroups(src disk.Image, size int64) ([]int64, error) {
	var groups []int64
	for e, err := range src.Extents(0, size) {
		if err != nil {
			return nil, fmt.Errorf("vmdk: mapping the source's extents: %w", err)
		}
		if e.Kind != disk.Data || e.Length <= 0 {
			continue
		}
		first, last := e.Offset/groupBytes, (e.End()-1)/groupBytes
		if n := len(groups); n > 0 && groups[n-1] >= first {
			first = groups[n-1] + 1
		}
		for g := first; g <= last; g++ {
			groups = append(groups, g)
		}
	}
	return groups, nil
}

// A sparseWriter stores grains as they arrive in order and writes each
// group's grain tables (primary and redundant) once the grains have moved
// past it.
type sparseWriter struct {
	w             io.WriterAt
	h             sparseHeader
	groups        []int64  // groups with a reserved table, ascending
	done          int      // groups[:done] have their tables written
	gd, rgd       []uint32 // the directories
	gt            []uint32 // the table of groups[done]
	rgtOff, gtOff uint64   // sectors of the first reserved tables
	next          uint64   // sector of the next grain
	size          int64
	progress      func(done, total int64)
	table         [writeGTSecs * disk.SectorSize]byte
}

func (s *sparseWriter) writeAt(p []byte, sec uint64, what string) error {
	off := int64(sec) * disk.SectorSize
	if _, err := s.w.WriteAt(p, off); err != nil {
		return fmt.Errorf("vmdk: writing the %s at byte %d: %w", what, off, err)
	}
	return nil
}

// grain stores one grain from the pipeline (nothing for a zero grain).
func (s *sparseWriter) grain(j *grainJob) error {
	if !j.zero {
		g := j.index / writeGTEs
		if err := s.flushBefore(g); err != nil {
			return err
		}
		if s.done == len(s.groups) || s.groups[s.done] != g {
			// The extent map changed between the two walks.
			return fmt.Errorf("vmdk: the source's extent map shows data at byte %d that it did not show before", j.index*writeGrainBytes)
		}
		if s.next+writeGrainSecs > maxSparseSectors {
			return disk.Errorf(formatName, disk.ErrTooLarge, "monolithicSparse output reached sector %d: beyond the 2 TiB its 32-bit sector offsets address", s.next)
		}
		s.gt[j.index%writeGTEs] = uint32(s.next)
		if err := s.writeAt(j.buf, s.next, "grain"); err != nil {
			return err
		}
		s.next += writeGrainSecs
	}
	if s.progress != nil {
		s.progress(min((j.index+1)*writeGrainBytes, s.size), s.size)
	}
	return nil
}

// flushBefore writes the tables of the reserved groups before group g.
func (s *sparseWriter) flushBefore(g int64) error {
	for s.done < len(s.groups) && s.groups[s.done] < g {
		putTable(s.table[:], s.gt)
		clear(s.gt)
		rgt := s.rgtOff + uint64(s.done)*writeGTSecs
		gt := s.gtOff + uint64(s.done)*writeGTSecs
		if err := s.writeAt(s.table[:], rgt, "redundant grain table"); err != nil {
			return err
		}
		if err := s.writeAt(s.table[:], gt, "grain table"); err != nil {
			return err
		}
		s.done++
	}
	return nil
}

// finish writes the remaining tables, then the metadata in front:
// header, descriptor, both directories and the padding up to the first
// grain.
func (s *sparseWriter) finish(desc string, metaEnd uint64) error {
	if err := s.flushBefore(1 << 62); err != nil {
		return err
	}
	head := make([]byte, s.h.RGDOffset*disk.SectorSize)
	s.h.marshal(head)
	copy(head[disk.SectorSize:], desc)
	if err := s.writeAt(head, 0, "header and descriptor"); err != nil {
		return err
	}
	gdBytes := make([]byte, sectorsFor(uint64(len(s.gd))*4)*disk.SectorSize)
	putTable(gdBytes, s.rgd)
	if err := s.writeAt(gdBytes, s.h.RGDOffset, "redundant grain directory"); err != nil {
		return err
	}
	putTable(gdBytes, s.gd)
	if err := s.writeAt(gdBytes, s.h.GDOffset, "grain directory"); err != nil {
		return err
	}
	pad := make([]byte, (s.h.OverHead-metaEnd)*disk.SectorSize)
	if len(pad) > 0 {
		if err := s.writeAt(pad, metaEnd, "padding"); err != nil {
			return err
		}
	}
	return nil
}
