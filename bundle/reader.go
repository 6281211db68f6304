package bundle

import (
	"archive/tar"
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/volume"
)

// A Source reads the objects of a stored bundle.
type Source interface {
	// Get returns the whole object name. An object over limit bytes is an
	// error matching disk.ErrTooLarge.
	Get(ctx context.Context, name string, limit int64) ([]byte, error)
}

// DefaultMaxPartSize is the largest part a reader buffers: parts are
// verified against their digest before a byte of them is used.
const DefaultMaxPartSize = 64 << 20

// maxTrailer bounds what may follow the volume in the tar stream (end
// blocks and record padding: GNU tar pads to 10 KiB records).
const maxTrailer = 1 << 20

// ReadOptions configure Open.
type ReadOptions struct {
	// Key decrypts the bundle's AES key (the user's or EC2's private key).
	Key *rsa.PrivateKey
	// Signer verifies the manifest signature; nil means Key's public key.
	Signer *rsa.PublicKey
	// AllowUnsigned accepts a manifest whose signature is UNSIGNED.
	AllowUnsigned bool
	// MaxPartSize bounds each part; 0 means DefaultMaxPartSize.
	MaxPartSize int64
	// MaxSize bounds the volume size the manifest may declare; 0 means no
	// bound.
	MaxSize int64
}

// A Reader is an opened bundle whose manifest has been read, its signature
// verified and its key decrypted.
type Reader struct {
	Manifest *Manifest
	// Signed reports that the manifest's signature was verified; false
	// for an UNSIGNED manifest accepted with ReadOptions.AllowUnsigned.
	Signed bool
	// Progress, if set, is called as ExtractVolume restores the volume,
	// with the bytes restored so far and the volume's size.
	Progress func(done, total int64)
	src      Source
	key, iv  []byte
	opt      ReadOptions
	dir      string // the manifest name up to its last "/": where the parts are
}

// Open reads the manifest name from src, validates it, verifies its
// signature and decrypts the AES key with opt.Key.
func Open(ctx context.Context, src Source, name string, opt ReadOptions) (*Reader, error) {
	if opt.Key == nil {
		return nil, errors.New("bundle: no private key to decrypt the bundle with")
	}
	if opt.MaxPartSize <= 0 {
		opt.MaxPartSize = DefaultMaxPartSize
	}
	data, err := src.Get(ctx, name, MaxManifestSize)
	if err != nil {
		return nil, err
	}
	m, err := ReadManifest(data)
	if err != nil {
		return nil, err
	}
	if opt.MaxSize > 0 && m.Image.Size > opt.MaxSize {
		return nil, disk.Errorf("bundle", disk.ErrTooLarge, "manifest image size %d over the limit %d", m.Image.Size, opt.MaxSize)
	}
	signed := !(opt.AllowUnsigned && strings.TrimSpace(m.Signature) == Unsigned)
	if signed {
		signer := opt.Signer
		if signer == nil {
			signer = &opt.Key.PublicKey
		}
		if err := m.Verify(signer); err != nil {
			return nil, err
		}
	}
	key, iv, err := m.DecryptKey(opt.Key)
	if err != nil {
		return nil, err
	}
	return &Reader{Manifest: m, Signed: signed, src: src, key: key, iv: iv, opt: opt, dir: name[:strings.LastIndex(name, "/")+1]}, nil
}

// Key returns the decrypted AES-128 key and IV.
func (r *Reader) Key() (key, iv []byte) { return r.key, r.iv }

// A Truncater can set its size: Extract skips writing zero blocks to a
// destination that has Truncate, leaving holes.
type Truncater interface {
	Truncate(size int64) error
}

// Extract restores the volume into dst: every part is fetched and checked
// against its digest before use, decrypted, gunzipped, the tar stream
// checked against the image digest, and the one file in it written to dst
// at offset 0. A dst with Truncate (an *os.File) gets holes for zero
// blocks and is truncated to the volume size.
func (r *Reader) Extract(ctx context.Context, dst io.WriterAt) error {
	t, sparse := dst.(Truncater)
	write := func(b []byte, off int64) error {
		if sparse && disk.IsZero(b) {
			return nil
		}
		if _, err := dst.WriteAt(b, off); err != nil {
			return fmt.Errorf("bundle: writing the volume at byte %d: %w", off, err)
		}
		return nil
	}
	if err := r.extract(ctx, write); err != nil {
		return err
	}
	if sparse {
		if err := t.Truncate(r.Manifest.Image.Size); err != nil {
			return fmt.Errorf("bundle: setting the volume size: %w", err)
		}
	}
	return nil
}

