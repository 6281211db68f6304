// Package raw reads RAW disk images: the virtual disk is the file's bytes.
//
// The image is read through the storage it is opened on. The extent map
// reports every data run as stored verbatim in the file at its own offset,
// so a converter copies it straight from the file (pread from the page
// cache, or copy_file_range). Holes of a sparse file (found with SEEK_DATA
// and SEEK_HOLE, on Linux, macOS and FreeBSD) are reported as zero runs
// before any byte is read; a file system or OS that cannot tell reports the
// whole file as data.
//
// A file whose size is not a multiple of 512 has a virtual size rounded up
// to the next multiple of 512, as qemu does; the padding reads as zeros.
// Block devices (Linux only) are read like files, their size taken from
// the device.
package raw

import (
	"fmt"
	"io"
	"iter"

	"github.com/diskport/diskport/disk"
)

// Image is a RAW image. It implements [disk.Image].
type Image struct {
	s    disk.Storage
	size int64 // virtual size: s.Size() rounded up to a sector
	own  bool  // Close closes s
}

// Open returns the RAW image stored in s. Closing the image does not close s.
func Open(s disk.Storage) (*Image, error) {
	n := s.Size()
	if n < 0 {
		return nil, disk.Errorf("raw", disk.ErrCorrupt, "%s: negative size %d", s.Name(), n)
	}
	if n > (1<<63-1)-disk.SectorSize {
		return nil, disk.Errorf("raw", disk.ErrTooLarge, "%s: size %d too large", s.Name(), n)
	}
	size := (n + disk.SectorSize - 1) / disk.SectorSize * disk.SectorSize
	if h, ok := s.(*disk.HostFile); ok {
		h.Advise(0, n, disk.AdviseSequential)
	}
	return &Image{s: s, size: size}, nil
}

// OpenFile opens the RAW image at path (a file or block device); Close
// closes the file.
func OpenFile(path string) (*Image, error) {
	h, err := disk.OpenHostFile(path)
	if err != nil {
		return nil, err
	}
	img, err := Open(h)
	if err != nil {
		h.Close()
		return nil, err
	}
	img.own = true
	return img, nil
}

// Size returns the virtual size: the file size rounded up to 512 bytes.
func (m *Image) Size() int64 { return m.size }

// Storage returns the storage the image reads.
func (m *Image) Storage() disk.Storage { return m.s }

// ReadAt reads virtual-disk bytes; the padding past the end of the file
// reads as zeros.
func (m *Image) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("raw: negative offset %d", off)
	}
	if off >= m.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > m.size-off {
		p = p[:m.size-off]
	}
	stored := m.s.Size()
	n := 0
	if off < stored {
		k := int(min(int64(len(p)), stored-off))
		if err := disk.ReadFull(m.s, "raw", "data", p[:k], off); err != nil {
			return 0, err
		}
		n = k
	}
	clear(p[n:])
	if len(p) < want {
		return len(p), io.EOF
	}
	return len(p), nil
}

// Extents yields the data runs and holes of [off, off+n): data runs are
// stored verbatim in the image's storage at their own offset.
func (m *Image) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	start, end := disk.ClipRange(off, n, m.size)
	return disk.Coalesce(m.runs(start, end), start, end-start)
}

func (m *Image) runs(start, end int64) iter.Seq2[disk.Extent, error] {
	return func(yield func(disk.Extent, error) bool) {
		stored := m.s.Size()
		sp, sparse := m.s.(disk.SparseStorage)
		pos := start
		for pos < end && pos < stored {
			ds, de := pos, stored
			if sparse {
				var err error
				if ds, de, err = sp.NextData(pos); err != nil {
					yield(disk.Extent{}, fmt.Errorf("raw: %w", err))
					return
				}
			}
			if ds > pos && !yield(disk.Extent{Offset: pos, Length: min(ds, end) - pos, Kind: disk.Zero}, nil) {
				return
			}
			if ds >= end || ds >= stored {
				pos = min(ds, end)
				break
			}
			if de <= ds {
				de = stored
			}
			de = min(de, end)
			if !yield(disk.Extent{Offset: ds, Length: de - ds, Kind: disk.Data, Stored: m.s, StoredOffset: ds}, nil) {
				return
			}
			pos = de
		}
		if pos < end {
			yield(disk.Extent{Offset: pos, Length: end - pos, Kind: disk.Zero}, nil)
		}
	}
}

// Info describes the image. AllocatedBytes is the space the file occupies
// on disk when the storage is a host file, else its size.
func (m *Image) Info() disk.Info {
	info := disk.Info{Format: "raw", VirtualSize: m.size, FileSize: m.s.Size(), AllocatedBytes: m.s.Size()}
	if o, ok := m.s.(disk.OSStorage); ok {
		if st, err := o.File().Stat(); err == nil {
			if n, ok := disk.AllocatedBytes(st); ok && st.Mode().IsRegular() {
				info.AllocatedBytes = min(n, m.s.Size())
			}
		}
	}
	return info
}

// Close closes the storage if the image opened it (OpenFile).
func (m *Image) Close() error {
	if m.own {
		if c, ok := m.s.(io.Closer); ok {
			return c.Close()
		}
	}
	return nil
}

var _ disk.Image = (*Image)(nil)
