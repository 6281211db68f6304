package parts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/diskport/diskport/disk"
)

// VerifyOptions tune [Verify].
type VerifyOptions struct {
	// Parallel is how many parts are fetched at once; 0 means 4.
	Parallel int
	// Progress, when set, is called as parts are checked with the bytes
	// checked so far and the file's size.
	Progress func(done, total int64)
}

// A Report is what [Verify] found.
type Report struct {
	// Parts and Bytes count what was checked.
	Parts int
	Bytes int64
	// Checksums reports whether every part and the whole file had a
	// SHA-256; without them only lengths are checked.
	Checksums bool
	// SHA256 is the whole file's SHA-256 as read, "" if a part failed.
	SHA256 string
	// Failures are the parts that failed, in index order.
	Failures []*PartError
}

// A VerifyError lists every part that failed verification, and a whole-file
// checksum mismatch.
type VerifyError struct {
	Failures []*PartError
	// FileSHA256, when set, is the whole file's checksum as read, which
	// differs from the one the File gives.
	FileSHA256 string
	Want       string
}

// Error lists every failed part, one per line after the first.
func (e *VerifyError) Error() string {
	var b strings.Builder
	switch {
	case len(e.Failures) == 1:
		b.WriteString(e.Failures[0].Error())
	case len(e.Failures) > 1:
		fmt.Fprintf(&b, "manifest: %d parts failed verification:", len(e.Failures))
		for _, f := range e.Failures {
			b.WriteString("\n\t" + strings.TrimPrefix(f.Error(), "manifest: "))
		}
	default:
		fmt.Fprintf(&b, "manifest: file checksum mismatch: sha256 %s, manifest says %s", e.FileSHA256, e.Want)
	}
	return b.String()
}

// Unwrap returns the part errors, so errors.Is(err, disk.ErrCorrupt) holds
// when a part is corrupt.
func (e *VerifyError) Unwrap() []error {
	if len(e.Failures) == 0 {
		return []error{disk.ErrCorrupt}
	}
	errs := make([]error, len(e.Failures))
	for i, f := range e.Failures {
		errs[i] = f
	}
	return errs
}

// Verify fetches every part of f from store and checks its length and,
// when f has them, the SHA-256 of each part and of the whole file. It
// carries on past failing parts and returns a *VerifyError naming every
// one. Errors that stop the check (a cancelled context) are returned as
// they are.
func Verify(ctx context.Context, f File, store Store, opts VerifyOptions) (*Report, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	par := opts.Parallel
	if par <= 0 {
		par = 4
	}
	big := false
	for i := range f.Parts {
		big = big || f.Parts[i].Length > chunkLimit
	}
	rep := &Report{Checksums: f.HasChecksums()}
	whole := sha256.New()
	var err error
	if big {
		err = verifyStreaming(ctx, f.Parts, store, rep, whole, progressCounter(opts.Progress, f.Size()))
	} else {
		err = verifyBuffered(ctx, f.Parts, store, par, rep, whole, progressCounter(opts.Progress, f.Size()))
	}
	if err != nil {
		return rep, err
	}
	if len(rep.Failures) > 0 {
		return rep, &VerifyError{Failures: rep.Failures}
	}
	rep.SHA256 = hex.EncodeToString(whole.Sum(nil))
	if f.SHA256 != "" && rep.SHA256 != f.SHA256 {
		return rep, &VerifyError{FileSHA256: rep.SHA256, Want: f.SHA256}
	}
	return rep, nil
}

type verifyResult struct {
	data []byte
	err  error
}

// verifyBuffered fetches up to par parts at once into memory and hashes
// them into whole in order.
func verifyBuffered(ctx context.Context, ps []Part, store Store, par int, rep *Report, whole hash.Hash, progress func(int64)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]chan verifyResult, len(ps))
	for i := range results {
		results[i] = make(chan verifyResult, 1)
	}
	sem := make(chan struct{}, par)
	go func() {
		for i := range ps {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func(p *Part, out chan<- verifyResult) {
				data, err := fetchPart(ctx, store, p, make([]byte, p.Length))
				out <- verifyResult{data, err}
			}(&ps[i], results[i])
		}
	}()
	for i := range ps {
		var r verifyResult
		select {
		case r = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-sem
		if err := record(ctx, rep, r.err); err != nil {
			return err
		}
		if r.err == nil && len(rep.Failures) == 0 {
			whole.Write(r.data)
		}
		rep.Parts++
		rep.Bytes += ps[i].Length
		if progress != nil {
			progress(ps[i].Length)
		}
	}
	return nil
}

// record adds a part failure to the report; it returns err itself when it
// is not a part's fault (cancellation).
func record(ctx context.Context, rep *Report, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var pe *PartError
	if errors.As(err, &pe) {
		rep.Failures = append(rep.Failures, pe)
		return nil
	}
	return err
}

// verifyStreaming checks parts one at a time without holding them in
// memory: for files with parts too large to buffer.
func verifyStreaming(ctx context.Context, ps []Part, store Store, rep *Report, whole hash.Hash, progress func(int64)) error {
	for i := range ps {
		p := &ps[i]
		err := streamPart(ctx, store, p, whole, len(rep.Failures) == 0)
		if err := record(ctx, rep, err); err != nil {
			return err
		}
		rep.Parts++
		rep.Bytes += p.Length
		if progress != nil {
			progress(p.Length)
		}
	}
	return nil
}

func streamPart(ctx context.Context, store Store, p *Part, whole hash.Hash, feedWhole bool) error {
	wrap := func(err error) error { return &PartError{Part: *p, Where: store.Where(p), Err: err} }
	rc, err := store.OpenPart(ctx, p, 0, p.Length)
	if err != nil {
		return wrap(err)
	}
	defer rc.Close()
	h := sha256.New()
	var w io.Writer = h
	if feedWhole {
		w = io.MultiWriter(h, whole)
	}
	n, err := io.Copy(w, io.LimitReader(rc, p.Length+1))
	if err != nil {
		return wrap(err)
	}
	if n != p.Length {
		if n < p.Length {
			return wrap(errorf(disk.ErrCorrupt, "truncated: %d of %d bytes", n, p.Length))
		}
		return wrap(errorf(disk.ErrCorrupt, "longer than its byte range (%d bytes)", p.Length))
	}
	if got := hex.EncodeToString(h.Sum(nil)); p.SHA256 != "" && got != p.SHA256 {
		return wrap(errorf(disk.ErrCorrupt, "checksum mismatch: sha256 %s, manifest says %s", got, p.SHA256))
	}
	return nil
}
