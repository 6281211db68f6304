package convert

import (
	"fmt"

	"github.com/diskport/diskport/disk"
)

// GiB is the unit EBS volumes are sized in (Volume.Size).
const GiB = 1 << 30

// VolumeSize returns the size of the volume a virtual disk of the given
// size converts to: opts.VolumeSize when set (it must hold the disk), the
// exact virtual size with opts.ExactSize, else the virtual size rounded up
// to a whole GiB (at least 1 GiB), as an EBS volume is sized.
func VolumeSize(virtual int64, opts Options) (int64, error) {
	switch {
	case opts.ExactSize && opts.VolumeSize != 0:
		return 0, fmt.Errorf("convert: an exact size and a volume size (%d bytes) exclude each other", opts.VolumeSize)
	case opts.ExactSize:
		return virtual, nil
	case opts.VolumeSize < 0:
		return 0, fmt.Errorf("convert: negative volume size %d", opts.VolumeSize)
	case opts.VolumeSize > 0:
		if opts.VolumeSize < virtual {
			return 0, disk.Errorf("convert", disk.ErrTooLarge,
				"the image's virtual size %d bytes (%s) does not fit in a volume of %d bytes (%s); it needs at least %d GiB",
				virtual, disk.FormatSize(virtual), opts.VolumeSize, disk.FormatSize(opts.VolumeSize), GiBs(virtual))
		}
		return opts.VolumeSize, nil
	}
	return max(1, GiBs(virtual)) * GiB, nil
}

// GiBs returns n bytes in whole GiB, rounded up.
func GiBs(n int64) int64 { return (n + GiB - 1) / GiB }
