// Package atomicfile replaces files so that a reader, or the next run
// after a crash, sees either the old contents or the new, never a short
// file under the final name.
//
// The rule, everywhere diskport replaces a file: write a temporary file in
// the same directory (a rename is atomic only within one filesystem), sync
// it (else the rename can reach the disk before the data and a crash
// leaves an empty file under the final name), rename it into place, then
// sync the directory (else the rename itself may be lost).
package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// WriteFile writes data to path with permissions perm by the rule above.
// The temporary file is named "."+base+".*" beside path and removed on
// any error.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm) // CreateTemp makes the file 0600
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// Rename renames tmp, a file its caller has written and synced in path's
// directory, to path, and syncs the directory so that the new name
// survives a crash. When the rename fails tmp is left for the caller.
func Rename(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if err := SyncDir(path); err != nil {
		return fmt.Errorf("syncing the directory of %s: %w", path, err)
	}
	return nil
}

// SyncDir flushes the directory holding path, making a rename or removal
// in it durable. On Windows, where a directory cannot be opened for
// flushing and NTFS journals the rename itself, it does nothing.
func SyncDir(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
