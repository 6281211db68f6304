//go:build !linux || portable

package vmdk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/diskport/diskport/disk"
)

// openBeneath opens name inside dir and nowhere else, refusing what
// openat2 with RESOLVE_BENEATH and RESOLVE_NO_SYMLINKS refuses, without
// openat2: an absolute name, one with a volume name ("C:x", `\\.\dev`) or
// a ".." that climbs out of dir (filepath.IsLocal; "a/../b" stays inside
// and is taken, as the kernel takes it, when a is a directory), and a
// symbolic link anywhere on the way.
//
// It walks as the kernel does, one component at a time from an open
// directory ([os.Root]): each directory is Lstat'ed in its parent,
// refused if it is a link, opened through the parent and checked to be
// the directory Lstat saw, and the last name is opened in the last
// directory with [disk.OpenInRoot], which refuses a link, a FIFO or a
// device before opening and checks the file opened. No path is looked up
// from dir again after the walk, so renaming or linking anything on the
// way meanwhile can make the open fail, never leave dir.
func openBeneath(dir, name string) (*os.File, error) {
	unsafe := func() error {
		return disk.Errorf(formatName, disk.ErrUnsafe, "extent file %q escapes the descriptor's directory %s or is a symbolic link", name, dir)
	}
	if name == "" || !filepath.IsLocal(name) || strings.ContainsRune(name, 0) {
		return nil, unsafe()
	}
	path := filepath.Join(dir, name)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	// walked holds the directories from dir down to the current one; a
	// ".." steps back up it, as the kernel's walk does.
	walked := []*os.Root{root}
	defer func() {
		for _, r := range walked {
			r.Close()
		}
	}()
	parts := strings.Split(filepath.ToSlash(name), "/")
	last := parts[len(parts)-1]
	for _, part := range parts[:len(parts)-1] {
		switch part {
		case "", ".":
			continue
		case "..":
			if len(walked) == 1 {
				return nil, unsafe() // IsLocal has refused this already
			}
			walked[len(walked)-1].Close()
			walked = walked[:len(walked)-1]
			continue
		}
		cur := walked[len(walked)-1]
		fi, err := cur.Lstat(part)
		if err != nil {
			return nil, openError(path, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return nil, unsafe()
		}
		if !fi.IsDir() {
			return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOTDIR}
		}
		next, err := cur.OpenRoot(part)
		if err != nil {
			return nil, openError(path, err)
		}
		walked = append(walked, next)
		if st, err := next.Stat("."); err != nil || !os.SameFile(fi, st) {
			return nil, unsafe() // replaced by a link since the Lstat
		}
	}
	if last == "" || last == "." || last == ".." {
		return nil, &disk.FileKindError{Path: path, Kind: "a directory", Want: "a regular file"}
	}
	f, err := disk.OpenInRoot(walked[len(walked)-1], last, disk.FileOptions{})
	var kind *disk.FileKindError
	if errors.As(err, &kind) && kind.Kind == "a symbolic link" {
		return nil, unsafe()
	}
	if err != nil {
		return nil, openError(path, err)
	}
	return f, nil
}

// openError names the whole path in an error os.Root reports for one
// component of it.
func openError(path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return &os.PathError{Op: "open", Path: path, Err: pe.Err}
	}
	return err
}
