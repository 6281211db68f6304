package vmdk

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/diskport/diskport/disk"
)

// streamOverHead is where a VMware stream's first grain starts: 128
// sectors (64 KiB), the header and the descriptor before it.
const streamOverHead = 128

// WriteStream writes src to w as a streamOptimized VMDK the way VMware
// writes one, front to back without seeking, and returns the number of
// bytes written:
//
//   - a version 3 header with flags 0x30001 (newline detector, compressed
//     grains, markers; no redundant grain directory), compressAlgorithm 1
//     and the grain directory "at end" (gdOffset ffffffffffffffff);
//   - at sector 1 the embedded descriptor: createType "streamOptimized", a
//     random CID, no parent, one extent line `RDONLY <sectors> SPARSE
//     "<Name>"`, the adapter type and its geometry, a random
//     ddb.longContentID, ddb.toolsInstallType, ddb.toolsVersion and
//     ddb.virtualHWVersion;
//   - from sector 128, each grain of 64 KiB that is not all zeros, in
//     ascending order, as a grain marker (LBA, compressed size) and the
//     grain's zlib stream, padded to a sector; after the grains of each
//     grain table that has any, a grain table marker and the 512-entry
//     table;
//   - a grain directory marker and the directory, a footer marker and the
//     footer (the header with the directory's real offset), and the
//     end-of-stream marker.
//
// Grains of the source's Zero extents are not read; grains that read as
// zeros are not written, nor are grain tables without grains. A source
// whose size is not a multiple of 512 gets a capacity rounded up to the
// next sector, the added bytes reading as zeros. The grain holding the end
// of the disk is compressed whole, zero-padded to 64 KiB, because qemu-img
// refuses a grain that inflates to less. A source of 0 bytes is refused
// (qemu and VMware do not read a disk of capacity 0), and so is one whose
// grain directory would exceed what readers accept (over 1 PiB), or whose
// output would pass the 2 TiB that 32-bit sector offsets address.
//
// opts.Workers goroutines read, test and compress grains in parallel;
// the output is written in order from the calling goroutine. On an error
// (reading src, writing w, ctx cancelled) WriteStream stops and returns
// it with the bytes written so far: the output is then incomplete and has
// no footer.
func WriteStream(ctx context.Context, w io.Writer, src disk.Image, opts WriteOptions) (int64, error) {
	c, err := opts.config()
	if err != nil {
		return 0, err
	}
	size := src.Size()
	capacity, err := capacitySectors(size)
	if err != nil {
		return 0, err
	}
	if capacity > maxGDEntries*writeGTEs*writeGrainSecs {
		// The reader (like qemu) refuses a grain directory this large.
		return 0, disk.Errorf(formatName, disk.ErrTooLarge, "cannot write a stream of %d bytes: beyond the %d grain tables a directory may list", size, maxGDEntries)
	}
	desc := newDescriptor("streamOptimized", "RDONLY", capacity, c)
	h := sparseHeader{
		Version:           3,
		Flags:             flagValidNewline | flagCompressed | flagEmbeddedLBA,
		Capacity:          capacity,
		GrainSize:         writeGrainSecs,
		DescriptorOffset:  1,
		DescriptorSize:    sectorsFor(uint64(len(desc))),
		NumGTEsPerGT:      writeGTEs,
		GDOffset:          gdAtEnd,
		OverHead:          streamOverHead,
		NewlineBytes:      newlineDetector,
		CompressAlgorithm: compressDeflate,
	}
	sw := &streamWriter{
		w:        bufio.NewWriterSize(w, 256<<10),
		h:        h,
		gd:       make([]uint32, h.gdEntries()),
		gt:       make([]uint32, writeGTEs),
		group:    -1,
		size:     size,
		progress: c.progress,
	}
	if err := sw.start(desc); err != nil {
		return sw.n, err
	}
	level := c.level
	pipe := &grainPipe{
		src: src, size: size, workers: c.workers,
		newOut: func() []byte { return make([]byte, streamGrainBuf) },
		work:   func(j *grainJob) error { return compressGrain(j, level) },
	}
	if err := pipe.run(ctx, sw.grain); err != nil {
		return sw.n, err
	}
	if err := sw.finish(); err != nil {
		return sw.n, err
	}
	return sw.n, nil
}

// streamGrainBuf is the size of a job's output buffer: the grain marker,
// the largest zlib stream of a grain, and the padding to a sector.
var streamGrainBuf = int(sectorsFor(uint64(grainMarkerSize+deflateBound(writeGrainBytes)))) * disk.SectorSize

