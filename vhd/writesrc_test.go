package vhd

import (
	"fmt"
	"io"
	"iter"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/diskport/diskport/disk"
)

// A segment is a data run of a sparseSource.
type segment struct {
	off  int64
	data []byte
}

// sparseSource is a disk.Image made of data segments over zeros, for the
// writer's tests: its extent map reports the segments as data (zeros in
// them included) and the rest as zero runs. size may break the
// multiple-of-512 contract on purpose.
type sparseSource struct {
	size  int64
	segs  []segment // sorted, not overlapping, inside [0, size)
	reads atomic.Int64
}

// newSparseSource returns a source of size bytes holding segs, which it
// sorts; overlapping segments are cut so the later-starting one wins.
func newSparseSource(size int64, segs ...segment) *sparseSource {
	sort.Slice(segs, func(i, j int) bool { return segs[i].off < segs[j].off })
	var out []segment
	for _, s := range segs {
		if s.off >= size || len(s.data) == 0 {
			continue
		}
		if end := s.off + int64(len(s.data)); end > size {
			s.data = s.data[:size-s.off]
		}
		if n := len(out); n > 0 {
			p := &out[n-1]
			if pend := p.off + int64(len(p.data)); pend > s.off {
				p.data = p.data[:s.off-p.off]
				if len(p.data) == 0 {
					out = out[:n-1]
				}
			}
		}
		out = append(out, s)
	}
	return &sparseSource{size: size, segs: out}
}

func (s *sparseSource) Size() int64 { return s.size }

func (s *sparseSource) ReadAt(p []byte, off int64) (int, error) {
	s.reads.Add(1)
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	n := len(p)
	if int64(n) > s.size-off {
		n = int(s.size - off)
	}
	q := p[:n]
	clear(q)
	end := off + int64(n)
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].off+int64(len(s.segs[i].data)) > off })
	for ; i < len(s.segs) && s.segs[i].off < end; i++ {
		sg := s.segs[i]
		lo := max(sg.off, off)
		hi := min(sg.off+int64(len(sg.data)), end)
		copy(q[lo-off:hi-off], sg.data[lo-sg.off:hi-sg.off])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (s *sparseSource) Extents(off, n int64) iter.Seq2[disk.Extent, error] {
	start, end := disk.ClipRange(off, n, s.size)
	return disk.Coalesce(func(yield func(disk.Extent, error) bool) {
		pos := int64(0)
		for _, sg := range s.segs {
			if sg.off > pos && !yield(disk.Extent{Offset: pos, Length: sg.off - pos, Kind: disk.Zero}, nil) {
				return
			}
			if !yield(disk.Extent{Offset: sg.off, Length: int64(len(sg.data)), Kind: disk.Data}, nil) {
				return
			}
			pos = sg.off + int64(len(sg.data))
		}
		if pos < s.size {
			yield(disk.Extent{Offset: pos, Length: s.size - pos, Kind: disk.Zero}, nil)
		}
	}, start, end-start)
}

func (s *sparseSource) Info() disk.Info {
	return disk.Info{Format: "test", VirtualSize: s.size}
}

func (s *sparseSource) Close() error { return nil }

// memWriterAt is an io.WriterAt into memory, safe for concurrent use.
type memWriterAt struct {
	mu     sync.Mutex
	b      []byte
	writes int
}

func (m *memWriterAt) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

// Bytes returns what was written.
func (m *memWriterAt) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b
}

// rawFile writes src to a sparse raw file in dir (its size rounded up to
// 512 bytes, holes left unwritten) and returns the path.
func rawFile(t testing.TB, dir string, src *sparseSource) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "src-*.img")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, sg := range src.segs {
		if _, err := f.WriteAt(sg.data, sg.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate((src.size + 511) / 512 * 512); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}
