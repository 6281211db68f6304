//go:build !linux || portable

package vmdk

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/diskport/diskport/disk"
)

// openBeneath opens name inside dir and nowhere else, refusing what
// openat2 with RESOLVE_BENEATH and RESOLVE_NO_SYMLINKS refuses, without
// openat2:
//
//   - an absolute name, or one with a volume name ("C:x", `\\.\dev`), or
//     a ".." that climbs out of dir (filepath.IsLocal; "a/../b" stays
//     inside and is taken, as the kernel takes it);
//   - a symbolic link anywhere on the way: each component is checked
//     with Lstat before the next is looked at;
//   - anything but a regular file at the end, by Lstat before it is
//     opened, so a FIFO or device is never opened;
//
// and then opens the file with [disk.OpenFile] (NoFollow) and checks with
// [os.SameFile] that the file opened is the one the walk saw, so a name
// swapped for a link or another file after the walk is refused rather
// than followed. A directory on the way swapped for a link between its
// Lstat and the open is the one race this cannot close without openat.
func openBeneath(dir, name string) (*os.File, error) {
	unsafe := func() error {
		return disk.Errorf(formatName, disk.ErrUnsafe, "extent file %q escapes the descriptor's directory %s or is a symbolic link", name, dir)
	}
	if name == "" || !filepath.IsLocal(name) || strings.ContainsRune(name, 0) {
		return nil, unsafe()
	}
	path := dir
	parts := strings.Split(filepath.ToSlash(name), "/")
	var last os.FileInfo
	for i, part := range parts {
		switch part {
		case "", ".":
			continue
		case "..":
			// IsLocal has checked that this never climbs above dir, and
			// every component walked so far is a real directory.
			path = filepath.Dir(path)
			continue
		}
		path = filepath.Join(path, part)
		fi, err := os.Lstat(path)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return nil, unsafe()
		}
		if i < len(parts)-1 && !fi.IsDir() {
			return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOTDIR}
		}
		last = fi
	}
	if last == nil || last.IsDir() {
		return nil, &disk.FileKindError{Path: path, Kind: "a directory", Want: "a regular file"}
	}
	f, err := disk.OpenFile(path, disk.FileOptions{NoFollow: true})
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !os.SameFile(st, last) {
		f.Close()
		if err != nil {
			return nil, err
		}
		return nil, unsafe()
	}
	return f, nil
}
