package vhd

import (
	"errors"
	"testing"

	"github.com/diskport/diskport/disk"
)

// A file with a VHD footer's cookie at its end that fails the footer's
// checks is a damaged VHD: Probe says so with an error instead of "not a
// VHD", which made such a fixed disk convert as RAW, footer included.
func TestProbeTriState(t *testing.T) {
	fixed := func(edit func(f []byte)) []byte {
		b := buildVHD(spec{diskType: TypeFixed, size: 4096})
		edit(b[len(b)-footerSize:])
		return b
	}
	for _, c := range []struct {
		name  string
		b     []byte
		want  bool
		class error
	}{
		{"fixed", fixed(func([]byte) {}), true, nil},
		{"dynamic", hostileBase(), true, nil},
		{"dynamic, trailing footer damaged", func() []byte {
			b := hostileBase()
			b[len(b)-1] ^= 0xff
			return b
		}(), true, nil},
		{"fixed, bad checksum", fixed(func(f []byte) { f[64] ^= 1 }), false, disk.ErrCorrupt},
		{"fixed, version 2", fixed(func(f []byte) { be.PutUint32(f[12:], 0x00020000); fixChecksum(f, 64) }), false, disk.ErrCorrupt},
		{"fixed, disk type 5", fixed(func(f []byte) { be.PutUint32(f[60:], 5); fixChecksum(f, 64) }), false, disk.ErrCorrupt},
		{"511-byte footer", func() []byte {
			b := buildVHD(spec{diskType: TypeFixed, size: 4096})
			return append(b[:4096], b[4096:4096+511]...)
		}(), false, disk.ErrUnsupported},
		{"raw", pattern(9, 8192), false, nil},
		{"tiny", []byte("hello"), false, nil},
		{"empty", nil, false, nil},
	} {
		got, err := Probe(disk.NewMemStorage("p.vhd", c.b))
		if got != c.want || (c.class == nil) != (err == nil) || (c.class != nil && !errors.Is(err, c.class)) {
			t.Errorf("%s: Probe = %v, %v; want %v, %v", c.name, got, err, c.want, c.class)
		}
	}
}
