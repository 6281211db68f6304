package parts

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/diskport/diskport/internal/s3"
)

// UploadOptions say how [S3Store.Upload] stores and signs parts.
type UploadOptions struct {
	// RequireBucket refuses a bucket that does not exist (ErrNoBucket)
	// instead of creating it: a mistyped name is not a new bucket.
	RequireBucket bool
	// Parallel is how many parts are uploaded at once; 0 means 4. It is
	// lowered for large parts so their buffers stay within 1 GiB.
	Parallel int
	// Expires is how long the presigned URLs stay valid; 0 means 7 days
	// (the SigV4 maximum) or 30 days with SigV2.
	Expires time.Duration
	// Now is the signing time for SigV2 URLs; zero means time.Now().
	Now time.Time
	// Progress, when set, is called as parts are sent or found already
	// stored, with the bytes of the file done so far and the file's size.
	// Calls are serialised.
	Progress func(done, total int64)
}

// ErrNoBucket is the error of an upload with RequireBucket into a bucket
// that does not exist.
var ErrNoBucket = errors.New("bucket does not exist")

// uploadMemory bounds the part buffers of an upload: fewer parts go at once
// when parts are large.
const uploadMemory = 1 << 30

// metaSHA256 is the user metadata under which a part's SHA-256 is stored
// (x-amz-meta-diskport-sha256), so a resumed upload can tell which parts
// are already in place.
const metaSHA256 = "Diskport-Sha256"

// Upload reads the parts of file from f in order, sets each part's SHA-256
// and the file's, and uploads the parts concurrently to the bucket
// (created if missing, unless opts.RequireBucket) with their SHA-256 in
// object metadata and Content-MD5 checked by the server; then it presigns
// each part's HEAD, GET and DELETE URLs (SigV4, or SigV2 when the config
// says). A part already in the bucket with the same size, SHA-256
// metadata and MD5 ETag is not sent again, so uploading again after an
// interruption resumes. It returns how many parts it sent and how many
// were already stored, so far when it fails. The first failure stops the
// rest; an interruption (ctx done) is reported as such, and the parts
// stored so far are kept for a resumed run.
func (s *S3Store) Upload(ctx context.Context, f io.ReaderAt, file *File, opts UploadOptions) (sent, skipped int, err error) {
	if _, err := s.lifetime(opts.Expires); err != nil {
		return 0, 0, err
	}
	if err := s.prepareBucket(ctx, opts.RequireBucket); err != nil {
		return 0, 0, err
	}
	if sent, skipped, err = s.uploadParts(ctx, f, file, opts); err != nil {
		return sent, skipped, err
	}
	for i := range file.Parts {
		if err := s.signPart(ctx, &file.Parts[i], opts.Expires, opts.Now); err != nil {
			return sent, skipped, err
		}
	}
	return sent, skipped, nil
}

// Presign returns a presigned URL for method on the object key of the
// bucket (the manifest beside the parts), valid for expires: 0 means 7
// days (the SigV4 maximum) or 30 days with SigV2. now is the signing time
// for SigV2 URLs; zero means time.Now().
func (s *S3Store) Presign(ctx context.Context, method, key string, expires time.Duration, now time.Time) (string, error) {
	expires, err := s.lifetime(expires)
	if err != nil {
		return "", err
	}
	return s.client.Presign(ctx, method, s.bucket, key, expires, now)
}

// Put stores data as the object key of the bucket (the manifest beside
// the parts).
func (s *S3Store) Put(ctx context.Context, key string, data []byte, contentType string) error {
	return s.client.Put(ctx, s.bucket, key, data, contentType, nil)
}

// lifetime returns how long presigned URLs live: the caller's choice,
// else a week (SigV4's limit) or for SigV2 thirty days.
func (s *S3Store) lifetime(expires time.Duration) (time.Duration, error) {
	sigV2 := s.client.Config().SigV2
	if expires == 0 {
		expires = 7 * 24 * time.Hour
		if sigV2 {
			expires = 30 * 24 * time.Hour
		}
	}
	if !sigV2 && expires > 7*24*time.Hour {
		return 0, fmt.Errorf("manifest: SigV4 presigned URLs live at most 7 days, not %v", expires)
	}
	return expires, nil
}

