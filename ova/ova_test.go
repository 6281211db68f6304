package ova_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/ova"
)

// countingStorage counts the bytes read from a file, and how many of them
// were read before.
type countingStorage struct {
	disk.Storage
	mu          sync.Mutex
	seen        []bool
	total, dups int64
}

func newCounting(s disk.Storage) *countingStorage {
	return &countingStorage{Storage: s, seen: make([]bool, s.Size())}
}

func (c *countingStorage) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.Storage.ReadAt(p, off)
	c.mu.Lock()
	c.total += int64(n)
	for i := off; i < off+int64(n); i++ {
		if c.seen[i] {
			c.dups++
		}
		c.seen[i] = true
	}
	c.mu.Unlock()
	return n, err
}

// distinct is how many bytes were read at least once.
func (c *countingStorage) distinct() int64 { return c.total - c.dups }

// bareDups converts the bare disk file and returns how many bytes its
// reader reads more than once: what the reader itself costs, against
// which the OVA's second reads are measured.
func bareDups(t *testing.T, path string) int64 {
	t.Helper()
	h, err := disk.OpenHostFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	cs := newCounting(h)
	img, err := diskport.OpenStorage(cs, diskport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if _, err := convert.Convert(context.Background(), img, filepath.Join(t.TempDir(), "bare.raw"), convert.Options{ExactSize: true, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	return cs.dups
}

// fixtures makes the disk images of the test appliances with qemu-img:
// a streamOptimized VMDK (ovftool's and VirtualBox's export format), a
// second one, a dynamic VHD and a RAW disk.
func fixtures(t *testing.T) map[string]string {
	t.Helper()
	g1 := testimg.Golden(t, testimg.Spec{Size: 24 << 20, Seed: 161})
	g2 := testimg.Golden(t, testimg.Spec{Size: 6<<20 + 512, Seed: 162})
	g3 := testimg.Golden(t, testimg.Spec{Size: 5 << 20, Seed: 163})
	return map[string]string{
		"disk1.vmdk": testimg.Make(t, g1, "vmdk", "subformat=streamOptimized"),
		"disk2.vmdk": testimg.Make(t, g2, "vmdk", "subformat=streamOptimized"),
		"disk3.vhd":  testimg.Make(t, g3, "vpc", ""),
		"disk4.img":  g2,
	}
}

// virtualSize is the disk's virtual size as diskport reads the bare file.
func virtualSize(t *testing.T, path string) int64 {
	t.Helper()
	img, err := diskport.Open(path, diskport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	return img.Size()
}

// convertDisk converts disk i of a with the .mf check as the conversion's
// Verify, and returns the volume's path.
func convertDisk(t *testing.T, a *ova.Appliance, i int) (string, *ova.Image, error) {
	t.Helper()
	img, err := a.OpenDisk(i)
	if err != nil {
		return "", nil, err
	}
	dst := filepath.Join(t.TempDir(), fmt.Sprintf("disk%d.raw", i))
	workers := 0
	if img.Sequential() {
		workers = 1
	}
	_, err = convert.Convert(context.Background(), img, dst, convert.Options{ExactSize: true, NoSync: true, Verify: img.Verify, Workers: workers})
	img.Close()
	return dst, img, err
}

// The appliances of the issue, laid out as ovftool (OVF 1.0, the .mf
// second with SHA-256, a SCSI controller) and VirtualBox (OVF 2.0, the
// .mf last with SHA-1, IDE and SATA controllers) write them, with two
// disks, a VHD and a RAW disk, and members in any order (pax and GNU
// headers): every disk converts bit-identically to qemu-img's conversion
// of the disk file alone, in boot order, and the conversion reads the OVA
// about once.
func TestAppliancesMatchQemu(t *testing.T) {
	f := fixtures(t)
	cap1, cap2, cap3 := virtualSize(t, f["disk1.vmdk"]), virtualSize(t, f["disk2.vmdk"]), virtualSize(t, f["disk3.vhd"])
	specs := map[string]testimg.OVASpec{
		"ovftool": {Version: 1, Alg: "SHA256", Disks: []testimg.OVADisk{
			{ID: "vmdisk2", File: "disk2.vmdk", Format: testimg.URIStreamOptimized, Capacity: fmt.Sprint(cap2), Units: "byte", Ctl: 1, Addr: 0},
			{ID: "vmdisk1", File: "disk1.vmdk", Format: testimg.URIStreamOptimized, Capacity: fmt.Sprint(cap1 >> 20), Units: "byte * 2^20", Ctl: 0, Addr: 0},
		}},
		"virtualbox": {Version: 2, Alg: "SHA1", MFLast: true, Disks: []testimg.OVADisk{
			{ID: "vmdisk1", File: "disk1.vmdk", Format: testimg.URIStreamOptimized, Capacity: fmt.Sprint(cap1), Ctl: 1, Addr: 0},
			{ID: "vmdisk2", File: "disk3.vhd", Format: testimg.URIVHD, Capacity: fmt.Sprint(cap3), Ctl: 1, Addr: 1},
			{ID: "vmdisk3", File: "disk4.img", Format: testimg.URIRaw, Capacity: fmt.Sprint(6<<20 + 512), Ctl: 0, Addr: 1},
		}},
		"pax-any-order": {Version: 1, Alg: "SHA256", OVFLast: true, Format: tar.FormatPAX, Disks: []testimg.OVADisk{
			{ID: "d1", File: "disk1.vmdk", Format: testimg.URIStreamOptimized, Capacity: fmt.Sprint(cap1 >> 10), Units: "byte*2^10"},
		}},
		"gnu": {Version: 2, Alg: "SHA256", Format: tar.FormatGNU, Disks: []testimg.OVADisk{
			{ID: "d1", File: "disk3.vhd", Format: testimg.URIVHD, Capacity: fmt.Sprint(cap3)},
		}},
	}
	wantOrder := map[string][]string{
		"ovftool":       {"disk1.vmdk", "disk2.vmdk"},
		"virtualbox":    {"disk4.img", "disk1.vmdk", "disk3.vhd"}, // IDE first, then SATA by port
		"pax-any-order": {"disk1.vmdk"},
		"gnu":           {"disk3.vhd"},
	}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			spec.Files = f
			path := testimg.OVA(t, spec)
			h, err := disk.OpenHostFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			cs := newCounting(h)
			a, err := ova.Open(cs, ova.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var order []string
			for _, d := range a.Disks {
				order = append(order, d.File)
			}
			if fmt.Sprint(order) != fmt.Sprint(wantOrder[name]) {
				t.Fatalf("boot order %v, want %v", order, wantOrder[name])
			}
			if a.System != "appliance-vm" {
				t.Errorf("system %q", a.System)
			}
			var members, readerDups int64
			for i, d := range a.Disks {
				vol, _, err := convertDisk(t, a, i)
				if err != nil {
					t.Fatalf("disk %d (%s): %v", i, d.File, err)
				}
				testimg.SameAsQemu(t, vol, f[d.File])
				for _, m := range a.Members {
					if m.Name == d.File {
						members += m.Size
					}
				}
				readerDups += bareDups(t, f[d.File])
			}
			// Each byte of the OVA read once: every byte of every disk
			// member (the .mf check needs them all), and nothing read
			// twice but what the disk's reader reads twice in the bare
			// file too (plus the probes' few KiB).
			st, _ := os.Stat(path)
			t.Logf("OVA %d bytes: read %d, %d distinct, %d twice (the bare files' readers: %d twice)", st.Size(), cs.total, cs.distinct(), cs.dups, readerDups)
			if cs.distinct() < members {
				t.Errorf("read %d distinct bytes, less than the disk members' %d: the .mf check missed some", cs.distinct(), members)
			}
			if cs.dups > readerDups+int64(len(a.Disks))*(64<<10) {
				t.Errorf("read %d bytes twice; the bare files' readers read %d twice", cs.dups, readerDups)
			}
		})
	}
}

// flip returns a copy of the OVA at path with byte at changed.
func flip(t *testing.T, path string, at int64) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x40
	p := filepath.Join(t.TempDir(), "flipped.ova")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A flipped byte in a disk member fails the conversion, naming the
// member; the volume is not left behind.
func TestFlippedByteNamesMember(t *testing.T) {
	f := fixtures(t)
	cap1, cap3 := virtualSize(t, f["disk1.vmdk"]), virtualSize(t, f["disk3.vhd"])
	path := testimg.OVA(t, testimg.OVASpec{Version: 1, Alg: "SHA256", Files: f, Disks: []testimg.OVADisk{
		{ID: "a", File: "disk4.img", Format: testimg.URIRaw, Capacity: fmt.Sprint(6<<20 + 512)},
		{ID: "b", File: "disk3.vhd", Format: testimg.URIVHD, Capacity: fmt.Sprint(cap3)},
		{ID: "c", File: "disk1.vmdk", Format: testimg.URIStreamOptimized, Capacity: fmt.Sprint(cap1)},
	}})
	a, err := ova.OpenFile(path, ova.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms := map[string]ova.Member{}
	for _, m := range a.Members {
		ms[m.Name] = m
	}
	a.Close()
	for _, c := range []struct {
		member string
		at     int64 // offset in the member
	}{{"disk4.img", 3 << 20}, {"disk3.vhd", 2<<20 + 7}, {"disk1.vmdk", ms["disk1.vmdk"].Size / 2}, {"disk1.vmdk", ms["disk1.vmdk"].Size - 1}} {
		t.Run(fmt.Sprintf("%s@%d", c.member, c.at), func(t *testing.T) {
			p := flip(t, path, ms[c.member].Offset+c.at)
			a, err := ova.OpenFile(p, ova.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			var idx = -1
			for i, d := range a.Disks {
				if d.File == c.member {
					idx = i
				}
			}
			vol, _, err := convertDisk(t, a, idx)
			if err == nil || !strings.Contains(err.Error(), c.member) {
				t.Fatalf("converting a flipped %s: %v; want an error naming it", c.member, err)
			}
			t.Log(err)
			if _, serr := os.Stat(vol); serr == nil {
				t.Errorf("%s left behind", vol)
			}
		})
	}
}

// The .mf rules: a disk the .mf does not list, a file it lists that the
// archive lacks, no .mf at all are errors unless NoVerifyManifest; the
// descriptor's own checksum is checked on open.
func TestManifestRules(t *testing.T) {
	f := fixtures(t)
	cap3 := virtualSize(t, f["disk3.vhd"])
	disks := []testimg.OVADisk{{ID: "b", File: "disk3.vhd", Format: testimg.URIVHD, Capacity: fmt.Sprint(cap3)}}
	cases := []struct {
		name string
		spec testimg.OVASpec
		want string
	}{
		{"unlisted disk", testimg.OVASpec{Alg: "SHA256", NoListed: "disk3.vhd"}, `does not list disk file "disk3.vhd"`},
		{"missing member", testimg.OVASpec{Alg: "SHA1", EditMF: func(b []byte) []byte {
			return append(b, "SHA1(disk9.vmdk)= 0123456789012345678901234567890123456789\n"...)
		}}, `lists "disk9.vmdk", which the archive lacks`},
		{"no mf", testimg.OVASpec{}, "no .mf manifest"},
		{"descriptor edited", testimg.OVASpec{Alg: "SHA256", EditMF: func(b []byte) []byte {
			return bytes.Replace(b, []byte("= "), []byte("= 00"), 1)[:len(b)]
		}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Version, c.spec.Files, c.spec.Disks = 1, f, disks
			path := testimg.OVA(t, c.spec)
			_, err := ova.OpenFile(path, ova.Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open: %v, want an error saying %q", err, c.want)
			}
			if c.name == "descriptor edited" {
				if !errors.Is(err, disk.ErrCorrupt) || !strings.Contains(err.Error(), "appliance.ovf") {
					t.Fatalf("Open: %v", err)
				}
				return
			}
			a, err := ova.OpenFile(path, ova.Options{NoVerifyManifest: true})
			if err != nil {
				t.Fatalf("with NoVerifyManifest: %v", err)
			}
			defer a.Close()
			vol, _, err := convertDisk(t, a, 0)
			if err != nil {
				t.Fatal(err)
			}
			testimg.SameAsQemu(t, vol, f["disk3.vhd"])
		})
	}
}

// gzip-compressed disk members (ovf:compression="gzip", as ovftool
// --compress writes them) are read as a stream in one pass: a
// streamOptimized VMDK and a RAW disk convert bit-identically to
// qemu-img's conversion of the bare files with one worker, every byte of
// each member read once; a flipped byte fails naming the member; a RAW
// shorter or longer than its capacity fails; a VHD cannot be streamed.
func TestGzipMembers(t *testing.T) {
	f := fixtures(t)
	cap1 := virtualSize(t, f["disk1.vmdk"])
	spec := testimg.OVASpec{Version: 1, Alg: "SHA256", Files: f, Disks: []testimg.OVADisk{
		{ID: "a", File: "disk1.vmdk", Format: testimg.URIStreamOptimized, Capacity: fmt.Sprint(cap1), Gzip: true},
		{ID: "b", File: "disk4.img", Format: testimg.URIRaw, Capacity: fmt.Sprint(6<<20 + 512), Gzip: true, Ctl: 1},
	}}
	path := testimg.OVA(t, spec)
	a, err := ova.OpenFile(path, ova.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i, d := range a.Disks {
		img, err := a.OpenDisk(i)
		if err != nil {
			t.Fatal(err)
		}
		if !img.Sequential() {
			t.Fatalf("%s: not sequential", d.File)
		}
		dst := filepath.Join(t.TempDir(), "vol.raw")
		if _, err := convert.Convert(context.Background(), img, dst, convert.Options{ExactSize: true, NoSync: true, Workers: 1, Verify: img.Verify}); err != nil {
			t.Fatalf("%s: %v", d.File, err)
		}
		testimg.SameAsQemu(t, dst, f[d.File])
		var size int64
		for _, m := range a.Members {
			if m.Name == d.File {
				size = m.Size
			}
		}
		if img.BytesRead() != size {
			t.Errorf("%s: read %d bytes of a %d-byte member", d.File, img.BytesRead(), size)
		}
		// Out of order is refused, not served wrong.
		if _, err := img.ReadAt(make([]byte, 512), 0); !errors.Is(err, disk.ErrUnsupported) || !strings.Contains(err.Error(), "one worker") {
			t.Errorf("%s: reading back: %v", d.File, err)
		}
	}
	ms := map[string]ova.Member{}
	for _, m := range a.Members {
		ms[m.Name] = m
	}
	for _, c := range []struct {
		member string
		at     int64
	}{{"disk1.vmdk", ms["disk1.vmdk"].Size / 3}, {"disk4.img", ms["disk4.img"].Size / 2}, {"disk4.img", ms["disk4.img"].Size - 3}} {
		p := flip(t, path, ms[c.member].Offset+c.at)
		b, err := ova.OpenFile(p, ova.Options{})
		if err != nil {
			t.Fatal(err)
		}
		idx := 0
		if c.member == "disk4.img" {
			idx = 1
		}
		_, _, err = convertDisk(t, b, idx)
		b.Close()
		if err == nil || !strings.Contains(err.Error(), c.member) {
			t.Errorf("flipped %s@%d: %v; want an error naming the member", c.member, c.at, err)
		}
	}
	// A VHD cannot be read from a stream.
	cap3 := virtualSize(t, f["disk3.vhd"])
	v, err := ova.OpenFile(testimg.OVA(t, testimg.OVASpec{Version: 1, Alg: "SHA256", Files: f, Disks: []testimg.OVADisk{
		{ID: "v", File: "disk3.vhd", Format: testimg.URIVHD, Capacity: fmt.Sprint(cap3), Gzip: true}}}), ova.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.OpenDisk(0); !errors.Is(err, disk.ErrUnsupported) || !strings.Contains(err.Error(), "gunzip") {
		t.Errorf("gzip VHD: %v", err)
	}
	v.Close()
	// A RAW whose capacity disagrees with the inflated bytes.
	for _, capacity := range []int64{6<<20 + 1024, 6 << 20} {
		s := testimg.OVASpec{Version: 1, Alg: "SHA256", Files: f, Disks: []testimg.OVADisk{
			{ID: "b", File: "disk4.img", Format: testimg.URIRaw, Capacity: fmt.Sprint(capacity), Gzip: true}}}
		b, err := ova.OpenFile(testimg.OVA(t, s), ova.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = convertDisk(t, b, 0)
		b.Close()
		if !errors.Is(err, disk.ErrCorrupt) || !strings.Contains(err.Error(), "capacity") {
			t.Errorf("capacity %d: %v", capacity, err)
		}
	}
}
