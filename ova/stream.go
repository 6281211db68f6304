package ova

import (
	"bufio"
	"compress/gzip"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
	"sync"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
)

// A streamImage is a gzip-compressed disk member (ovf:compression="gzip")
// read as a stream, in one pass: the member's bytes are hashed for the .mf
// as they are inflated, and the disk is served in ascending order only.
// It reads a streamOptimized VMDK (grains in ascending order, the only
// VMDK a stream can hold) and a RAW disk of the declared capacity. A read
// before the point already passed is an error: convert such a disk with
// one worker ([Image.Sequential]).
type streamImage struct {
	name   string
	size   int64
	format string

	mu   sync.Mutex
	pos  int64                         // the disk before pos has been served
	next func() (int64, []byte, error) // the next data run: its offset and bytes (io.EOF at the end)
	run  []byte                        // the current run's unserved bytes, from rOff
	rOff int64
	done bool                          // next returned io.EOF
	rest func() error                  // reads what follows the disk and checks the stream's end
	sum  func() (string, int64, error) // the member's checksum and compressed bytes read
	cr   *countingReader

	fileSize int64 // the compressed member's size
}

// countingReader counts and hashes the compressed bytes read.
type countingReader struct {
	r io.Reader
	h hash.Hash // nil without an .mf checksum
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.h != nil {
		c.h.Write(p[:n])
	}
	return n, err
}

// openStream opens the gzip-compressed disk d of a as a stream.
func (a *Appliance) openStream(d Disk) (*Image, error) {
	sec := newSection(a.s, d.member)
	cr := &countingReader{r: io.NewSectionReader(sec, 0, sec.Size())}
	if d.Digest.Algorithm != "" {
		cr.h = d.Digest.newHash()
	}
	zr, err := gzip.NewReader(bufio.NewReaderSize(cr, 1<<20))
	if err != nil {
		return nil, disk.Errorf("ova", disk.ErrCorrupt, "member %q: not gzip-compressed as ovf:compression says: %v", d.File, err)
	}
	zr.Multistream(true)
	br := bufio.NewReaderSize(zr, 1<<20)
	head, err := br.Peek(64 << 10)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, disk.Errorf("ova", disk.ErrCorrupt, "member %q: inflating: %v", d.File, err)
	}
	// The declared format is checked against the inflated bytes by the
	// format table's rule.
	f, err := diskport.FormatOf(disk.NewMemStorage(sec.Name(), head), diskport.Options{Format: string(d.Format)})
	if err != nil {
		return nil, fmt.Errorf("ova: disk %q (member %q, inflated): %w", d.ID, d.File, err)
	}
	if !f.Streams() {
		return nil, disk.Errorf("ova", disk.ErrUnsupported, "member %q: a gzip-compressed %s is read only in place, and a stream can hold only a streamOptimized VMDK or a RAW disk; unpack the OVA and gunzip it first", d.File, f)
	}
	st, err := diskport.OpenStream(f, sec.Name(), br, d.Capacity)
	if err != nil {
		return nil, fmt.Errorf("ova: disk %q (member %q): %w", d.ID, d.File, err)
	}
	m := &streamImage{name: sec.Name(), format: string(f), cr: cr, fileSize: sec.Size(), size: st.Size, next: st.Next}
	if m.size%disk.SectorSize != 0 {
		m.size += disk.SectorSize - m.size%disk.SectorSize
	}
	m.rest = func() error {
		// Inflate to the end, so gzip checks its CRC and length, and read
		// what follows the gzip stream. A RAW disk ends at its capacity.
		// What follows is bounded: a RAW disk has nothing after it, a
		// VMDK stream no more than padding (not a gzip bomb).
		n, err := io.CopyN(io.Discard, br, st.Trailer+1)
		if err != nil && !errors.Is(err, io.EOF) {
			return disk.Errorf("ova", disk.ErrCorrupt, "member %q: inflating: %v", d.File, err)
		}
		if n > st.Trailer {
			return disk.Errorf("ova", disk.ErrCorrupt, "member %q: the inflated disk goes on past its end (capacity %d bytes)", d.File, m.size)
		}
		_, err = io.Copy(io.Discard, cr)
		return err
	}
	var once sync.Once
	var sum string
	m.sum = func() (string, int64, error) {
		var err error
		once.Do(func() {
			err = m.rest()
			if cr.h != nil {
				sum = hex.EncodeToString(cr.h.Sum(nil))
			}
		})
		return sum, cr.n, err
	}
	return &Image{Image: m, Disk: d, stream: m}, nil
}

// Size is the disk's virtual size.
func (m *streamImage) Size() int64 { return m.size }

