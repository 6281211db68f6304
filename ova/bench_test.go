package ova_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/ova"
)

// BenchmarkConvertOVA converts a streamOptimized VMDK bare and inside an
// OVA (with its SHA-256 .mf checked as it converts), to show what reading
// through the OVA costs over the bare file (the target is in
// bench/BOUNDS.md). The lead runs it, alternately.
func BenchmarkConvertOVA(b *testing.B) {
	g := testimg.Golden(b, testimg.Spec{Size: 256 << 20, Seed: 1616})
	v := testimg.Make(b, g, "vmdk", "subformat=streamOptimized")
	img, err := diskport.Open(v, diskport.Options{})
	if err != nil {
		b.Fatal(err)
	}
	size := img.Size()
	img.Close()
	o := testimg.OVA(b, testimg.OVASpec{Version: 1, Alg: "SHA256", Files: map[string]string{"disk1.vmdk": v},
		Disks: []testimg.OVADisk{{ID: "d", File: "disk1.vmdk", Format: testimg.URIStreamOptimized, Capacity: fmt.Sprint(size)}}})
	dst := filepath.Join(b.TempDir(), "out.raw")
	opts := convert.Options{NoSync: true, Force: true}
	b.Run("bare", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			img, err := diskport.Open(v, diskport.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := convert.Convert(context.Background(), img, dst, opts); err != nil {
				b.Fatal(err)
			}
			img.Close()
		}
	})
	b.Run("ova", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			h, err := disk.OpenHostFile(o)
			if err != nil {
				b.Fatal(err)
			}
			a, err := ova.Open(h, ova.Options{})
			if err != nil {
				b.Fatal(err)
			}
			img, err := a.OpenDisk(0)
			if err != nil {
				b.Fatal(err)
			}
			o := opts
			o.Verify = img.Verify
			if _, err := convert.Convert(context.Background(), img, dst, o); err != nil {
				b.Fatal(err)
			}
			img.Close()
			h.Close()
		}
	})
}
