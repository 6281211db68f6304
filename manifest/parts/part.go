// Package parts keeps a file as parts and reads it back checked: the
// parts an EC2 import manifest lists, each a byte range of a disk image
// file stored as one object, with diskport's SHA-256 of each part and of
// the whole file. Package manifest reads and writes the document that
// lists them; this package knows nothing of it.
//
// A [File] is the parts in order, covering the file, and its SHA-256. The
// pieces:
//   - A [Store] fetches parts: [DirStore] (files in a directory),
//     [HTTPStore] (the presigned URLs, with retries, resumed bodies and
//     idle timeouts), [S3Store] (a bucket, by key, with credentials).
//   - [DirStore.Write] and [S3Store.Upload] store a file's parts, hashing
//     them in the same pass; an upload presigns the parts' URLs (SigV4, or
//     SigV2 for old endpoints) and resumes an interrupted one.
//   - [Verify] fetches every part and checks its length and SHA-256 and
//     the whole file's, reporting every failure with its index and byte
//     range.
//   - [OpenStorage] reads the file from its parts as one [disk.Storage]
//     for the format readers: cached, fetched ahead, each part checked
//     before any byte of it is used; a part too large to hold is hashed as
//     it streams past, in order with the whole file, for
//     [Storage.Verify]. Parts whose checksum is that of zeros are not
//     fetched at all.
//
// Errors name the part as the manifest does, for the user who holds it:
// "manifest: part 3 (bytes 31457280-41943039) from URL: checksum
// mismatch: …".
package parts

import (
	"fmt"

	"github.com/diskport/diskport/disk"
)

// Limits on what a file stored as parts may be, so hostile input stays
// bounded.
const (
	// MaxParts is the largest number of parts accepted.
	MaxParts = 1 << 20
	// MaxFileSize is the largest file accepted (64 TiB).
	MaxFileSize = 64 << 40
)

// A Part is one part of the file: a byte range stored as one object.
type Part struct {
	// Index is the part's index, 0 for the first.
	Index int
	// Offset and Length are the byte range of the file the part holds.
	Offset, Length int64
	// Key is the S3 object name of the part.
	Key string
	// HeadURL, GetURL and DeleteURL are presigned URLs of the part's
	// object; DeleteURL may be empty.
	HeadURL, GetURL, DeleteURL string
	// SHA256 is the lower-case hex SHA-256 of the part's bytes; empty
	// when unknown.
	SHA256 string
}

// End returns the offset just past the part.
func (p *Part) End() int64 { return p.Offset + p.Length }

// String names the part and its byte range for messages:
// "part 3 (bytes 31457280-41943039)".
func (p *Part) String() string {
	if p.Length == 0 {
		return fmt.Sprintf("part %d (empty, at byte %d)", p.Index, p.Offset)
	}
	return fmt.Sprintf("part %d (bytes %d-%d)", p.Index, p.Offset, p.End()-1)
}

// A File is a file stored as parts.
type File struct {
	// Parts are the parts in index order, covering the file contiguously.
	Parts []Part
	// SHA256 is the lower-case hex SHA-256 of the whole file; empty when
	// unknown.
	SHA256 string
}

// Size returns the size of the file: the sum of its parts' lengths.
func (f File) Size() int64 {
	if len(f.Parts) == 0 {
		return 0
	}
	return f.Parts[len(f.Parts)-1].End()
}

// HasChecksums reports whether every part and the whole file carry a
// SHA-256.
func (f File) HasChecksums() bool {
	if f.SHA256 == "" {
		return false
	}
	for i := range f.Parts {
		if f.Parts[i].SHA256 == "" {
			return false
		}
	}
	return true
}

// Validate checks that the parts are indexed 0..n-1 in order, not empty,
// and cover [0, Size) exactly once, within [MaxParts] and
// [MaxFileSize], and that the checksums are well-formed.
func (f File) Validate() error {
	if len(f.Parts) == 0 {
		return errorf(disk.ErrCorrupt, "no parts")
	}
	if len(f.Parts) > MaxParts {
		return errorf(disk.ErrTooLarge, "%d parts (limit %d)", len(f.Parts), MaxParts)
	}
	var pos int64
	for i := range f.Parts {
		p := &f.Parts[i]
		if p.Index != i {
			return errorf(disk.ErrCorrupt, "part %d has index %d", i, p.Index)
		}
		if p.Length < 0 || p.Offset < 0 {
			return errorf(disk.ErrCorrupt, "part %d has byte range start %d length %d", i, p.Offset, p.Length)
		}
		if p.Offset != pos {
			if p.Offset < pos {
				return errorf(disk.ErrCorrupt, "%s overlaps the previous part, which ends at byte %d", p, pos-1)
			}
			return errorf(disk.ErrCorrupt, "%s leaves a gap: bytes %d-%d are in no part", p, pos, p.Offset-1)
		}
		if p.Length > MaxFileSize-pos {
			return errorf(disk.ErrTooLarge, "%s ends past %d bytes", p, int64(MaxFileSize))
		}
		if p.Length == 0 {
			return errorf(disk.ErrCorrupt, "part %d is empty", i)
		}
		if p.SHA256 != "" && !isHexDigest(p.SHA256) {
			return errorf(disk.ErrCorrupt, "%s: sha256 %q is not 64 hex digits", p, p.SHA256)
		}
		pos = p.End()
	}
	if f.SHA256 != "" && !isHexDigest(f.SHA256) {
		return errorf(disk.ErrCorrupt, "file sha256 %q is not 64 hex digits", f.SHA256)
	}
	return nil
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// errorf returns a *disk.Error of format "manifest": the parts are those
// of an import manifest, and its user knows them by it.
func errorf(class error, msg string, args ...any) error {
	return disk.Errorf("manifest", class, msg, args...)
}