// ReadAt serves the disk at or after the point already passed.
func (m *streamImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", m.name, off)
	}
	if off >= m.size {
		return 0, io.EOF
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if off < m.pos {
		return 0, disk.Errorf("ova", disk.ErrUnsupported, "%s is gzip-compressed and read as a stream: byte %d was already passed (at %d); read it in order, with one worker", m.name, off, m.pos)
	}
	want := p[:min(int64(len(p)), m.size-off)]
	clear(want)
	end := off + int64(len(want))
	for m.pos < end {
		if err := m.fill(); err != nil {
			return 0, err
		}
		if m.done || m.rOff >= end {
			m.pos = end // zeros up to the next run
			break
		}
		// Drop what lies before off, copy what lies inside.
		if m.rOff < off {
			k := min(int64(len(m.run)), off-m.rOff)
			m.run, m.rOff = m.run[k:], m.rOff+k
			m.pos = m.rOff
			continue
		}
		k := copy(want[m.rOff-off:], m.run)
		m.run, m.rOff = m.run[k:], m.rOff+int64(k)
		m.pos = m.rOff
	}
	if len(want) < len(p) {
		return len(want), io.EOF
	}
	return len(p), nil
}

// Extents looks one run ahead in the stream: the range up to the next
// run (a grain, for a VMDK) reads as zeros, and is passed without being
// read; from that run on, the range is data, as what is zero there is
// known only when the stream gets there.
func (m *streamImage) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	return func(yield func(disk.Extent, error) bool) {
		s, e := disk.ClipRange(off, n, m.size)
		if e <= s {
			return
		}
		m.mu.Lock()
		data, err := m.peek(s)
		if err == nil && data >= e {
			m.pos = max(m.pos, e) // passed as zeros
		}
		m.mu.Unlock()
		switch {
		case err != nil:
			yield(disk.Extent{}, err)
			return
		case data > s:
			if !yield(disk.Extent{Offset: s, Length: min(data, e) - s, Kind: disk.Zero}, nil) {
				return
			}
		}
		if data < e {
			yield(disk.Extent{Offset: max(s, data), Length: e - max(s, data), Kind: disk.Data}, nil)
		}
	}
}

// fill takes the next run of the stream when the current one is used up,
// and marks the end of the stream.
func (m *streamImage) fill() error {
	if len(m.run) != 0 || m.done {
		return nil
	}
	o, b, err := m.next()
	switch {
	case errors.Is(err, io.EOF):
		m.done = true
	case err != nil:
		return err
	case o < m.pos:
		return disk.Errorf(m.format, disk.ErrCorrupt, "%s: data at byte %d after byte %d", m.name, o, m.pos)
	default:
		m.run, m.rOff = b, o
	}
	return nil
}

// peek returns where the stream's next data lies at or after off (the
// disk's size when none does), fetching the next run when none is held.
// Data before off that a reader skipped is dropped. m.mu is held.
func (m *streamImage) peek(off int64) (int64, error) {
	if off < m.pos {
		return off, nil // already passed: ReadAt says so
	}
	for {
		if err := m.fill(); err != nil {
			return 0, err
		}
		if m.done && len(m.run) == 0 {
			return m.size, nil
		}
		if end := m.rOff + int64(len(m.run)); end <= off {
			m.run = nil // a reader skipped it
			m.pos = end
			continue
		}
		return max(m.rOff, off), nil
	}
}

// Info describes the disk.
func (m *streamImage) Info() disk.Info {
	sub := ""
	if m.format == "vmdk" {
		sub = "streamOptimized"
	}
	return disk.Info{Format: m.format, Subformat: sub, VirtualSize: m.size, FileSize: m.fileSize, AllocatedBytes: m.fileSize,
		Specific: map[string]any{"compression": "gzip", "streamed": true}}
}

// Close does nothing: the appliance owns the file.
func (m *streamImage) Close() error { return nil }

// check finishes the stream (the disk's remaining runs, then the gzip
// stream's end and what follows it) and compares the member's checksum.
func (m *streamImage) check(d Disk) error {
	m.mu.Lock()
	for !m.done {
		o, _, err := m.next()
		if errors.Is(err, io.EOF) {
			m.done = true
			break
		}
		if err != nil {
			m.mu.Unlock()
			return err
		}
		if o < m.pos {
			m.mu.Unlock()
			return disk.Errorf(m.format, disk.ErrCorrupt, "%s: data at byte %d after byte %d", m.name, o, m.pos)
		}
	}
	sum, _, err := m.sum()
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if d.Digest.Algorithm != "" && subtle.ConstantTimeCompare([]byte(sum), []byte(d.Digest.Sum)) != 1 {
		return disk.Errorf("ova", disk.ErrCorrupt, "member %q: %s checksum mismatch: the bytes hash to %s, the .mf says %s", d.File, d.Digest.Algorithm, sum, d.Digest.Sum)
	}
	return nil
}
