package ova

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
)

// fixTarChecksums walks the 512-byte header blocks of an archive, as a
// tar reader would find them (each header's size field says how much data
// follows), and recomputes each one's checksum, so that the fuzzer's
// changes to names, sizes, types and pax or GNU records reach past the
// checksum test. It stops at a size field it cannot read.
func fixTarChecksums(b []byte) {
	for pos := 0; pos+512 <= len(b); {
		h := b[pos : pos+512]
		if isZeroBlock(h) {
			pos += 512
			continue
		}
		copy(h[148:156], "        ")
		sum := 0
		for _, c := range h {
			sum += int(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
		size, ok := tarSize(h[124:136])
		if !ok || size > int64(len(b)) {
			return
		}
		pos += 512 + int(size+511)/512*512
	}
}

func isZeroBlock(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// tarSize reads a header's size field: octal, or base-256 when its top
// bit is set.
func tarSize(f []byte) (int64, bool) {
	if f[0]&0x80 != 0 {
		var n int64
		for _, c := range f[1:] {
			if n > 1<<50 {
				return 0, false
			}
			n = n<<8 | int64(c)
		}
		return n, true
	}
	s := strings.Trim(string(f), " \x00")
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 8, 64)
	return n, err == nil && n >= 0
}

// tarOf writes members (name, type, data) in format.
func tarOf(format tar.Format, members ...tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range members {
		h.Format, h.Mode = format, 0o644
		data := bytes.Repeat([]byte{'d'}, int(h.Size))
		if err := tw.WriteHeader(&h); err != nil {
			panic(err)
		}
		tw.Write(data)
	}
	tw.Close()
	return buf.Bytes()
}

// FuzzTar walks fuzzed tar archives (their header checksums recomputed)
// as an OVA is walked: members are listed or the archive refused with a
// typed error, never a panic; every member listed lies inside the archive,
// is listed once, and its bytes are what archive/tar reads for it.
func FuzzTar(f *testing.F) {
	long := strings.Repeat("long-name/", 12) + "disk.vmdk"
	f.Add(tarOf(tar.FormatUSTAR, tar.Header{Name: "a.ovf", Size: 100}, tar.Header{Name: "a.mf", Size: 10}, tar.Header{Name: "disk.vmdk", Size: 600}))
	f.Add(tarOf(tar.FormatGNU, tar.Header{Name: long, Size: 5}, tar.Header{Name: "dir/", Typeflag: tar.TypeDir}, tar.Header{Name: "./b", Size: 0}))
	f.Add(tarOf(tar.FormatPAX, tar.Header{Name: long, Size: 7, PAXRecords: map[string]string{"comment": "x"}}, tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "a"}))
	f.Add(tarOf(tar.FormatPAX, tar.Header{Name: "s", Size: 3, PAXRecords: map[string]string{"GNU.sparse.major": "1"}}))
	f.Add(tarOf(tar.FormatUSTAR, tar.Header{Name: "a", Size: 1}, tar.Header{Name: "./a", Size: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64<<10 {
			return
		}
		b = bytes.Clone(b)
		fixTarChecksums(b)
		s := disk.NewMemStorage("fuzz.ova", b)
		ms, err := walk(s, 64)
		if err != nil {
			var de *disk.Error
			if !errors.As(err, &de) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if len(ms) == 0 || len(ms) > 64 {
			t.Fatalf("%d members", len(ms))
		}
		seen := map[string]bool{}
		for _, m := range ms {
			if m.Offset < 0 || m.Size < 0 || m.Offset > int64(len(b)) || m.Size > int64(len(b))-m.Offset {
				t.Fatalf("member %+v outside the %d-byte archive", m, len(b))
			}
			if seen[m.Name] {
				t.Fatalf("member %q listed twice", m.Name)
			}
			seen[m.Name] = true
		}
		// archive/tar, reading the data, finds the same bytes.
		tr := tar.NewReader(bytes.NewReader(b))
		i := 0
		for i < len(ms) {
			h, err := tr.Next()
			if err != nil {
				t.Fatalf("archive/tar stops before member %d (%q): %v", i, ms[i].Name, err)
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("member %q: %v", h.Name, err)
			}
			m := ms[i]
			if m.Name != strings.TrimPrefix(h.Name, "./") || !bytes.Equal(data, b[m.Offset:m.Offset+m.Size]) {
				t.Fatalf("member %d listed as %+v, archive/tar reads %q (%d bytes)", i, m, h.Name, len(data))
			}
			i++
		}
	})
}
