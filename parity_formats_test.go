package diskport_test

import (
	"testing"

	"github.com/diskport/diskport"
)

// TestParityConvertVMDK converts every VMDK subformat qemu-img writes and
// compares the volume with qemu-img's raw output.
func TestParityConvertVMDK(t *testing.T) {
	vmdk := func(name string, size int64, seed uint64, opts string) parityRow {
		return parityRow{name: name, image: golden(size, seed, "vmdk", opts), opts: diskport.Options{Format: "VMDK"}, qemuArgs: []string{"-f", "vmdk"}}
	}
	runParity(t, []parityRow{
		vmdk("monolithicSparse", 9<<20+512, 11, ""),
		vmdk("monolithicSparse-odd", 5<<20+517, 12, "subformat=monolithicSparse"),
		vmdk("zeroed-grain", 6<<20, 13, "zeroed_grain=on"),
		vmdk("compat6", 4<<20+4096, 14, "compat6=on"),
		vmdk("monolithicFlat", 7<<20+1000, 15, "subformat=monolithicFlat"),
		vmdk("streamOptimized", 12<<20+512, 16, "subformat=streamOptimized"),
		vmdk("streamOptimized-odd", 3<<20+70000, 17, "subformat=streamOptimized"),
		vmdk("twoGbMaxExtentSparse", 8<<20, 18, "subformat=twoGbMaxExtentSparse"),
		vmdk("twoGbMaxExtentFlat", 8<<20+512, 19, "subformat=twoGbMaxExtentFlat"),
	})
}

// TestParityConvertVHD converts the VHDs qemu-img writes. Without
// force_size qemu rounds the size up to a CHS geometry and reads it back as
// the CHS size, which is then the footer's current size too.
func TestParityConvertVHD(t *testing.T) {
	vhd := func(name string, size int64, seed uint64, opts string) parityRow {
		return parityRow{name: name, image: golden(size, seed, "vpc", opts), opts: diskport.Options{Format: "VHD"}, qemuArgs: []string{"-f", "vpc"}}
	}
	runParity(t, []parityRow{
		vhd("dynamic", 9<<20, 21, ""),
		vhd("dynamic-odd", 5<<20+517, 22, "subformat=dynamic"),
		vhd("dynamic-force-size", 7<<20+3*512, 23, "force_size=on"),
		vhd("fixed", 6<<20, 24, "subformat=fixed"),
		vhd("fixed-odd", 3<<20+1000, 25, "subformat=fixed"),
		vhd("fixed-force-size", 4<<20+512, 26, "subformat=fixed,force_size=on"),
	})
}
