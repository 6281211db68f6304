package parts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/diskport/diskport/internal/atomicfile"
)

// Write reads the parts of file from f in order, sets each part's SHA-256
// and the file's, and writes each part to its file (its [DirStore.Path]),
// replacing any file of that name whole. The directory must exist.
// progress, when set, is called as parts are written with the bytes
// written so far and the file's size; calls are serialised.
func (d DirStore) Write(ctx context.Context, f io.ReaderAt, file *File, progress func(done, total int64)) error {
	count := progressCounter(progress, file.Size())
	b := make([]byte, maxLength(file.Parts))
	return hashParts(ctx, f, file, func() []byte { return b }, func(p *Part, data []byte) error {
		path, err := d.Path(p)
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
			return err
		}
		if count != nil {
			count(p.Length)
		}
		return nil
	})
}

// maxLength returns the length of the longest of ps.
func maxLength(ps []Part) int64 {
	var n int64
	for i := range ps {
		n = max(n, ps[i].Length)
	}
	return n
}

// hashParts reads the file sequentially, part by part, setting each part's
// SHA-256 and the file's, and hands each part's bytes to emit in order. buf
// returns a buffer of at least the part's length for each part; emit owns
// it.
func hashParts(ctx context.Context, f io.ReaderAt, file *File, buf func() []byte, emit func(p *Part, data []byte) error) error {
	whole := sha256.New()
	for i := range file.Parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := &file.Parts[i]
		data := buf()[:p.Length]
		if n, err := f.ReadAt(data, p.Offset); n < len(data) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("manifest: reading bytes %d-%d of the image: %w", p.Offset, p.End()-1, err)
		}
		sum := sha256.Sum256(data)
		p.SHA256 = hex.EncodeToString(sum[:])
		whole.Write(data)
		if err := emit(p, data); err != nil {
			return err
		}
	}
	file.SHA256 = hex.EncodeToString(whole.Sum(nil))
	return nil
}
