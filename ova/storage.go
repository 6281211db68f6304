package ova

import (
	"fmt"
	"io"

	"github.com/diskport/diskport/disk"
)

// A section is a member's bytes read in place inside the OVA: ReadAt at
// off reads the OVA at the member's offset plus off. Nothing is copied or
// extracted.
type section struct {
	s    disk.Storage
	off  int64
	size int64
	name string
}

// newSection returns the storage of member m of s.
func newSection(s disk.Storage, m Member) *section {
	return &section{s: s, off: m.Offset, size: m.Size, name: s.Name() + ":" + m.Name}
}

// Name is "OVA:member".
func (c *section) Name() string { return c.name }

// Size is the member's length.
func (c *section) Size() int64 { return c.size }

// ReadAt reads the member's bytes; it never reads past the member.
func (c *section) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", c.name, off)
	}
	if off >= c.size {
		return 0, io.EOF
	}
	short := false
	if rest := c.size - off; int64(len(p)) > rest {
		p, short = p[:rest], true
	}
	n, err := c.s.ReadAt(p, c.off+off)
	if err == nil && short {
		err = io.EOF
	}
	if err == io.EOF && n == len(p) && !short {
		err = nil
	}
	return n, err
}
