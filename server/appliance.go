package server

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/ova"
	"github.com/diskport/diskport/server/store"
)

// maxInstanceVolumes is how many volumes an instance may have, EC2's
// limit on ImportInstance's disk images: an OVA's disks count too.
const maxInstanceVolumes = 26

// isAppliance says whether v is the volume of an OVA disk image of the
// request (Image.Format OVA), which holds the appliance's boot disk and
// adds a volume for each of its other disks.
func isAppliance(v *store.Volume) bool {
	return v.Format == manifest.FormatOVA && v.Origin == ""
}

// convertAppliance converts every disk of the OVA that v's disk image
// is, in boot order, each into its own volume: v's holds the boot disk,
// and the other disks' volumes are added to the task (and its instance)
// first, once. Each disk's .mf checksum is verified before its volume is
// committed. ImportVolume takes an appliance of one disk only.
func (p *pool) convertAppliance(ctx context.Context, t *store.Task, v *store.Volume, note string) error {
	if nextDisk(t, v) == nil {
		return nil // every disk converted
	}
	p.status(ctx, t, v, 0, "Pending: fetching the manifest"+note)
	boot, err := p.openImage(ctx, t, v)
	if err != nil {
		return err
	}
	defer boot.Close()
	a, _ := boot.Appliance()
	switch n := len(a.Disks); {
	case n == 0:
		return fmt.Errorf("the OVA has no disks to import")
	case n > 1 && t.Kind == store.KindVolume:
		return fmt.Errorf("the OVA has %d disks and ImportVolume imports one: import it with ImportInstance (DiskImage.1.Image.Format OVA), which makes a volume of each disk", n)
	}
	vols, err := p.expand(ctx, t, v, a)
	if err != nil {
		return err
	}
	for k, dv := range vols {
		if dv.Status == store.ConversionCompleted {
			continue
		}
		if err := p.convertApplianceDisk(ctx, t, boot, k, dv, note); err != nil {
			return err
		}
	}
	return nil
}

// nextDisk returns the first of v's appliance's volumes, in boot order,
// whose conversion is not completed (v's, then those added for the other
// disks, which follow it in the task's order); nil when every one is. The
// other disks' volumes are added before v's is converted, so a completed
// v with none added is a one-disk appliance.
func nextDisk(t *store.Task, v *store.Volume) *store.Volume {
	if v.Status != store.ConversionCompleted {
		return v
	}
	for _, w := range t.Volumes {
		if w.Origin == v.ID && w.Status != store.ConversionCompleted {
			return w
		}
	}
	return nil
}

// pendingDisks yields each of the task's disks whose conversion is not
// completed with the volume it converts next: its own, or an appliance's
// next disk (nextDisk). A disk an appliance added is passed over: it is
// converted with its appliance.
func pendingDisks(t *store.Task) iter.Seq2[*store.Volume, *store.Volume] {
	return func(yield func(v, next *store.Volume) bool) {
		for _, v := range slices.Clone(t.Volumes) {
			next := v
			if isAppliance(v) {
				next = nextDisk(t, v)
			}
			if v.Origin != "" || next == nil || next.Status == store.ConversionCompleted {
				continue
			}
			if !yield(v, next) {
				return
			}
		}
	}
}

// convertApplianceDisk converts disk k of the appliance whose boot disk
// is boot into volume dv, checking the member's .mf checksum (and the
// manifest's sums) before the volume is committed; a gzip-compressed
// member is read as a stream, by one worker.
func (p *pool) convertApplianceDisk(ctx context.Context, t *store.Task, boot *manifest.Image, k int, dv *store.Volume, note string) error {
	if p.inPlace(dv) {
		return p.st.Progress(ctx, dv.ID, t.LeaseGeneration, p.cfg.ServerID, dv.BytesConverted, store.ConversionCompleted, "")
	}
	img := boot
	if k > 0 {
		var err error
		if img, err = boot.Disk(k); err != nil {
			return fmt.Errorf("disk %d of the OVA: %w", k, err)
		}
		defer img.Close()
	}
	workers := 0
	if img.Sequential() {
		workers = 1
	}
	if err := p.convertImage(ctx, t, dv, img, note, workers); err != nil {
		a, _ := boot.Appliance()
		return fmt.Errorf("disk %d of the OVA (member %q): %w", k, a.Disks[k].File, err)
	}
	return nil
}

// expand adds a volume to the task for each disk of the appliance past
// its boot disk, unless an earlier run of the task added it, and returns
// the appliance's volumes in boot order (v's first). Each added volume
// is its disk's capacity rounded up to a whole GiB (at least 1).
func (p *pool) expand(ctx context.Context, t *store.Task, v *store.Volume, a *ova.Appliance) ([]*store.Volume, error) {
	n := len(a.Disks)
	if n == 1 {
		return []*store.Volume{v}, nil
	}
	have := map[int]bool{}
	for _, w := range t.Volumes {
		if w.Origin == v.ID {
			have[w.ApplianceDisk] = true
		}
	}
	now := p.now()
	var add []*store.Volume
	for k, d := range a.Disks[1:] {
		k++
		gib := max((d.Capacity+GiB-1)/GiB, 1)
		if gib > maxVolumeGiB {
			return nil, fmt.Errorf("disk %d of the OVA (member %q) has a capacity of %d bytes, more than EBS's largest volume (%d GiB)", k, d.File, d.Capacity, maxVolumeGiB)
		}
		if have[k] {
			continue
		}
		id, kind := newID("vol-", 17), store.KindVolumeDisk
		if isModern(t) { // an ImportImage disk: a snapshot of each disk
			id, kind = newID("snap-", 17), store.KindSnapshotDisk
		}
		add = append(add, &store.Volume{ID: id, Kind: kind, InstanceID: t.InstanceID, Size: gib,
			AvailabilityZone: v.AvailabilityZone, State: store.VolumeCreating, Created: now,
			Description: addedDescription(v, k, d.File), Format: v.Format, Bytes: v.Bytes, ManifestURL: v.ManifestURL,
			Status: store.ConversionActive, StatusMessage: statusQueued, Origin: v.ID, ApplianceDisk: k})
	}
	if total := len(t.Volumes) + len(add); total > maxInstanceVolumes {
		return nil, fmt.Errorf("the OVA's %d disks would give the instance %d volumes, more than the %d EC2 allows", n, total, maxInstanceVolumes)
	}
	all, err := p.st.AddVolumes(ctx, t.ID, t.LeaseGeneration, add)
	if errors.Is(err, store.ErrState) {
		return nil, p.leaseLost(ctx, t)
	}
	if err != nil {
		return nil, err
	}
	if len(add) > 0 {
		p.log.Info("task", "event", "expanded", "task", t.ID, "volume", v.ID, "disks", n, "added", len(add))
	}
	t.Volumes = all
	vols := make([]*store.Volume, n)
	for _, w := range all {
		switch {
		case w.ID == v.ID:
			vols[0] = w
		case w.Origin == v.ID && w.ApplianceDisk > 0 && w.ApplianceDisk < n:
			vols[w.ApplianceDisk] = w
		}
	}
	for k, w := range vols {
		if w == nil {
			return nil, fmt.Errorf("the task has no volume for disk %d of the OVA", k)
		}
	}
	return vols, nil
}

// addedDescription describes the volume added for disk k of v's OVA, in
// member file.
func addedDescription(v *store.Volume, k int, file string) string {
	d := fmt.Sprintf("disk %d of the OVA (%s)", k, file)
	if v.Description != "" {
		d = v.Description + ": " + d
	}
	return cut(d, 255)
}
