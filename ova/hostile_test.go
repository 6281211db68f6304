package ova_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/ova"
)

// setHeader rewrites field [off, off+n) of the tar header at hdr (an octal
// number) and fixes the header's checksum, as a hostile archive would.
func setHeader(b []byte, hdr int, off, n int, v int64) {
	f := fmt.Sprintf("%0*o", n-1, v)
	copy(b[hdr+off:], f+"\x00")
	for i := 148; i < 156; i++ {
		b[hdr+i] = ' '
	}
	sum := 0
	for _, c := range b[hdr : hdr+512] {
		sum += int(c)
	}
	copy(b[hdr+148:], fmt.Sprintf("%06o\x00 ", sum))
}

// headerOf returns the offset of the ustar header of member name.
func headerOf(t *testing.T, b []byte, name string) int {
	t.Helper()
	for off := 0; off+512 <= len(b); off += 512 {
		if string(b[off+257:off+262]) == "ustar" && strings.TrimRight(string(b[off:off+100]), "\x00") == name {
			return off
		}
	}
	t.Fatalf("no header for %s", name)
	return 0
}

// A hostile OVA is refused with the expected class and message, in
// bounded time and memory.
func TestHostileAppliances(t *testing.T) {
	raw := make([]byte, 64<<10)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	rawPath := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(rawPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"disk.img": rawPath}
	base := testimg.OVASpec{Version: 1, Alg: "SHA256", Files: files, Disks: []testimg.OVADisk{{ID: "d", File: "disk.img", Format: testimg.URIRaw, Capacity: "65536"}}}
	with := func(edit func(*testimg.OVASpec)) []byte {
		s := base
		edit(&s)
		b, err := os.ReadFile(testimg.OVA(t, s))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	plain := with(func(*testimg.OVASpec) {})
	cases := []struct {
		name  string
		ova   func() []byte
		class error
		msg   string
		open  bool // the error comes from OpenDisk, not Open
	}{
		{"size past the end", func() []byte {
			b := bytes.Clone(plain)
			setHeader(b, headerOf(t, b, "disk.img"), 124, 12, 1<<33)
			return b
		}, disk.ErrCorrupt, "past the end of the archive", false},
		{"size too small (members overlap)", func() []byte {
			b := bytes.Clone(plain)
			setHeader(b, headerOf(t, b, "disk.img"), 124, 12, 1000)
			return b
		}, disk.ErrCorrupt, "tar header", false},
		{"truncated", func() []byte { return plain[:len(plain)-2048-1000] }, disk.ErrCorrupt, "", false},
		{"doctype with entities", func() []byte {
			return with(func(s *testimg.OVASpec) {
				s.EditOVF = func(x string) string {
					return strings.Replace(x, "<Envelope", `<!DOCTYPE Envelope [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Envelope`, 1)
				}
			})
		}, disk.ErrUnsafe, "DOCTYPE", false},
		{"ten thousand disks", func() []byte {
			return with(func(s *testimg.OVASpec) {
				s.EditOVF = func(x string) string {
					var d strings.Builder
					for i := range 10000 {
						fmt.Fprintf(&d, `<Disk ovf:capacity="1" ovf:diskId="x%d" ovf:fileRef="file1" ovf:format="%s"/>`, i, testimg.URIRaw)
					}
					return strings.Replace(x, "</DiskSection>", d.String()+"</DiskSection>", 1)
				}
			})
		}, disk.ErrTooLarge, "10001 disks", false},
		{"capacity past the limit", func() []byte {
			return with(func(s *testimg.OVASpec) {
				s.Disks = []testimg.OVADisk{{ID: "d", File: "disk.img", Format: testimg.URIRaw, Capacity: "1", Units: "byte * 2^60"}}
			})
		}, disk.ErrTooLarge, "capacity", false},
		{"capacity units overflow", func() []byte {
			return with(func(s *testimg.OVASpec) {
				s.Disks = []testimg.OVADisk{{ID: "d", File: "disk.img", Format: testimg.URIRaw, Capacity: "3", Units: "byte * 2^999999999"}}
			})
		}, disk.ErrTooLarge, "overflow", false},
		{"capacity disagrees with the disk", func() []byte {
			return with(func(s *testimg.OVASpec) {
				s.Disks = []testimg.OVADisk{{ID: "d", File: "disk.img", Format: testimg.URIRaw, Capacity: "131072"}}
			})
		}, disk.ErrCorrupt, "capacity of 131072", true},
		{"ovf:size disagrees with the member", func() []byte {
			return with(func(s *testimg.OVASpec) {
				s.EditOVF = func(x string) string { return strings.Replace(x, `ovf:size="65536"`, `ovf:size="65535"`, 1) }
			})
		}, disk.ErrCorrupt, "ovf:size", false},
		{"format declared VMDK, bytes RAW", func() []byte {
			return with(func(s *testimg.OVASpec) {
				s.Disks = []testimg.OVADisk{{ID: "d", File: "disk.img", Format: testimg.URIStreamOptimized, Capacity: "65536"}}
			})
		}, disk.ErrFormatMismatch, "disk.img", true},
		{"an .mf line of a megabyte", func() []byte {
			return with(func(s *testimg.OVASpec) {
				s.EditMF = func(m []byte) []byte { return append(m, "SHA256("+strings.Repeat("x", 100<<10)+")= 00\n"...) }
			})
		}, disk.ErrCorrupt, "longer than", false},
		{"thousands of members", func() []byte {
			return with(func(s *testimg.OVASpec) {
				for i := range 2000 {
					s.Extra = append(s.Extra, testimg.OVAMember{Name: "f" + strconv.Itoa(i)})
				}
			})
		}, disk.ErrTooLarge, "members", false},
		{"two descriptors", func() []byte {
			return with(func(s *testimg.OVASpec) {
				s.Extra = []testimg.OVAMember{{Name: "other.ovf", Data: []byte("<Envelope/>")}}
			})
		}, disk.ErrCorrupt, "two .ovf", false},
		{"gzip member of a VHD", func() []byte {
			return with(func(s *testimg.OVASpec) {
				s.Disks = []testimg.OVADisk{{ID: "d", File: "disk.img", Format: testimg.URIVHD, Capacity: "65536", Gzip: true}}
			})
		}, disk.ErrFormatMismatch, "declared VHD", true},
		{"deep XML", func() []byte {
			return with(func(s *testimg.OVASpec) {
				s.EditOVF = func(x string) string {
					return strings.Replace(x, "</Envelope>", strings.Repeat("<a>", 100)+strings.Repeat("</a>", 100)+"</Envelope>", 1)
				}
			})
		}, disk.ErrTooLarge, "nested", false},
		{"sparse member", func() []byte {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			tw.WriteHeader(&tar.Header{Name: "x.ovf", Typeflag: tar.TypeGNUSparse, Size: 0, Format: tar.FormatGNU})
			tw.Close()
			return b.Bytes()
		}, disk.ErrUnsupported, "sparse", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.ova()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			a, err := ova.Open(disk.NewMemStorage("hostile.ova", b), ova.Options{})
			if c.open {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				_, err = a.OpenDisk(0)
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20+uint64(len(b))*4 {
				t.Errorf("allocated %d MiB", grew>>20)
			}
			if c.class == nil { // refused only when read: see TestGzipMembers
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v; want %v saying %q", err, c.class, c.msg)
			}
			t.Log(err)
		})
	}
}

// Member names are names, never paths: an OVA whose disk is "../x" or
// "/etc/…" converts from the archive's bytes and creates no file.
func TestMemberNamesAreNotPaths(t *testing.T) {
	raw := bytes.Repeat([]byte("diskport"), 8192)
	dir := t.TempDir()
	rawPath := filepath.Join(dir, "src.img")
	os.WriteFile(rawPath, raw, 0o644)
	for _, name := range []string{"../../escape.img", "/tmp/diskport-ova-absolute.img"} {
		s := testimg.OVASpec{Version: 2, Alg: "SHA256", Files: map[string]string{name: rawPath},
			Disks: []testimg.OVADisk{{ID: "d", File: name, Format: testimg.URIRaw, Capacity: "65536"}}}
		path := testimg.OVA(t, s)
		a, err := ova.OpenFile(path, ova.Options{})
		if err != nil {
			t.Fatal(err)
		}
		vol, _, err := convertDisk(t, a, 0)
		a.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(vol)
		if !bytes.Equal(got, raw) {
			t.Errorf("%s: wrong bytes", name)
		}
		for _, p := range []string{filepath.Join(filepath.Dir(path), name), name} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s exists", p)
			}
		}
	}
}
