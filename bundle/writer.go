package bundle

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/diskport/diskport/disk"
)

// A Sink stores the objects of a bundle: each part as it fills, then the
// manifest. Put may be called from several goroutines at once.
type Sink interface {
	Put(ctx context.Context, name string, data []byte) error
}

// A Remover is a Sink that can delete what it stored (to cancel a task).
type Remover interface {
	Remove(ctx context.Context, name string) error
}

// Options configure Write. Prefix and EC2Key are required.
type Options struct {
	// Prefix names the bundle's objects: Prefix.part.NN and
	// Prefix.manifest.xml. It is also the image name and the tar member's
	// name unless Name is set.
	Prefix string
	// Name is the image name in the manifest and the tar member; default
	// the last path element of Prefix.
	Name string
	// User is the account ID (dashes are removed); Type defaults to
	// "machine"; Architecture to "x86_64".
	User, Type, Architecture string
	// BlockDeviceMapping, KernelID, RamdiskID and ProductCodes go into the
	// machine configuration as given.
	BlockDeviceMapping  []Mapping
	KernelID, RamdiskID string
	ProductCodes        []string
	Bundler             Bundler
	EC2Key              *rsa.PublicKey  // the EC2 certificate's key: required
	UserKey             *rsa.PublicKey  // the user's certificate's key: optional
	SignKey             *rsa.PrivateKey // the user's private key signing the manifest; nil writes UNSIGNED
	PartSize            int64           // default DefaultPartSize
	Level               int             // gzip level 1..9; 0 means 6 (gzip's and pigz's default)
	Workers             int             // parallel compressors; 0 means GOMAXPROCS
	Uploads             int             // parts stored concurrently; 0 means 2
	ModTime             time.Time       // of the tar member; zero means now
	Rand                io.Reader       // of the AES key and IV; nil means crypto/rand
	// Progress, if set, is called with the volume bytes done so far (read,
	// bundled and stored) and the volume's size: the one progress shape
	// of convert, manifest and bundle.
	Progress func(done, total int64)
	// stages, if set, is called with the volume bytes read and those
	// stored (the Runner's task states).
	stages func(read, stored int64)
}

// report calls the progress callbacks of opt with read and stored of size
// bytes.
func (opt *Options) report(read, stored, size int64) {
	if opt.Progress != nil {
		opt.Progress(stored, size)
	}
	if opt.stages != nil {
		opt.stages(read, stored)
	}
}

// A StoreError is a Sink's failure to store one object of the bundle.
type StoreError struct {
	Name string
	Err  error
}

// Error returns "bundle: storing NAME: " and the sink's error.
func (e *StoreError) Error() string { return "bundle: storing " + e.Name + ": " + e.Err.Error() }

// Unwrap returns the sink's error.
func (e *StoreError) Unwrap() error { return e.Err }

// DefaultBundler is what diskport writes in the manifest's bundler element.
var DefaultBundler = Bundler{Name: "diskport", Version: "1.0", Release: "0"}

// PartName returns the object name of part n: PREFIX.part.NN (at least two
// digits), as euca2ools names them. The manifest lists parts by their base
// name, relative to the manifest's own location.
func PartName(prefix string, n int) string { return fmt.Sprintf("%s.part.%02d", prefix, n) }

// ManifestName returns PREFIX.manifest.xml.
func ManifestName(prefix string) string { return prefix + ".manifest.xml" }

// Write bundles img in one streaming pass: a tar stream holding the volume
// as one file (SHA-1 digested), gzip (parallel), AES-128-CBC with a fresh
// random key and IV, cut into parts stored in sink as they fill; then the
// signed manifest. Memory stays bounded by a few parts and gzip blocks.
// It returns the manifest as stored.
func Write(ctx context.Context, img disk.Image, sink Sink, opt Options) (*Manifest, error) {
	if err := opt.setDefaults(); err != nil {
		return nil, err
	}
	name := opt.Name
	if name == "" {
		name = path.Base(opt.Prefix)
	}
	m := newManifest(&opt, name, img.Size())
	im := &m.Image
	var secret [32]byte
	if _, err := io.ReadFull(opt.Rand, secret[:]); err != nil {
		return nil, fmt.Errorf("bundle: random key: %w", err)
	}
	key, iv := secret[:16], secret[16:]
	if err := im.encryptKey(&opt, key, iv); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	pw := newPartWriter(ctx, cancel, sink, opt, img.Size())
	digest, err := writeParts(ctx, img, pw, &opt, name, key, iv)
	parts, perr := pw.finish(err == nil)
	if err == nil {
		err = perr
	}
	if err != nil {
		if c := context.Cause(ctx); c != nil && !errors.Is(err, c) {
			err = c
		}
		return nil, err
	}
	im.Digest = Digest{Algorithm: "SHA1", Hex: digest}
	im.Parts = Parts{Count: len(parts), Part: parts}
	for _, p := range pw.sizes {
		im.BundledSize += p
	}
	if err := m.Sign(opt.SignKey); err != nil {
		return nil, err
	}
	if err := sink.Put(ctx, ManifestName(opt.Prefix), m.Marshal()); err != nil {
		return nil, &StoreError{Name: ManifestName(opt.Prefix), Err: err}
	}
	opt.report(im.Size, im.Size, im.Size)
	return m, nil
}

