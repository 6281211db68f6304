package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/s3"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
	"github.com/diskport/diskport/server/store"
)

// A clientError is a modern import's failure that the client's input
// caused (a bucket or key it cannot read, bytes that are no disk image it
// declared): its task ends "ClientError: …"; any other failure is the
// server's ("ServerError: …").
type clientError struct{ err error }

func (e *clientError) Error() string { return e.err.Error() }
func (e *clientError) Unwrap() error { return e.err }

func clientErrorf(format string, args ...any) error {
	return &clientError{fmt.Errorf(format, args...)}
}

// isClientError says whether err is the client's doing: a clientError, or
// an image that is corrupt, unsupported, unsafe, too large or not the
// format declared.
func isClientError(err error) bool {
	var ce *clientError
	return errors.As(err, &ce) || errors.Is(err, disk.ErrCorrupt) || errors.Is(err, disk.ErrUnsupported) ||
		errors.Is(err, disk.ErrUnsafe) || errors.Is(err, disk.ErrTooLarge) || errors.Is(err, disk.ErrFormatMismatch)
}

// splitS3URL splits s3://bucket/key.
func splitS3URL(u string) (bucket, key string, ok bool) {
	rest, found := strings.CutPrefix(u, "s3://")
	if !found {
		return "", "", false
	}
	bucket, key, ok = strings.Cut(rest, "/")
	return bucket, key, ok && bucket != "" && key != ""
}

// s3Client is a client of the server's S3 endpoint with its own
// credentials (the vmimport role's part): Config.S3AccessKey and
// S3SecretKey, or the environment's.
func (p *pool) s3Client() (*s3.Client, error) {
	if p.cfg.S3Endpoint == "" {
		return nil, errors.New("the server has no S3 endpoint (--s3-endpoint)")
	}
	cfg := s3.ConfigFromEnv(p.cfg.S3Endpoint)
	if p.cfg.S3AccessKey != "" {
		cfg.AccessKey, cfg.SecretKey, cfg.SessionToken = p.cfg.S3AccessKey, p.cfg.S3SecretKey, ""
	}
	if p.cfg.S3Region != "" {
		cfg.Region = p.cfg.S3Region
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("the server has no S3 credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in its environment)")
	}
	return s3.New(cfg)
}

// objectStore reads the one part of a single-object image by key from a
// bucket.
type objectStore struct {
	c      *s3.Client
	bucket string
}

func (o *objectStore) Where(p *parts.Part) string { return "s3://" + o.bucket + "/" + p.Key }

func (o *objectStore) OpenPart(ctx context.Context, p *parts.Part, off, n int64) (io.ReadCloser, error) {
	r, _, err := o.c.Get(ctx, o.bucket, p.Key, off, n)
	return r, err
}

// openSource opens a modern import disk's image, the object at its Url
// (https://, fetched only from allowed hosts) or s3://bucket/key, as a
// single-part manifest read through the one import path
// (manifest.OpenImage), and returns it with its format and size in bytes.
// A disk without a Format takes the one its bytes tell; a Format the
// bytes contradict is a ClientError naming both.
func (p *pool) openSource(ctx context.Context, v *store.Volume) (*manifest.Image, string, int64, error) {
	name := redact(v.ManifestURL)
	part := parts.Part{}
	var ps parts.Store
	if bucket, key, ok := splitS3URL(v.ManifestURL); ok {
		c, err := p.s3Client()
		if err != nil {
			return nil, "", 0, err
		}
		oi, err := c.Stat(ctx, bucket, key)
		if err != nil {
			return nil, "", 0, s3Failure(name, err)
		}
		part.Key, part.Length, ps = key, oi.Size, &objectStore{c: c, bucket: bucket}
	} else {
		if err := p.fetch.checkURL(v.ManifestURL); err != nil {
			return nil, "", 0, clientErrorf("Url %s: %v", name, err)
		}
		size, err := p.headSize(ctx, v.ManifestURL)
		if err != nil {
			return nil, "", 0, err
		}
		part.Key, part.GetURL, part.Length, ps = name, v.ManifestURL, size, &parts.HTTPStore{Client: p.fetch.client}
	}
	if part.Length == 0 {
		return nil, "", 0, clientErrorf("%s is empty", name)
	}
	m := &manifest.Manifest{Version: manifest.Version, FileFormat: v.Format, Size: part.Length, Parts: []parts.Part{part}}
	if m.FileFormat == "" {
		f, err := diskport.Detect(&probe{ctx: ctx, ps: ps, part: &m.Parts[0], name: name})
		if err != nil {
			return nil, "", 0, err
		}
		if m.FileFormat = f.EC2Name(); m.FileFormat == "" {
			return nil, "", 0, clientErrorf("%s: the bytes are a %s image, which is not imported (RAW, VMDK, VHD, VHDX or OVA)", name, strings.ToUpper(string(f)))
		}
	}
	opts := manifest.ImageOptions{Storage: parts.StorageOptions{Name: name}}
	opts.Image.MaxVirtualSize = maxVolumeGiB * GiB
	img, err := manifest.OpenImage(ctx, manifest.Source{Parts: m, Store: ps}, opts)
	var me *diskport.MismatchError
	if errors.As(err, &me) {
		return nil, "", 0, clientErrorf("Format is %s but the bytes of %s are %s", upperFormat(me.Declared), name, upperFormat(me.Found))
	}
	if err != nil {
		return nil, "", 0, err
	}
	return img, m.FileFormat, part.Length, nil
}