// prepareBucket creates the bucket if it is missing, or with mustExist
// checks that it is there.
func (s *S3Store) prepareBucket(ctx context.Context, mustExist bool) error {
	if !mustExist {
		if err := s.client.EnsureBucket(ctx, s.bucket); err != nil {
			return fmt.Errorf("manifest: bucket %s: %w", s.bucket, err)
		}
		return nil
	}
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("manifest: bucket %s: %w", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("manifest: bucket %s: %w", s.bucket, ErrNoBucket)
	}
	return nil
}

// uploadParts hashes the parts of file from f in order and uploads them
// with opts.Parallel workers, counting the parts sent and those already
// in place.
func (s *S3Store) uploadParts(ctx context.Context, f io.ReaderAt, file *File, opts UploadOptions) (sent, skipped int, err error) {
	ps := maxLength(file.Parts)
	par := opts.Parallel
	if par <= 0 {
		par = 4
	}
	// Keep the part buffers within uploadMemory.
	par = max(1, min(par, int(uploadMemory/max(ps, 1))-1))
	progress := progressCounter(opts.Progress, file.Size())
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type job struct {
		p    *Part
		data []byte
	}
	jobs := make(chan job)
	pool := make(chan []byte, par+1)
	for i := 0; i < par+1; i++ {
		pool <- nil
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A failed worker goes on taking jobs, so that every buffer
			// returns to the pool and the hashing never waits for one.
			for j := range jobs {
				put, err := s.putPart(ctx, j.p, j.data)
				pool <- j.data
				if err != nil {
					fail(&PartError{Part: *j.p, Where: s.Where(j.p), Err: err})
					continue
				}
				mu.Lock()
				if put {
					sent++
				} else {
					skipped++
				}
				if progress != nil {
					progress(j.p.Length)
				}
				mu.Unlock()
			}
		}()
	}
	err = hashParts(ctx, f, file, func() []byte {
		b := <-pool
		if b == nil {
			b = make([]byte, ps)
		}
		return b
	}, func(p *Part, data []byte) error {
		select {
		case jobs <- job{p, data}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(jobs)
	wg.Wait()
	if err := parent.Err(); err != nil {
		return sent, skipped, err
	}
	if firstErr != nil {
		return sent, skipped, firstErr
	}
	return sent, skipped, err
}

// signPart presigns the part's HEAD, GET and DELETE URLs.
func (s *S3Store) signPart(ctx context.Context, p *Part, expires time.Duration, now time.Time) error {
	var err error
	if p.HeadURL, err = s.Presign(ctx, "HEAD", p.Key, expires, now); err != nil {
		return err
	}
	if p.GetURL, err = s.Presign(ctx, "GET", p.Key, expires, now); err != nil {
		return err
	}
	p.DeleteURL, err = s.Presign(ctx, "DELETE", p.Key, expires, now)
	return err
}

// putPart uploads one part unless an object with the same size, SHA-256
// metadata and MD5 is already there; it reports whether it sent the part.
func (s *S3Store) putPart(ctx context.Context, p *Part, data []byte) (bool, error) {
	sum := md5.Sum(data)
	md5hex := hex.EncodeToString(sum[:])
	info, err := s.client.Stat(ctx, s.bucket, p.Key)
	if err == nil && info.Size == p.Length && info.Metadata[metaSHA256] == p.SHA256 && info.ETag == md5hex {
		return false, nil
	}
	var er *s3.Error
	if err != nil && !(errors.As(err, &er) && (er.Code == "NoSuchKey" || er.Status == 404)) {
		return false, err
	}
	if err := s.client.Put(ctx, s.bucket, p.Key, data, "application/octet-stream", map[string]string{metaSHA256: p.SHA256}); err != nil {
		return false, s3Error(err)
	}
	return true, nil
}
