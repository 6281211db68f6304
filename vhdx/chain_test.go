package vhdx

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
)

// bitsOf returns an LSB-first bitmap of n sectors with set(i) marking
// sector i present.
func bitsOf(n int, set func(i int) bool) []byte {
	b := make([]byte, (n+7)/8)
	for i := range n {
		if set(i) {
			b[i/8] |= 1 << (i % 8)
		}
	}
	return b
}

// expectDiff computes the bytes of the differencing disk sp over parent
// (read as zeros past its end).
func expectDiff(sp spec, parent []byte) []byte {
	sp.defaults()
	bs, ss := int(sp.blockSize), int(sp.sectorSize)
	out := make([]byte, sp.size)
	copy(out, parent)
	for i, b := range sp.blocks {
		start := i * bs
		if start >= len(out) {
			continue
		}
		blk := out[start:min(start+bs, len(out))]
		data := append(append([]byte{}, b.data...), make([]byte, bs)...)
		switch b.state {
		case stateFullyPresent:
			copy(blk, data)
		case stateZero, stateUnmapped, stateUndefined:
			clear(blk)
		case statePartiallyPresent:
			for s := 0; s*ss < len(blk); s++ {
				if b.bits[s/8]>>(s%8)&1 != 0 {
					copy(blk[s*ss:min((s+1)*ss, len(blk))], data[s*ss:])
				}
			}
		}
	}
	return out
}

var parentGUID = GUID{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18, 0x29, 0x3a, 0x4b, 0x5c, 0x6d, 0x7e, 0x8f, 0x90}

// chainSpecs returns a dynamic parent and a differencing child over it,
// the child larger than the parent, with every payload state.
func chainSpecs(sectorSize uint32) (parent, child spec) {
	const bs = 1 << 20
	ss := int(bs / sectorSize)
	parent = spec{size: 5 * bs, sectorSize: sectorSize, dataWrite: parentGUID, blocks: map[int]specBlock{
		0: {state: stateFullyPresent, data: pattern(1, bs)},
		1: {state: stateFullyPresent, data: pattern(2, bs)},
		2: {state: stateFullyPresent, data: pattern(3, bs)},
		3: {state: stateFullyPresent, data: pattern(4, bs)},
		4: {state: stateFullyPresent, data: pattern(5, bs)},
	}}
	child = spec{size: 8 * bs, sectorSize: sectorSize, diff: true, dataWrite: GUID{9},
		locator: map[string]string{"parent_linkage": "{" + parentGUID.String() + "}", "relative_path": `..\base\parent.vhdx`, "absolute_win32_path": `\\?\C:\vms\parent.vhdx`},
		blocks: map[int]specBlock{
			0: {state: statePartiallyPresent, data: pattern(10, bs), bits: bitsOf(ss, func(i int) bool { return i%3 == 0 || i > ss-5 })},
			1: {state: stateNotPresent},
			2: {state: stateFullyPresent, data: pattern(12, bs)},
			3: {state: stateZero},
			4: {state: stateUnmapped},
			5: {state: statePartiallyPresent, data: pattern(15, bs), bits: bitsOf(ss, func(i int) bool { return i >= ss/2 })},
			6: {state: stateUndefined},
			7: {state: statePartiallyPresent, data: pattern(17, bs), bits: bitsOf(ss, func(i int) bool { return true })},
		}}
	return parent, child
}

// TestDifferencing reads a differencing disk over a VHDX parent, with
// 512- and 4096-byte sectors, and checks every payload state.
func TestDifferencing(t *testing.T) {
	for _, ss := range []uint32{512, 4096} {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			psp, csp := chainSpecs(ss)
			pb := buildVHDX(psp)
			parent := mustOpen(t, "parent.vhdx", pb, Options{})
			pbytes := make([]byte, parent.Size())
			if _, err := parent.ReadAt(pbytes, 0); err != nil {
				t.Fatal(err)
			}
			child := mustOpen(t, "child.vhdx", buildVHDX(csp), Options{Parent: parent})
			want := expectDiff(csp, pbytes)
			got := make([]byte, child.Size())
			if _, err := child.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("byte %d differs (block %d)", i, i>>20)
			}
			disktest.Check(t, child, bytes.NewReader(want))
			if child.Subformat() != "differencing" || child.Info().Subformat != "differencing" {
				t.Errorf("subformat %s", child.Subformat())
			}
			loc := child.Info().Specific["parent_locator"].(map[string]string)
			if loc["relative_path"] != `..\base\parent.vhdx` || child.Info().Specific["parent_locator_type"] != LocatorTypeVHDX.String() {
				t.Errorf("locator %v", child.Info().Specific)
			}
			// A parent that is not a VHDX is taken on the caller's word.
			mem := mustOpen(t, "child.vhdx", buildVHDX(csp), Options{Parent: &memImage{pbytes}})
			disktest.Check(t, mem, bytes.NewReader(want))
		})
	}
}

// TestDifferencingRefused: without a parent, with the wrong one, and a
// parent for a disk that has none — all disk.ErrUnsafe.
func TestDifferencingRefused(t *testing.T) {
	psp, csp := chainSpecs(512)
	parent := mustOpen(t, "parent.vhdx", buildVHDX(psp), Options{})
	other := psp
	other.dataWrite = GUID{7}
	wrong := mustOpen(t, "other.vhdx", buildVHDX(other), Options{})
	p4k, _ := chainSpecs(4096)
	p4k.dataWrite = parentGUID
	parent4k := mustOpen(t, "parent4k.vhdx", buildVHDX(p4k), Options{})
	child := buildVHDX(csp)
	for _, c := range []struct {
		name string
		b    []byte
		opts Options
		msg  string
	}{
		{"no parent", child, Options{}, `relative_path "..\\base\\parent.vhdx"`},
		{"wrong parent", child, Options{Parent: wrong}, "data write GUID 00000007"},
		{"sector size", child, Options{Parent: parent4k}, "4096-byte logical sectors"},
		{"parent of a dynamic disk", buildVHDX(psp), Options{Parent: parent}, "dynamic disk, which has none"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Open(disk.NewMemStorage("x.vhdx", c.b), c.opts)
			if !errors.Is(err, disk.ErrUnsafe) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v, want ErrUnsafe mentioning %q", err, c.msg)
			}
		})
	}
}

// A memImage is a disk.Image over bytes: a parent that is not a VHDX.
type memImage struct{ b []byte }

func (m *memImage) ReadAt(p []byte, off int64) (int, error) {
	return disk.NewMemStorage("mem", m.b).ReadAt(p, off)
}
func (m *memImage) Size() int64 { return int64(len(m.b)) }
func (m *memImage) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	start, end := disk.ClipRange(off, n, m.Size())
	return func(yield func(disk.Extent, error) bool) {
		if start < end {
			yield(disk.Extent{Offset: start, Length: end - start, Kind: disk.Data}, nil)
		}
	}
}
func (m *memImage) Info() disk.Info { return disk.Info{Format: "mem", VirtualSize: int64(len(m.b))} }
func (m *memImage) Close() error    { return nil }
