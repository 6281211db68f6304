package convert

import (
	"iter"

	"github.com/diskport/diskport/disk"
)

// holeScanMin is the shortest verbatim run whose storage is asked where
// its holes are: two lseek calls cost less than reading a megabyte, not
// less than reading a grain.
const holeScanMin = 1 << 20

// storedRuns splits e, a data run, by the holes of the host file its bytes
// are stored in: a monolithicFlat extent or a fixed VHD made from a sparse
// disk is itself sparse, and its holes read as zeros without being read.
// Other runs are yielded whole.
func storedRuns(e disk.Extent) iter.Seq2[disk.Extent, error] {
	return func(yield func(disk.Extent, error) bool) {
		ss, ok := e.Stored.(disk.SparseStorage)
		if !ok || e.Compressed || e.Length < holeScanMin {
			yield(e, nil)
			return
		}
		at, end := e.StoredOffset, e.StoredOffset+e.Length
		for at < end {
			ds, de, err := ss.NextData(at)
			if err != nil {
				yield(e, err)
				return
			}
			ds = min(max(ds, at), end)
			if de <= ds && ds < end {
				de = end // a storage that reports an empty run: read the rest
			}
			de = min(de, end)
			if ds > at && !yield(disk.Extent{Offset: e.Offset + at - e.StoredOffset, Length: ds - at, Kind: disk.Zero}, nil) {
				return
			}
			if de > ds {
				d := e
				d.Offset, d.Length, d.StoredOffset = e.Offset+ds-e.StoredOffset, de-ds, ds
				if !yield(d, nil) {
					return
				}
			}
			at = max(ds, de)
		}
	}
}
