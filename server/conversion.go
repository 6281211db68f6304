package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
	"github.com/diskport/diskport/server/store"
)

// convertVolume converts the disk image of t's volume v into its volume
// file, resuming from the journal an interrupted run left.
// note, when set, is appended to its progress messages (a takeover's).
func (p *pool) convertVolume(ctx context.Context, t *store.Task, v *store.Volume, note string) error {
	if p.inPlace(v) {
		return p.st.Progress(ctx, v.ID, t.LeaseGeneration, p.cfg.ServerID, v.BytesConverted, store.ConversionCompleted, "")
	}
	p.status(ctx, t, v, 0, "Pending: fetching the manifest"+note)
	img, err := p.openImage(ctx, t, v)
	if err != nil {
		return err
	}
	defer img.Close()
	return p.convertImage(ctx, t, v, img, note, 0)
}

// inPlace says whether v's volume file is in place, whole: renamed into
// place before a crash stopped its conversion from being recorded
// completed, it is finished.
func (p *pool) inPlace(v *store.Volume) bool {
	fi, err := os.Stat(p.volumePath(v.ID))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == v.Size*GiB
}

// convertImage converts img into v's volume file with workers workers (0:
// the default), recording its progress. The image's own checks (the
// sums its source carries) run before the lease check that fences the
// rename.
func (p *pool) convertImage(ctx context.Context, t *store.Task, v *store.Volume, img *manifest.Image, note string, workers int) error {
	dst := p.volumePath(v.ID)
	size := v.Size * GiB
	if img.Size() > size {
		return fmt.Errorf("the image's virtual size, %d bytes, does not fit the %d GiB of Volume.Size", img.Size(), v.Size)
	}
	var done atomic.Int64
	last := int64(-1)
	stop := p.everyInterval(func() {
		if d := done.Load(); d != last {
			last = d
			p.status(ctx, t, v, d, progressMessage(t, v, d, img.Size())+note)
		}
	})
	p.status(ctx, t, v, 0, progressMessage(t, v, 0, img.Size())+note)
	began := p.now()
	res, err := convert.Convert(ctx, img, dst, convert.Options{
		VolumeSize: size,
		Resume:     true,
		Workers:    workers,
		Progress:   func(d, _ int64) { done.Store(d) },
		// Fencing: the volume is renamed into place only under this
		// worker's lease, after the source's own checks.
		Verify: func() error { return p.checkLease(ctx, t) },
	})
	stop()
	if err != nil {
		return err
	}
	p.metrics.bytes.Add(float64(res.VirtualSize - res.ResumedBytes))
	p.metrics.seconds.Observe(p.now().Sub(began).Seconds())
	p.log.Info("volume", "event", "converted", "task", t.ID, "volume", v.ID, "virtual_size", res.VirtualSize,
		"written_bytes", res.WrittenBytes, "resumed_bytes", res.ResumedBytes)
	v.BytesConverted, v.Status = res.VirtualSize, store.ConversionCompleted
	return p.st.Progress(ctx, v.ID, t.LeaseGeneration, p.cfg.ServerID, res.VirtualSize, store.ConversionCompleted, "")
}

// everyInterval calls report every ProgressInterval, on a goroutine of
// its own, until the function it returns is called; that one returns once
// report no longer runs.
func (p *pool) everyInterval(report func()) (stop func()) {
	stopc := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(p.cfg.ProgressInterval)
		defer tick.Stop()
		for {
			select {
			case <-stopc:
				return
			case <-tick.C:
				report()
			}
		}
	})
	return func() { close(stopc); wg.Wait() }
}

// checkLease returns errFenced unless t is still active under this
// worker's lease; a store it cannot reach is asked again, every
// leaseRetry, until the lease would have expired or ctx ends.
func (p *pool) checkLease(ctx context.Context, t *store.Task) error {
	deadline := p.now().Add(p.cfg.LeaseTimeout)
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		err := p.st.CheckLease(ctx, t.ID, t.LeaseGeneration)
		if err == nil {
			return nil
		}
		if errors.Is(err, store.ErrState) {
			return errFenced
		}
		if p.now().After(deadline) && store.Unavailable(err) {
			return fmt.Errorf("checking the task's lease before committing its volume: %w: %w", errStoreLost, err)
		}
		if p.now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("checking the task's lease before committing its volume: %w", err)
		}
		retry.Reset(leaseRetry)
		select {
		case <-ctx.Done():
			return fmt.Errorf("checking the task's lease before committing its volume: %w", err)
		case <-retry.C:
		}
	}
}

// leaseRetry is how long checkLease waits before asking a store it could
// not reach again.
const leaseRetry = 500 * time.Millisecond

// progressMessage is the status message of a running conversion of v,
// one of t's volumes: "(disk i of n)" counts the task's volumes as they
// are now, with those an OVA added.
func progressMessage(t *store.Task, v *store.Volume, done, total int64) string {
	pct := int64(100)
	if total > 0 {
		pct = done * 100 / total
	}
	msg := fmt.Sprintf("Progress: %d%%", pct)
	if len(t.Volumes) > 1 {
		i := slices.IndexFunc(t.Volumes, func(w *store.Volume) bool { return w.ID == v.ID })
		msg += fmt.Sprintf(" (disk %d of %d)", i+1, len(t.Volumes))
	}
	return msg
}

// status records a volume's progress and its task's status message.
func (p *pool) status(ctx context.Context, t *store.Task, v *store.Volume, done int64, msg string) {
	if err := p.st.Progress(ctx, v.ID, t.LeaseGeneration, p.cfg.ServerID, done, store.ConversionActive, msg); err != nil && ctx.Err() == nil {
		p.log.Warn("recording progress", "task", t.ID, "error", err.Error())
	}
	if err := p.st.SetStatus(ctx, t.ID, t.LeaseGeneration, msg); err != nil && ctx.Err() == nil {
		p.log.Warn("recording progress", "task", t.ID, "error", err.Error())
	}
}

// openImage fetches the manifest at the volume's ImportManifestUrl (once
// it and its parts are uploaded), checks it against what the client
// declared (Image.Format against its file-format, Image.Bytes against its
// size), and opens the image its parts hold through the one import path,
// which checks every sum the manifest carries (and an OVA's .mf) before
// a volume is committed. For an OVA, the image is its boot disk.
func (p *pool) openImage(ctx context.Context, t *store.Task, v *store.Volume) (*manifest.Image, error) {
	if err := p.fetch.checkURL(v.ManifestURL); err != nil {
		return nil, err
	}
	m, ps, err := p.awaitUpload(ctx, t, v)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(m.FileFormat, v.Format) {
		return nil, fmt.Errorf("Image.Format is %s but the manifest's file-format is %s", v.Format, m.FileFormat)
	}
	if m.Size != v.Bytes {
		return nil, fmt.Errorf("Image.Bytes is %d but the manifest's image is %d bytes", v.Bytes, m.Size)
	}
	opts := manifest.ImageOptions{Storage: parts.StorageOptions{Name: redact(v.ManifestURL)}}
	if isAppliance(v) {
		opts.Image.MaxVirtualSize = maxVolumeGiB * GiB
	}
	return manifest.OpenImage(ctx, manifest.Source{Parts: m, Store: ps}, opts)
}
