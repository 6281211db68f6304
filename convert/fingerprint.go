package convert

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/volume"
)

// A Fingerprinter is an image that identifies itself for the resume
// journal, when sampling its bytes would not do: a stream that is read
// once, in order (a gzip-compressed OVA member), returns its content's
// checksum. An empty fingerprint means "sample me".
type Fingerprinter interface {
	Fingerprint() string
}

// fingerprint identifies an image: its own fingerprint, or its description
// and samples of its first and last MiB.
func fingerprint(src disk.Image) (string, error) {
	if f, ok := src.(Fingerprinter); ok {
		if fp := f.Fingerprint(); fp != "" {
			return fp, nil
		}
	}
	h := sha256.New()
	info := src.Info()
	fmt.Fprintf(h, "%s|%s|%d|%d|%d|", info.Format, info.Subformat, info.VirtualSize, info.FileSize, info.ClusterSize)
	buf := make([]byte, 1<<20)
	for _, off := range []int64{0, max(0, src.Size()-int64(len(buf)))} {
		n := min(int64(len(buf)), src.Size()-off)
		if _, err := src.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return "", err
		}
		h.Write(buf[:n])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// journalSpec returns what the resume journal of converting src records.
func journalSpec(src disk.Image, segments int) (*volume.JournalSpec, error) {
	fp, err := fingerprint(src)
	if err != nil {
		return nil, err
	}
	return &volume.JournalSpec{Source: fp, Segments: segments, SegmentSize: segmentSize}, nil
}

// hashState encodes the checksum's progress for the journal: the segments
// hashed and the SHA-256 state.
func hashState(next int, state []byte) []byte {
	if state == nil {
		return nil
	}
	return append(binary.BigEndian.AppendUint64(nil, uint64(next)), state...)
}

// parseHashState decodes hashState's bytes; ok is false for none.
func parseHashState(b []byte) (next int, state []byte, ok bool) {
	if len(b) <= 8 {
		return 0, nil, false
	}
	return int(binary.BigEndian.Uint64(b)), b[8:], true
}
