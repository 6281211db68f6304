package disk

import (
	"fmt"
	"io"
)

// MemStorage is a Storage over a byte slice, for tests and fuzzing.
type MemStorage struct {
	name string
	b    []byte
}

// NewMemStorage returns a Storage reading b.
func NewMemStorage(name string, b []byte) *MemStorage { return &MemStorage{name, b} }

// Name returns the name given to NewMemStorage.
func (m *MemStorage) Name() string { return m.name }

// Size returns len(b).
func (m *MemStorage) Size() int64 { return int64(len(m.b)) }

// ReadAt copies from b.
func (m *MemStorage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", m.name, off)
	}
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
