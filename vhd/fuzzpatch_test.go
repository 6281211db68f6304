package vhd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/diskport/diskport/disk"
)

// A patchBase is a valid VHD FuzzPatch damages and the offsets its
// structures start at.
type patchBase struct {
	b       []byte
	targets []int64
}

// patchBases are builtVHDs with their structures' offsets: the footer
// copy, dynamic header, its parent locator table, the BAT, the locators'
// data and the first block's bitmap (buildVHD's layout), and the footer.
var patchBases = sync.OnceValue(func() []patchBase {
	var out []patchBase
	for _, b := range builtVHDs() {
		n := int64(len(b))
		t := []int64{n - footerSize}
		if binary.BigEndian.Uint64(b[n-footerSize+16:]) == 512 { // dynamic or differencing
			batLen := (4*int64(binary.BigEndian.Uint32(b[512+28:])) + 511) / 512 * 512
			t = append(t, 0, 512, 512+576, 1536, 1536+batLen)
			if first := int64(binary.BigEndian.Uint32(b[1536:])); first != int64(unallocated) {
				t = append(t, first*512)
			}
		}
		out = append(out, patchBase{b, t})
	}
	return out
})

// FuzzPatch damages valid dynamic, differencing and fixed VHDs with small
// patches at their structures and recomputes the footers' and header's
// checksums the patches broke (unless the flags byte's top bit says not
// to), so the fuzzer reaches past the checksums into the header, BAT,
// locator and bitmap checks. Input: a base selector and flags byte, then
// patches of [target, offset (2 bytes, big endian), length, bytes].
func FuzzPatch(f *testing.F) {
	for i := range patchBases() {
		f.Add([]byte{byte(i)})
	}
	f.Add([]byte{0, 3, 0, 28, 4, 0, 0x10, 0, 0})                  // max table entries 1 Mi
	f.Add([]byte{0, 3, 0, 32, 4, 0, 0, 2, 0})                     // block size 512
	f.Add([]byte{0, 3, 0, 16, 8, 0, 0, 0, 0, 0, 0, 0, 0})         // BAT at 0
	f.Add([]byte{0, 5, 0, 4, 4, 0, 0, 0, 3})                      // block 1 at sector 3
	f.Add([]byte{0, 5, 0, 0, 8, 0, 0, 0, 10, 0, 0, 0, 10})        // blocks 0 and 1 share a sector
	f.Add([]byte{0, 1, 0, 48, 8, 0, 0, 0, 0x10, 0, 0, 0, 0})      // current size 64 GiB
	f.Add([]byte{1, 4, 0, 4, 8, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0}) // locator length
	f.Add([]byte{1, 4, 0, 16, 8, 0xff, 0, 0, 0, 0, 0, 0, 0})      // locator offset
	f.Add([]byte{2, 0, 0, 60, 4, 0, 0, 0, 3})                     // fixed → dynamic, no header
	f.Add([]byte{0x80, 0, 0, 0, 1, 'x'})                          // footer cookie, checksum kept
	parent := &memImage{pattern(7, 20000)}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || len(in) > 512 {
			return
		}
		bases := patchBases()
		base := bases[int(in[0]&0x7f)%len(bases)]
		b := bytes.Clone(base.b)
		for p := in[1:]; len(p) >= 4; {
			tgt, off, n := base.targets[int(p[0])%len(base.targets)], int64(binary.BigEndian.Uint16(p[1:])), int(p[3])
			p = p[4:]
			n = min(n, len(p))
			if at := tgt + off; at < int64(len(b)) {
				copy(b[at:], p[:n])
			}
			p = p[n:]
		}
		if in[0]&0x80 == 0 {
			fixChecksum(b[len(b)-footerSize:], 64)
			if len(b) >= 512+headerSize && string(b[:8]) == footerCookie {
				fixChecksum(b[:footerSize], 64)
				fixChecksum(b[512:512+headerSize], 36)
			}
		}
		s := disk.NewMemStorage("fuzz.vhd", b)
		for _, opts := range []Options{{}, {Parent: parent}} {
			m, err := Open(s, opts)
			if err != nil {
				var de *disk.Error
				if !errors.As(err, &de) {
					t.Fatalf("untyped error %T: %v", err, err)
				}
				continue
			}
			exerciseImage(t, m)
		}
	})
}

// TestPatchBases checks FuzzPatch starts from VHDs that open.
func TestPatchBases(t *testing.T) {
	parent := &memImage{pattern(7, 20000)}
	for i, base := range patchBases() {
		opts := Options{}
		if i == 1 {
			opts.Parent = parent
		}
		m, err := Open(disk.NewMemStorage("base.vhd", base.b), opts)
		if err != nil {
			t.Fatalf("base %d: %v", i, err)
		}
		m.Close()
		for _, at := range base.targets {
			if at < 0 || at >= int64(len(base.b)) {
				t.Fatalf("base %d: target %d outside its %d bytes", i, at, len(base.b))
			}
		}
	}
}