// setDefaults checks the options Write needs and fills in the defaults
// of the rest.
func (opt *Options) setDefaults() error {
	if opt.EC2Key == nil {
		return errors.New("bundle: no EC2 certificate to encrypt the key for")
	}
	if opt.Prefix == "" {
		return errors.New("bundle: empty prefix")
	}
	if opt.PartSize <= 0 {
		opt.PartSize = DefaultPartSize
	}
	if opt.Level == 0 {
		opt.Level = 6
	}
	if opt.Uploads <= 0 {
		opt.Uploads = 2
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	if opt.ModTime.IsZero() {
		opt.ModTime = time.Now()
	}
	return nil
}

// newManifest returns the manifest of a bundle of a volume of size bytes
// named name, without its key, parts or digest.
func newManifest(opt *Options, name string, size int64) *Manifest {
	m := &Manifest{Version: ManifestVersion, Bundler: opt.Bundler}
	if m.Bundler == (Bundler{}) {
		m.Bundler = DefaultBundler
	}
	m.MachineConfiguration = MachineConfiguration{
		Architecture: or(opt.Architecture, "x86_64"), BlockDeviceMapping: opt.BlockDeviceMapping,
		KernelID: opt.KernelID, RamdiskID: opt.RamdiskID, ProductCodes: opt.ProductCodes,
	}
	im := &m.Image
	im.Name, im.User, im.Type = name, strings.ReplaceAll(opt.User, "-", ""), or(opt.Type, "machine")
	im.Size = size
	return m
}

// encryptKey records the AES key and IV encrypted for EC2 and, when the
// options carry one, for the user.
func (im *ImageInfo) encryptKey(opt *Options, key, iv []byte) error {
	var err error
	im.EC2EncryptedKey = EncryptedKey{Algorithm: "AES-128-CBC"}
	im.UserEncryptedKey = EncryptedKey{Algorithm: "AES-128-CBC"}
	if im.EC2EncryptedKey.Hex, err = encryptHex(opt.EC2Key, key); err != nil {
		return err
	}
	if im.EC2EncryptedIV, err = encryptHex(opt.EC2Key, iv); err != nil {
		return err
	}
	if opt.UserKey != nil {
		if im.UserEncryptedKey.Hex, err = encryptHex(opt.UserKey, key); err != nil {
			return err
		}
		if im.UserEncryptedIV, err = encryptHex(opt.UserKey, iv); err != nil {
			return err
		}
	}
	return nil
}

// writeParts streams the volume through tar, gzip and AES-128-CBC into
// pw's parts and returns the tar stream's SHA-1 (the bundle's digest).
// The caller finishes pw either way.
func writeParts(ctx context.Context, img disk.Image, pw *partWriter, opt *Options, name string, key, iv []byte) (string, error) {
	enc, err := newCBCWriter(pw, key, iv)
	if err != nil {
		return "", err
	}
	gz, err := newPgzipWriter(enc, opt.Level, opt.Workers)
	if err != nil {
		return "", err
	}
	tarSum := sha1.New()
	tw := tar.NewWriter(io.MultiWriter(tarSum, gz))
	err = writeVolume(ctx, tw, img, name, opt.ModTime, &pw.read)
	if err == nil {
		err = gz.Close()
	} else {
		gz.abort()
	}
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(tarSum.Sum(nil)), nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// zeros is read for Zero extents instead of the image.
var zeros = make([]byte, 1<<20)

// volumeHeader is the tar header of the volume: a regular file owned by
// root (tar --owner 0 --group 0), mode 0644, in GNU format as GNU tar writes
// by default, so a volume of 8 GiB or more gets a base-256 size field that
// every tar reads.
func volumeHeader(name string, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644,
		Uname: "root", Gname: "root", ModTime: mtime.Truncate(time.Second),
		Format: tar.FormatGNU,
	}
}

// writeVolume writes the tar stream: one regular file holding the volume,
// reading only Data extents and writing zeros for the rest.
func writeVolume(ctx context.Context, tw *tar.Writer, img disk.Image, name string, mtime time.Time, read *atomic.Int64) error {
	if err := tw.WriteHeader(volumeHeader(name, img.Size(), mtime)); err != nil {
		return fmt.Errorf("bundle: tar header: %w", err)
	}
	buf := make([]byte, 1<<20)
	for e, err := range img.Extents(0, img.Size()) {
		if err != nil {
			return err
		}
		for off := e.Offset; off < e.End(); {
			if err := context.Cause(ctx); err != nil {
				return err
			}
			n := min(int64(len(buf)), e.End()-off)
			p := zeros[:n]
			if e.Kind != disk.Zero {
				p = buf[:n]
				if k, err := img.ReadAt(p, off); k < len(p) {
					if err == nil || err == io.EOF {
						err = io.ErrUnexpectedEOF
					}
					return fmt.Errorf("bundle: reading the volume at byte %d: %w", off+int64(k), err)
				}
			}
			if _, err := tw.Write(p); err != nil {
				return err
			}
			off += n
			read.Add(n)
		}
	}
	return tw.Close()
}

// partWriter cuts the encrypted stream into parts and stores each in the
// sink from a few goroutines, computing its SHA-1 there.
type partWriter struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	sink   Sink
	opt    Options
	buf    []byte
	n      int
	count  int // parts cut
	jobs   chan partJob
	wg     sync.WaitGroup
	size   int64        // of the volume, for progress
	read   atomic.Int64 // volume bytes read, for progress
	stored atomic.Int64

	mu     sync.Mutex
	digest []string
	sizes  []int64
	err    error
	free   chan []byte // part buffers stored and ready for reuse
	made   int         // part buffers allocated: at most cap(free)
}