// ExtractVolume restores the volume into w, a volume of the manifest's
// image size, checked as Extract checks it: zero blocks are left as holes
// where w reads as zeros. The caller commits w (atomic and durable: the
// volume appears under its final name only when complete and verified) or
// aborts it on error.
func (r *Reader) ExtractVolume(ctx context.Context, w *volume.Writer) error {
	if w.Size() != r.Manifest.Image.Size {
		return fmt.Errorf("bundle: the volume is %d bytes, the bundle's image %d", w.Size(), r.Manifest.Image.Size)
	}
	var off int64
	err := r.extract(ctx, func(b []byte, at int64) error {
		if err := w.Fill(b, at); err != nil {
			return err
		}
		if r.Progress != nil {
			r.Progress(at+int64(len(b)), w.Size())
		}
		if at+int64(len(b))-off >= writebackChunk {
			w.Writeback(off, at+int64(len(b))-off)
			off = at + int64(len(b))
		}
		return nil
	})
	if err == nil && r.Progress != nil {
		r.Progress(w.Size(), w.Size())
	}
	return err
}

// writebackChunk is how much of the restored volume is written before its
// writeout is started.
const writebackChunk = 8 << 20

// extract checks and decrypts the bundle, passing the volume's bytes to
// write in order.
func (r *Reader) extract(ctx context.Context, write func(b []byte, off int64) error) error {
	m := r.Manifest
	pr := newPartReader(ctx, r)
	defer pr.close()
	dec, err := newCBCReader(pr, r.key, r.iv)
	if err != nil {
		return err
	}
	zr, err := gzip.NewReader(dec)
	if err != nil {
		return gzipErr(err)
	}
	// Decryption and gunzip run in their own goroutine, a chunk ahead of
	// the digest, the tar reader and the writes.
	ar := newAsyncReader(zr)
	defer func() { pr.stop(); ar.close() }() // stop fetching first: ar's goroutine may wait on a part
	sum := sha1.New()
	tee := io.TeeReader(ar, sum)
	tr := tar.NewReader(tee)
	hdr, err := tr.Next()
	if err != nil {
		return tarErr(err)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, '\x00':
	default:
		return corrupt("tar member %q is of type %q, not a regular file", truncate(hdr.Name, 80), hdr.Typeflag)
	}
	if hdr.Size != m.Image.Size {
		return corrupt("tar member %q is %d bytes, manifest says %d", truncate(hdr.Name, 80), hdr.Size, m.Image.Size)
	}
	if err := copyVolume(ctx, write, tr, hdr.Size); err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, io.LimitReader(tee, maxTrailer+1))
	if err != nil {
		return tarErr(err)
	}
	if n > maxTrailer {
		return corrupt("more than %d bytes follow the volume in the tar stream", maxTrailer)
	}
	if err := zr.Close(); err != nil {
		return gzipErr(err)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); !strings.EqualFold(got, strings.TrimSpace(m.Image.Digest.Hex)) {
		return corrupt("tar stream SHA-1 %s, manifest image digest %s", got, strings.TrimSpace(m.Image.Digest.Hex))
	}
	if pr.next != len(m.Image.Parts.Part) {
		return corrupt("the bundle ended in part %d of %d", pr.next, len(m.Image.Parts.Part))
	}
	if m.Image.BundledSize != pr.total {
		return corrupt("parts hold %d bytes, manifest bundled_size says %d", pr.total, m.Image.BundledSize)
	}
	return nil
}

func gzipErr(err error) error {
	if errors.Is(err, gzip.ErrHeader) || errors.Is(err, gzip.ErrChecksum) || errors.Is(err, io.ErrUnexpectedEOF) || strings.HasPrefix(err.Error(), "flate:") {
		return corrupt("gzip stream: %v", err)
	}
	return err
}

