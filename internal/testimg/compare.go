package testimg

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/diskport/diskport/disk"
)

// SameAsQemu checks that the volume at vol is qemu-img's raw conversion of
// image over the shorter of the two (VHD's CHS rounding makes qemu's
// longer or shorter) and zeros after it.
func SameAsQemu(t testing.TB, vol, image string) {
	t.Helper()
	if d := Compare(vol, QemuRaw(t, image), -1); d != "" {
		t.Fatalf("%s is not qemu-img's conversion of %s: %s", vol, image, d)
	}
}

// SameVolume checks that the volume at vol is size bytes long and holds
// want's bytes followed by zeros.
func SameVolume(t testing.TB, vol, want string, size int64) {
	t.Helper()
	if d := Compare(vol, want, size); d != "" {
		t.Fatalf("volume %s: %s", vol, d)
	}
}

// Compare reports how the file vol differs from the file want followed by
// zeros, or "" when it does not. With size ≥ 0, vol must be size bytes
// and want no longer; with size < 0 the two are compared over the shorter
// of them. Past want, only the data vol stores is read (a hole reads as
// zeros), so checking a mostly empty GiB volume costs what its data costs,
// and memory stays at two buffers whatever the sizes.
func Compare(vol, want string, size int64) string {
	fv, err := os.Open(vol)
	if err != nil {
		return err.Error()
	}
	defer fv.Close()
	fw, err := os.Open(want)
	if err != nil {
		return err.Error()
	}
	defer fw.Close()
	sv, err := fv.Stat()
	if err != nil {
		return err.Error()
	}
	sw, err := fw.Stat()
	if err != nil {
		return err.Error()
	}
	n := min(sv.Size(), sw.Size())
	if size >= 0 {
		if sv.Size() != size {
			return fmt.Sprintf("%d bytes, want %d", sv.Size(), size)
		}
		if sw.Size() > size {
			return fmt.Sprintf("%s is %d bytes, longer than the volume's %d", want, sw.Size(), size)
		}
	}
	bv, bw := make([]byte, 4<<20), make([]byte, 4<<20)
	for off := int64(0); off < n; {
		k := int(min(int64(len(bv)), n-off))
		if _, err := fv.ReadAt(bv[:k], off); err != nil && err != io.EOF {
			return err.Error()
		}
		if _, err := fw.ReadAt(bw[:k], off); err != nil && err != io.EOF {
			return err.Error()
		}
		if !bytes.Equal(bv[:k], bw[:k]) {
			i := 0
			for bv[i] == bw[i] {
				i++
			}
			return fmt.Sprintf("differs from %s at byte %d", want, off+int64(i))
		}
		off += int64(k)
	}
	return zerosAfter(fv, vol, n, sv.Size(), bv)
}

// zerosAfter reports the first non-zero byte of f in [off, end), reading
// only the data runs the file system reports.
func zerosAfter(f *os.File, name string, off, end int64, buf []byte) string {
	h, err := disk.OpenHostFile(name)
	if err != nil {
		return err.Error()
	}
	defer h.Close()
	for off < end {
		data, hole, err := h.NextData(off)
		if err != nil {
			return err.Error()
		}
		if data >= end {
			break
		}
		for off = data; off < min(hole, end); {
			k, err := f.ReadAt(buf[:min(int64(len(buf)), min(hole, end)-off)], off)
			for i, b := range buf[:k] {
				if b != 0 {
					return fmt.Sprintf("byte %d past the compared data is %#x, not zero", off+int64(i), b)
				}
			}
			off += int64(k)
			if k == 0 {
				return fmt.Sprintf("ends at %d, inside its data at %d-%d (%v)", off, data, hole, err)
			}
		}
	}
	return ""
}

// ReadAll reads the whole of s, failing the test on any error.
func ReadAll(t testing.TB, s disk.Storage) []byte {
	t.Helper()
	b := make([]byte, s.Size())
	if _, err := s.ReadAt(b, 0); err != nil {
		t.Fatalf("ReadAt(all): %v", err)
	}
	return b
}
