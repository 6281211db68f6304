package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"hash"
	"io"

	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/disk"

	"github.com/diskport/diskport/volume"
)

// existsHint gives a destination that exists the CLI's advice, the same in
// every verb that writes a volume (convert, unbundle).
func existsHint(err error) error {
	var ee *volume.ExistsError
	if errors.As(err, &ee) {
		return &hinted{"destination " + ee.Path + " exists (give --force to overwrite it)", err}
	}
	return err
}

// streamVolume writes the raw volume of src to w front to back, as
// `convert SRC -` does: the virtual disk's bytes (holes and zero runs as
// zeros), then zeros up to the volume's size. It checks the source's own
// checksums (a manifest's, an OVA's .mf) at the end; the bytes are gone
// by then, so a mismatch is the run's failure.
func streamVolume(ctx context.Context, src disk.Image, w io.Writer, opts convert.Options) (*convert.Result, error) {
	virtual := src.Size()
	size, err := convert.VolumeSize(virtual, opts)
	if err != nil {
		return nil, err
	}
	res := &convert.Result{VirtualSize: virtual, VolumeSize: size}
	var whole, part hash.Hash
	out := w
	if opts.Checksum {
		whole, part = sha256.New(), sha256.New()
		out = io.MultiWriter(w, whole, part)
	}
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		n := min(int64(len(buf)), size-off)
		if off < virtual {
			n = min(n, virtual-off)
			if _, err := src.ReadAt(buf[:n], off); err != nil && !(errors.Is(err, io.EOF) && off+n == virtual) {
				return nil, err
			}
		} else {
			clear(buf[:n])
		}
		if _, err := out.Write(buf[:n]); err != nil {
			return nil, err
		}
		off += n
		res.WrittenBytes += n
		if off == virtual && part != nil {
			// Chunks end at the virtual size: past it, only the volume's
			// hash goes on.
			res.VirtualSHA256 = part.Sum(nil)
			out = io.MultiWriter(w, whole)
		}
		if opts.Progress != nil {
			opts.Progress(min(off, virtual), virtual)
		}
	}
	if v, ok := src.(disk.Verifier); ok {
		if err := v.Verify(); err != nil {
			return nil, err
		}
	}
	if whole != nil {
		res.SHA256 = whole.Sum(nil)
	}
	return res, nil
}
