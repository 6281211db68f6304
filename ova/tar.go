package ova

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/diskport/diskport/disk"
)

// A Member is a file of the OVA's tar archive: its name as the archive
// spells it (never used as a host path: nothing is extracted) and where
// its bytes lie in the OVA.
type Member struct {
	Name string
	// Offset is the byte offset of the member's first data byte in the
	// OVA; Size the member's length.
	Offset, Size int64
}

// storageReader reads a storage sequentially and seeks, so archive/tar
// skips members' data without reading it, and tells where it is.
type storageReader struct {
	s   disk.Storage
	pos int64
}

func (r *storageReader) Read(p []byte) (int, error) {
	if r.pos >= r.s.Size() {
		return 0, io.EOF
	}
	if rest := r.s.Size() - r.pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := r.s.ReadAt(p, r.pos)
	r.pos += int64(n)
	if n == len(p) {
		err = nil
	}
	return n, err
}

func (r *storageReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.s.Size()
	default:
		return 0, fmt.Errorf("ova: bad whence %d", whence)
	}
	if off < 0 {
		return 0, fmt.Errorf("ova: seek to negative offset %d", off)
	}
	r.pos = off
	return off, nil
}

// walk lists the regular files of the tar archive in s, in archive order,
// reading only the headers (the data of each member is skipped with a
// seek, but for its last byte, which archive/tar reads to detect
// truncation). It accepts ustar, GNU and pax archives; a sparse member, a
// member whose header puts its data past the end of the OVA, a duplicate
// name and more than maxMembers members are errors.
func walk(s disk.Storage, maxMembers int) ([]Member, error) {
	r := &storageReader{s: s}
	tr := tar.NewReader(r)
	var ms []Member
	seen := map[string]bool{}
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s: tar header of member %d near byte %d: %v", s.Name(), n+1, r.pos, err)
		}
		if n >= maxMembers {
			return nil, disk.Errorf("ova", disk.ErrTooLarge, "%s: more than %d members in the archive", s.Name(), maxMembers)
		}
		if h.Typeflag == tar.TypeGNUSparse || hasSparseRecords(h) {
			return nil, disk.Errorf("ova", disk.ErrUnsupported, "%s: member %q is a sparse tar file, which OVAs do not use", s.Name(), h.Name)
		}
		if h.Typeflag != tar.TypeReg {
			continue // directories, links, devices: never disks
		}
		name := strings.TrimPrefix(h.Name, "./")
		if h.Size < 0 || r.pos > s.Size() || h.Size > s.Size()-r.pos {
			return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s: member %q of %d bytes at byte %d runs past the end of the archive (size %d)", s.Name(), name, h.Size, r.pos, s.Size())
		}
		if seen[name] {
			return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s: member %q appears twice in the archive", s.Name(), name)
		}
		seen[name] = true
		ms = append(ms, Member{Name: name, Offset: r.pos, Size: h.Size})
	}
	if len(ms) == 0 {
		return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s: no files in the archive", s.Name())
	}
	return ms, nil
}

func hasSparseRecords(h *tar.Header) bool {
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
