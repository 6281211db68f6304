//go:build !linux || portable

package vhd

import "os"

// copyFile refuses: copy_file_range is Linux-only, and the portable build
// makes no Linux-only calls.
func copyFile(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) (done int64, refused bool, err error) {
	return 0, true, nil
}