// compressGrain fills j.out with the grain marker and zlib stream of
// j.buf, padded with zeros to a whole sector.
func compressGrain(j *grainJob, level int) error {
	j.out = j.out[:cap(j.out)]
	n, err := deflateGrain(j.out[grainMarkerSize:], j.buf, level)
	if err != nil {
		return fmt.Errorf("vmdk: compressing the grain at byte %d: %w", j.index*writeGrainBytes, err)
	}
	binary.LittleEndian.PutUint64(j.out, uint64(j.index)*writeGrainSecs)
	binary.LittleEndian.PutUint32(j.out[8:], uint32(n))
	end := grainMarkerSize + n
	padded := int(sectorsFor(uint64(end))) * disk.SectorSize
	clear(j.out[end:padded])
	j.out = j.out[:padded]
	return nil
}

// A streamWriter lays out a stream as its grains arrive in order.
type streamWriter struct {
	w        *bufio.Writer
	n        int64 // bytes written to w so far
	h        sparseHeader
	gd       []uint32 // grain directory: sector of each grain table, 0 for none
	gt       []uint32 // the table of the current group
	group    int64    // grain table the current grains belong to; -1 before the first
	size     int64
	progress func(done, total int64)
	sect     [disk.SectorSize]byte
}

// sector returns the sector the next write lands on, failing when it is
// beyond the 32-bit sector numbers of grain tables and the directory.
func (s *streamWriter) sector() (uint32, error) {
	sec := s.n / disk.SectorSize
	if sec > math.MaxUint32 {
		return 0, disk.Errorf(formatName, disk.ErrTooLarge, "stream output reached %d bytes: beyond the 2 TiB a sparse extent's 32-bit sector offsets address", s.n)
	}
	return uint32(sec), nil
}

func (s *streamWriter) write(p []byte) error {
	k, err := s.w.Write(p)
	s.n += int64(k)
	if err != nil {
		return fmt.Errorf("vmdk: writing the stream at byte %d: %w", s.n, err)
	}
	return nil
}

// start writes the header, the descriptor and the padding up to the
// first grain.
func (s *streamWriter) start(desc string) error {
	meta := make([]byte, streamOverHead*disk.SectorSize)
	s.h.marshal(meta)
	copy(meta[disk.SectorSize:], desc)
	return s.write(meta)
}

// grain writes one grain from the pipeline (nothing for a zero grain),
// closing the previous group's table when the grain starts a new one.
func (s *streamWriter) grain(j *grainJob) error {
	if !j.zero {
		if g := j.index / writeGTEs; g != s.group {
			if err := s.flushGT(); err != nil {
				return err
			}
			s.group = g
		}
		sec, err := s.sector()
		if err != nil {
			return err
		}
		s.gt[j.index%writeGTEs] = sec
		if err := s.write(j.out); err != nil {
			return err
		}
	}
	if s.progress != nil {
		s.progress(min((j.index+1)*writeGrainBytes, s.size), s.size)
	}
	return nil
}

// flushGT writes the grain table of the current group, if it has grains,
// behind its marker, and enters it in the directory.
func (s *streamWriter) flushGT() error {
	if s.group < 0 {
		return nil
	}
	putMarker(s.sect[:], writeGTSecs, markerGT)
	if err := s.write(s.sect[:]); err != nil {
		return err
	}
	sec, err := s.sector()
	if err != nil {
		return err
	}
	s.gd[s.group] = sec
	var table [writeGTSecs * disk.SectorSize]byte
	putTable(table[:], s.gt)
	clear(s.gt)
	s.group = -1
	return s.write(table[:])
}

// finish writes the last grain table, the directory, the footer and the
// end-of-stream marker, and flushes the output.
func (s *streamWriter) finish() error {
	if err := s.flushGT(); err != nil {
		return err
	}
	gdSecs := sectorsFor(uint64(len(s.gd)) * 4)
	putMarker(s.sect[:], gdSecs, markerGD)
	if err := s.write(s.sect[:]); err != nil {
		return err
	}
	gdOff, err := s.sector()
	if err != nil {
		return err
	}
	table := make([]byte, gdSecs*disk.SectorSize)
	putTable(table, s.gd)
	if err := s.write(table); err != nil {
		return err
	}
	var tail [3 * disk.SectorSize]byte
	putMarker(tail[:], 1, markerFooter)
	footer := s.h
	footer.GDOffset = uint64(gdOff)
	footer.marshal(tail[disk.SectorSize:])
	putMarker(tail[2*disk.SectorSize:], 0, markerEOS)
	if err := s.write(tail[:]); err != nil {
		return err
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("vmdk: writing the stream at byte %d: %w", s.n, err)
	}
	if s.progress != nil {
		s.progress(s.size, s.size)
	}
	return nil
}