func tarErr(err error) error {
	var de *disk.Error
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF || strings.HasPrefix(err.Error(), "archive/tar:") {
		return corrupt("tar stream: %v", err)
	}
	return gzipErr(err)
}

// copyVolume passes size bytes from r to write, in order from offset 0.
func copyVolume(ctx context.Context, write func(b []byte, off int64) error, r io.Reader, size int64) error {
	buf := make([]byte, 1<<20)
	var off int64
	for off < size {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(len(buf)), size-off))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return tarErr(err)
		}
		if err := write(buf[:n], off); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// partReader concatenates the parts. A goroutine fetches them one ahead of
// the reader, and checks each part's SHA-1 before any of its bytes are
// returned.
type partReader struct {
	ctx     context.Context
	r       *Reader
	results chan partResult
	stop    context.CancelFunc
	cur     []byte
	next    int // parts consumed
	total   int64
}

type partResult struct {
	data []byte
	err  error
}

func (p *partReader) fetch(ctx context.Context) {
	defer close(p.results)
	for _, part := range p.r.Manifest.Image.Parts.Part {
		data, err := p.r.src.Get(ctx, p.r.dir+part.Filename, p.r.opt.MaxPartSize)
		if err == nil {
			sum := sha1.Sum(data)
			if got := hex.EncodeToString(sum[:]); !strings.EqualFold(got, strings.TrimSpace(part.Digest.Hex)) {
				err = corrupt("part %d %s: SHA-1 %s, manifest says %s", part.Index, part.Filename, got, strings.TrimSpace(part.Digest.Hex))
			}
		}
		select {
		case p.results <- partResult{data, err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// newPartReader starts fetching r's parts.
func newPartReader(ctx context.Context, r *Reader) *partReader {
	fctx, stop := context.WithCancel(ctx)
	p := &partReader{ctx: ctx, r: r, results: make(chan partResult, 1), stop: stop}
	go p.fetch(fctx)
	return p
}

func (p *partReader) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		res, ok := <-p.results
		if !ok {
			if err := p.ctx.Err(); err != nil {
				return 0, err
			}
			return 0, io.EOF
		}
		if res.err != nil {
			return 0, res.err
		}
		p.cur = res.data
		p.total += int64(len(res.data))
		p.next++
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// close stops the fetching goroutine and waits for it.
func (p *partReader) close() {
	p.stop()
	for range p.results {
	}
}

// asyncChunk is the size of the chunks an asyncReader reads ahead.
const asyncChunk = 1 << 20

// asyncReader reads r in a goroutine, up to two chunks ahead of Read,
// rotating four buffers.
type asyncReader struct {
	chunks chan asyncResult
	free   chan []byte
	stop   chan struct{}
	buf    []byte // the buffer cur is in, returned to free when used up
	cur    []byte
	err    error
}

type asyncResult struct {
	b   []byte
	err error
}

func newAsyncReader(r io.Reader) *asyncReader {
	a := &asyncReader{chunks: make(chan asyncResult, 2), free: make(chan []byte, 4), stop: make(chan struct{})}
	for range 4 {
		a.free <- make([]byte, asyncChunk)
	}
	go func() {
		defer close(a.chunks)
		for {
			var b []byte
			select {
			case b = <-a.free:
			case <-a.stop:
				return
			}
			n, err := io.ReadFull(r, b)
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			select {
			case a.chunks <- asyncResult{b[:n], err}:
			case <-a.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return a
}

func (a *asyncReader) Read(p []byte) (int, error) {
	for len(a.cur) == 0 {
		if a.err != nil {
			return 0, a.err
		}
		if a.buf != nil {
			a.free <- a.buf[:cap(a.buf)]
			a.buf = nil
		}
		res, ok := <-a.chunks
		if !ok {
			return 0, io.ErrClosedPipe
		}
		a.buf, a.cur, a.err = res.b, res.b, res.err
	}
	n := copy(p, a.cur)
	a.cur = a.cur[n:]
	return n, nil
}

// close stops the goroutine and waits for it.
func (a *asyncReader) close() {
	close(a.stop)
	for range a.chunks {
	}
}
