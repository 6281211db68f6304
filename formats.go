package diskport

import "github.com/diskport/diskport/disk"

// openFormat opens the non-RAW formats.
func openFormat(f Format, s disk.Storage, path string, opts Options) (disk.Image, error) {
	return nil, unsupported(f)
}
