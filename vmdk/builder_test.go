package vmdk

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
)

// A sparseSpec describes a hosted sparse extent for buildSparse. The
// layout is qemu's: header, descriptor at sector 1 (20 sectors), grain
// directory at sector 21, grain tables after it, grains from overHead
// (rounded up to 128 sectors), in grain order.
type sparseSpec struct {
	capacity   uint64 // sectors
	grain      uint64 // sectors per grain (default 128)
	gtes       uint32 // entries per grain table (default 512)
	version    uint32 // default 1 (3 when compressed)
	flags      uint32 // extra flags
	compressed bool
	desc       string           // embedded descriptor ("" for none)
	data       map[int64][]byte // grain index -> grain bytes
	zeroed     []int64          // grain indices with GTE 1
	align      uint64           // overHead alignment in sectors (default 128)
}

// A sparseLayout says where buildSparse put things (sectors).
type sparseLayout struct {
	gd       uint64
	gts      []uint64 // per GD entry, 0 when absent
	overHead uint64
	grains   map[int64]uint64 // grain index -> sector of data or marker
}

func (s *sparseSpec) defaults() {
	if s.grain == 0 {
		s.grain = 128
	}
	if s.gtes == 0 {
		s.gtes = 512
	}
	if s.align == 0 {
		s.align = 128
	}
	if s.version == 0 {
		s.version = 1
		if s.compressed {
			s.version = 3
		}
	}
}

// buildSparse returns the bytes of the extent s describes.
func buildSparse(s sparseSpec) ([]byte, sparseLayout) {
	s.defaults()
	le := binary.LittleEndian
	cover := uint64(s.gtes) * s.grain
	entries := (s.capacity + cover - 1) / cover
	gdSecs := (entries*4 + 511) / 512
	gtSecs := (uint64(s.gtes)*4 + 511) / 512
	var L sparseLayout
	L.gd = 21
	L.gts = make([]uint64, entries)
	used := map[uint64]bool{}
	for gi := range s.data {
		used[uint64(gi)/uint64(s.gtes)] = true
	}
	for _, gi := range s.zeroed {
		used[uint64(gi)/uint64(s.gtes)] = true
	}
	next := L.gd + gdSecs
	for i := range entries {
		if used[i] {
			L.gts[i] = next
			next += gtSecs
		}
	}
	L.overHead = (next + s.align - 1) / s.align * s.align
	buf := make([]byte, L.overHead*512)
	L.grains = map[int64]uint64{}
	gbytes := int(s.grain * 512)
	for gi := int64(0); gi < int64(s.capacity/s.grain+1); gi++ {
		d, ok := s.data[gi]
		if !ok {
			continue
		}
		sec := uint64(len(buf) / 512)
		L.grains[gi] = sec
		if s.compressed {
			var z bytes.Buffer
			w := zlib.NewWriter(&z)
			w.Write(d)
			w.Close()
			m := make([]byte, 12, 12+z.Len()+511)
			le.PutUint64(m, uint64(gi)*s.grain)
			le.PutUint32(m[8:], uint32(z.Len()))
			m = append(m, z.Bytes()...)
			m = append(m, make([]byte, (512-len(m)%512)%512)...)
			buf = append(buf, m...)
		} else {
			g := make([]byte, gbytes)
			copy(g, d)
			buf = append(buf, g...)
		}
	}
	for gi, sec := range L.grains {
		gt := L.gts[uint64(gi)/uint64(s.gtes)]
		le.PutUint32(buf[gt*512+4*(uint64(gi)%uint64(s.gtes)):], uint32(sec))
	}
	for _, gi := range s.zeroed {
		gt := L.gts[uint64(gi)/uint64(s.gtes)]
		le.PutUint32(buf[gt*512+4*(uint64(gi)%uint64(s.gtes)):], gteZeroed)
	}
	for i, gt := range L.gts {
		le.PutUint32(buf[L.gd*512+4*uint64(i):], uint32(gt))
	}
	h := buf[:512]
	copy(h, magicKDMV)
	flags := uint32(flagValidNewline) | s.flags
	if s.compressed {
		flags |= flagCompressed | flagEmbeddedLBA
		le.PutUint16(h[77:], compressDeflate)
	}
	le.PutUint32(h[4:], s.version)
	le.PutUint32(h[8:], flags)
	le.PutUint64(h[12:], s.capacity)
	le.PutUint64(h[20:], s.grain)
	if s.desc != "" {
		le.PutUint64(h[28:], 1)
		le.PutUint64(h[36:], 20)
		copy(buf[512:512+20*512], s.desc)
	}
	le.PutUint32(h[44:], s.gtes)
	le.PutUint64(h[56:], L.gd)
	le.PutUint64(h[64:], L.overHead)
	copy(h[73:], "\n \r\n")
	return buf, L
}

// embeddedDesc returns a minimal descriptor for an extent of capacity
// sectors.
func embeddedDesc(createType string, capacity uint64, cid, parentCID uint32, hint string) string {
	s := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=%08x\ncreateType=%q\n", cid, parentCID, createType)
	if hint != "" {
		s += fmt.Sprintf("parentFileNameHint=%q\n", hint)
	}
	return s + fmt.Sprintf("\n# Extent description\nRW %d SPARSE \"x.vmdk\"\n\n# The Disk Data Base\n#DDB\nddb.adapterType = \"ide\"\n", capacity)
}

// pattern returns n bytes of a deterministic pattern seeded with seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// toStreamAtEnd rewrites a compressed extent built by buildSparse into the
// VMware layout: header with GD_AT_END, then (after the grains) GT markers
// and tables, GD marker and GD, footer marker, footer, end-of-stream
// marker.
func toStreamAtEnd(b []byte, L sparseLayout, s sparseSpec) []byte {
	s.defaults()
	le := binary.LittleEndian
	out := bytes.Clone(b)
	cover := uint64(s.gtes) * s.grain
	entries := (s.capacity + cover - 1) / cover
	gdSecs := (entries*4 + 511) / 512
	gtSecs := (uint64(s.gtes)*4 + 511) / 512
	meta := func(n uint64, typ uint32) []byte {
		m := make([]byte, 512)
		le.PutUint64(m, n)
		le.PutUint32(m[12:], typ)
		return m
	}
	newGD := make([]byte, gdSecs*512)
	for i, gt := range L.gts {
		if gt == 0 {
			continue
		}
		out = append(out, meta(gtSecs, markerGT)...)
		le.PutUint32(newGD[4*i:], uint32(len(out)/512))
		out = append(out, b[gt*512:(gt+gtSecs)*512]...)
	}
	out = append(out, meta(gdSecs, markerGD)...)
	gdAt := uint64(len(out) / 512)
	out = append(out, newGD...)
	out = append(out, meta(1, markerFooter)...)
	footer := bytes.Clone(b[:512])
	le.PutUint64(footer[56:], gdAt)
	out = append(out, footer...)
	out = append(out, meta(0, markerEOS)...)
	le.PutUint64(out[56:], gdAtEnd)
	// The front GD and GTs are no longer used: clear them.
	clear(out[L.gd*512 : L.overHead*512])
	return out
}
