package vmdk

import (
	"errors"
	"testing"

	"github.com/diskport/diskport/disk"
)

// A head marked as a text descriptor that fails qemu's version rule is a
// damaged descriptor: Probe says so with ErrCorrupt instead of "not a
// VMDK", which made it a 512-byte RAW volume.
func TestProbeDamagedDescriptor(t *testing.T) {
	for _, c := range []struct {
		b     string
		want  bool
		class error
	}{
		{"# Disk DescriptorFile\nversion=1\n", true, nil},
		{"# Disk DescriptorFile\nversoin=1\nCID=12345678\ncreateType=\"monolithicFlat\"\nRW 2048 FLAT \"f.vmdk\" 0\n", false, disk.ErrCorrupt},
		{"# Disk DescriptorFile\nversion=4\n", false, disk.ErrCorrupt},
		{"# Disk DescriptorFile", false, disk.ErrCorrupt},
		{"#x\nCID=1\ncreateType=\"monolithicFlat\"\n", false, disk.ErrCorrupt},
		{"\x00\x01createType=\"x\"\n", false, nil},
		{"hello\nversion=1\n", false, nil},
		{"", false, nil},
	} {
		got, err := Probe(disk.NewMemStorage("p.vmdk", []byte(c.b)))
		if got != c.want || (c.class == nil) != (err == nil) || (c.class != nil && !errors.Is(err, c.class)) {
			t.Errorf("Probe(%q) = %v, %v; want %v, %v", c.b, got, err, c.want, c.class)
		}
	}
}