type partJob struct {
	index int
	data  []byte
	upTo  int64 // volume bytes read when the part was cut
}

func newPartWriter(ctx context.Context, cancel context.CancelCauseFunc, sink Sink, opt Options, size int64) *partWriter {
	p := &partWriter{ctx: ctx, cancel: cancel, sink: sink, opt: opt, size: size, jobs: make(chan partJob)}
	// Buffers: the one filling, one per storing goroutine, one handed over.
	p.free = make(chan []byte, opt.Uploads+2)
	p.made = 1
	p.buf = make([]byte, opt.PartSize)
	for range opt.Uploads {
		p.wg.Add(1)
		go p.store()
	}
	return p
}

func (p *partWriter) store() {
	defer p.wg.Done()
	for j := range p.jobs {
		if context.Cause(p.ctx) != nil {
			p.free <- j.data[:cap(j.data)]
			continue
		}
		sum := sha1.Sum(j.data)
		name := PartName(p.opt.Prefix, j.index)
		err := p.sink.Put(p.ctx, name, j.data)
		p.mu.Lock()
		if err != nil && p.err == nil {
			p.err = &StoreError{Name: name, Err: err}
			p.cancel(p.err)
		}
		for len(p.digest) <= j.index {
			p.digest = append(p.digest, "")
			p.sizes = append(p.sizes, 0)
		}
		p.digest[j.index] = hex.EncodeToString(sum[:])
		p.sizes[j.index] = int64(len(j.data))
		p.mu.Unlock()
		p.free <- j.data[:cap(j.data)]
		if err == nil && (p.opt.Progress != nil || p.opt.stages != nil) {
			p.stored.Store(max(p.stored.Load(), j.upTo))
			p.opt.report(p.read.Load(), p.stored.Load(), p.size)
		}
	}
}

func (p *partWriter) Write(b []byte) (int, error) {
	total := len(b)
	for len(b) > 0 {
		k := copy(p.buf[p.n:], b)
		p.n += k
		b = b[k:]
		if p.n == len(p.buf) {
			if err := p.cut(false); err != nil {
				return total - len(b), err
			}
		}
	}
	return total, nil
}

// cut hands the full buffer to the storing goroutines and, unless it was
// the last part, takes a free buffer for the next one (reusing buffers
// keeps a fresh 10 MiB from being faulted in for every part).
func (p *partWriter) cut(last bool) error {
	j := partJob{index: p.count, data: p.buf[:p.n], upTo: p.read.Load()}
	select {
	case p.jobs <- j:
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
	p.count++
	p.buf, p.n = nil, 0
	if last {
		return nil
	}
	select {
	case p.buf = <-p.free:
		return nil
	default:
	}
	if p.made < cap(p.free) {
		p.made++
		p.buf = make([]byte, p.opt.PartSize)
		return nil
	}
	select {
	case p.buf = <-p.free:
		return nil
	case <-p.ctx.Done():
		return context.Cause(p.ctx)
	}
}

// finish cuts the last part (when ok), waits for every part to be stored
// and returns the manifest's parts list.
func (p *partWriter) finish(ok bool) ([]Part, error) {
	var err error
	if ok && p.n > 0 {
		err = p.cut(true)
	}
	close(p.jobs)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	if err != nil || !ok {
		return nil, err
	}
	if err := context.Cause(p.ctx); err != nil {
		return nil, err
	}
	parts := make([]Part, p.count)
	for i := range parts {
		parts[i] = Part{Index: i, Filename: PartName(path.Base(p.opt.Prefix), i), Digest: Digest{Algorithm: "SHA1", Hex: p.digest[i]}}
	}
	return parts, nil
}