// upperFormat names a format as EC2 does, or in capitals.
func upperFormat(f diskport.Format) string {
	if n := f.EC2Name(); n != "" {
		return n
	}
	return strings.ToUpper(string(f))
}

// s3Failure is the failure to read an object of a UserBucket: the
// client's when S3 refused (no such bucket or key, access denied).
func s3Failure(name string, err error) error {
	var se *s3.Error
	if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 {
		return clientErrorf("Disk validation failed [We do not have access to the given resource %s. Reason %v]", name, se)
	}
	return fmt.Errorf("reading %s: %w", name, err)
}

// headSize asks an https Url's server for the object's size.
func (p *pool) headSize(ctx context.Context, u string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return 0, clientErrorf("Url %s: %v", redact(u), err)
	}
	resp, err := p.fetch.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("HEAD %s: %s", redact(u), redact(err.Error()))
	}
	resp.Body.Close()
	if resp.StatusCode/100 == 4 {
		return 0, clientErrorf("Disk validation failed [We do not have access to the given resource %s. Reason %s]", redact(u), resp.Status)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 {
		return 0, fmt.Errorf("HEAD %s: %s, length %d", redact(u), resp.Status, resp.ContentLength)
	}
	return resp.ContentLength, nil
}

// probe is the storage a disk's format is detected from: its first and
// last MiB, each fetched once, and any other range as it is asked for.
type probe struct {
	ctx  context.Context
	ps   parts.Store
	part *parts.Part
	name string

	head, tail []byte
}

const probeSpan = 1 << 20

func (r *probe) Size() int64  { return r.part.Length }
func (r *probe) Name() string { return r.name }

func (r *probe) ReadAt(b []byte, off int64) (int, error) {
	size := r.part.Length
	if off >= size {
		return 0, io.EOF
	}
	end := min(off+int64(len(b)), size)
	if end <= probeSpan {
		if r.head == nil {
			var err error
			if r.head, err = r.fetch(0, min(probeSpan, size)); err != nil {
				return 0, err
			}
		}
		return r.done(copy(b, r.head[off:end]), end-off, len(b))
	}
	if tailStart := max(size-probeSpan, 0); off >= tailStart {
		if r.tail == nil {
			var err error
			if r.tail, err = r.fetch(tailStart, size-tailStart); err != nil {
				return 0, err
			}
		}
		return r.done(copy(b, r.tail[off-tailStart:end-tailStart]), end-off, len(b))
	}
	got, err := r.fetch(off, end-off)
	if err != nil {
		return 0, err
	}
	return r.done(copy(b, got), end-off, len(b))
}

// done is ReadAt's answer: io.EOF when fewer than want bytes were there.
func (r *probe) done(n int, got int64, want int) (int, error) {
	if got < int64(want) {
		return n, io.EOF
	}
	return n, nil
}

func (r *probe) fetch(off, n int64) ([]byte, error) {
	rc, err := r.ps.OpenPart(r.ctx, r.part, off, n)
	if err != nil {
		return nil, fmt.Errorf("%s: reading bytes %d-%d: %w", r.name, off, off+n-1, err)
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("%s: reading bytes %d-%d: %w", r.name, off, off+n-1, err)
	}
	return b, nil
}
