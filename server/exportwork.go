package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/internal/s3"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/ova"
	"github.com/diskport/diskport/server/store"
)

// Multipart uploads of exports: parts of exportPart bytes, exportThreads
// of them in flight.
const (
	exportPart    = 16 << 20
	exportThreads = 4
)

// exportKey is where an export task's object lands: S3Prefix, used as
// given, then the task's id and the lower-case format (ova for an OVA).
func exportKey(t *store.Task) string {
	ext := t.ExportFormat
	if t.ExportContainer != "" {
		ext = t.ExportContainer
	}
	return t.S3Prefix + t.ID + "." + ext
}

// exportSource is the raw file an export task reads: the root device's
// snapshot of ExportImage's image, or the root volume of
// CreateInstanceExportTask's instance, which must be on this server.
func (p *pool) exportSource(ctx context.Context, t *store.Task) (string, error) {
	var id string
	if t.Kind == store.KindExportImage {
		imgs, err := p.st.Images(ctx, t.AccountID, []string{t.ImageID})
		if errors.Is(err, store.ErrNotFound) {
			return "", clientErrorf("the image %s was deregistered", t.ImageID)
		}
		if err != nil {
			return "", err
		}
		for _, d := range imgs[0].Devices {
			if d.DeviceName == imgs[0].RootDeviceName {
				id = d.SnapshotID
			}
		}
	} else {
		insts, err := p.st.Instances(ctx, t.AccountID, []string{t.InstanceID})
		if err != nil {
			return "", err
		}
		if len(insts[0].VolumeIDs) == 0 {
			return "", clientErrorf("the instance %s has no volume", t.InstanceID)
		}
		id = insts[0].VolumeIDs[0]
	}
	path := p.volumePath(id)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("the file of %s is not on this server (%s): %w", id, p.cfg.ServerID, err)
	}
	return path, nil
}

// runExport writes an export task's disk as its format (a streamOptimized
// VMDK, a dynamic VHD, RAW, or an OVA holding a streamOptimized VMDK) and
// uploads it to S3Bucket at exportKey with a multipart upload, streaming:
// only a VHD (whose tables follow its data) and an OVA's disk (whose size
// its descriptor names first) pass through a file in the data directory,
// holding the disk's data only.
func (p *pool) runExport(ctx context.Context, t *store.Task) error {
	p.taskStatus(ctx, t, "validating")
	src, err := p.exportSource(ctx, t)
	if err != nil {
		return err
	}
	c, err := p.s3Client()
	if err != nil {
		return err
	}
	if ok, err := c.BucketExists(ctx, t.S3Bucket); err != nil {
		return s3Failure("s3://"+t.S3Bucket, err)
	} else if !ok {
		return clientErrorf("the S3 bucket %s does not exist", t.S3Bucket)
	}
	img, err := manifest.OpenImage(ctx, manifest.Source{Path: src}, manifest.ImageOptions{Image: diskport.Options{Format: "raw"}})
	if err != nil {
		return err
	}
	defer img.Close()
	var done atomic.Int64
	stop := p.reportExport(ctx, t, &done, img.Size())
	defer stop()
	key := exportKey(t)
	// A run of the task killed mid-upload left its parts: gone first.
	if err := c.AbortUploads(ctx, t.S3Bucket, key); err != nil {
		p.log.Warn("aborting an earlier run's upload", "task", t.ID, "error", err.Error())
	}
	progress := func(d, _ int64) { done.Store(d) }
	switch {
	case t.ExportContainer == "ova":
		err = p.upload(ctx, c, t.S3Bucket, key, -1, func(w io.Writer) error {
			_, err := ova.Write(ctx, w, img, ova.WriteOptions{Name: t.ID, TempDir: p.cfg.DataDir, Progress: progress})
			return err
		})
	case t.ExportFormat == "vmdk":
		err = p.upload(ctx, c, t.S3Bucket, key, -1, func(w io.Writer) error {
			_, err := diskport.Write(ctx, diskport.VMDK, w, img, diskport.WriteOptions{Subformat: "streamOptimized", Name: t.ID + ".vmdk", Progress: progress})
			return err
		})
	case t.ExportFormat == "vhd":
		err = p.uploadVHD(ctx, c, t, key, img, progress)
	default: // raw: the file itself
		f, err2 := os.Open(src)
		if err2 != nil {
			return err2
		}
		defer f.Close()
		_, err = c.PutStream(ctx, t.S3Bucket, key, &countingReader{r: f, n: &done}, img.Size(), exportPart, exportThreads)
	}
	if err != nil {
		return err
	}
	p.log.Info("task", "event", "exported", "task", t.ID, "bucket", t.S3Bucket, "key", key)
	return p.checkLease(ctx, t)
}

// upload streams what write writes to bucket/key.
func (p *pool) upload(ctx context.Context, c *s3.Client, bucket, key string, size int64, write func(io.Writer) error) error {
	pr, pw := io.Pipe()
	var werr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		werr = write(pw)
		pw.CloseWithError(werr)
	}()
	_, err := c.PutStream(ctx, bucket, key, pr, size, exportPart, exportThreads)
	pr.CloseWithError(errors.New("upload ended"))
	wg.Wait()
	if werr != nil {
		return werr
	}
	return err
}

// uploadVHD writes a dynamic VHD to a file in the data directory (its
// block allocation table is written after its data) and uploads it.
func (p *pool) uploadVHD(ctx context.Context, c *s3.Client, t *store.Task, key string, img *manifest.Image, progress func(int64, int64)) error {
	f, err := os.CreateTemp(p.cfg.DataDir, "export-*.vhd")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := diskport.Write(ctx, diskport.VHD, f, img, diskport.WriteOptions{Subformat: "dynamic", Progress: progress})
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = c.PutStream(ctx, t.S3Bucket, key, f, n, exportPart, exportThreads)
	return err
}

// reportExport records an export's progress now and every
// ProgressInterval until the returned function is called.
func (p *pool) reportExport(ctx context.Context, t *store.Task, done *atomic.Int64, total int64) func() {
	report := func() {
		p.taskStatus(ctx, t, fmt.Sprintf("Progress: %d%%", min(done.Load()*100/max(total, 1), 99)))
	}
	report()
	return p.everyInterval(report)
}

// taskStatus records a task's status message (an export's: it has no
// volumes).
func (p *pool) taskStatus(ctx context.Context, t *store.Task, msg string) {
	if err := p.st.SetStatus(ctx, t.ID, t.LeaseGeneration, msg); err != nil && ctx.Err() == nil {
		p.log.Warn("recording progress", "task", t.ID, "error", err.Error())
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	k, err := c.r.Read(b)
	c.n.Add(int64(k))
	return k, err
}

// removeExport removes what a cancelled or failed export task stored:
// its object, should its upload have completed, and the parts of an
// upload a killed run left.
func (p *pool) removeExport(ctx context.Context, t *store.Task) {
	c, err := p.s3Client()
	if err != nil {
		return
	}
	if err := c.AbortUploads(ctx, t.S3Bucket, exportKey(t)); err != nil {
		p.log.Warn("aborting a cancelled export's upload", "task", t.ID, "error", err.Error())
	}
	if err := c.Remove(ctx, t.S3Bucket, exportKey(t)); err != nil && !strings.Contains(err.Error(), "NoSuchKey") {
		p.log.Warn("removing a cancelled export's object", "task", t.ID, "error", err.Error())
	}
}
