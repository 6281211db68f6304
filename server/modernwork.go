package server

import (
	"context"
	"errors"
	"os"

	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/server/store"
	"github.com/diskport/diskport/volume"
)

// isModern says whether t is a task of the modern VM Import/Export API,
// whose states and messages are its own (deleting, deleted, ClientError).
func isModern(t *store.Task) bool {
	switch t.Kind {
	case store.KindSnapshot, store.KindImage, store.KindCopy, store.KindExportImage, store.KindExportInstance:
		return true
	}
	return false
}

// runImport converts an ImportSnapshot or ImportImage task's disks that
// are not converted yet, each into its snapshot's file, through the one
// import path. An OVA disk of ImportImage converts its appliance's every
// disk, into its own snapshot and those it adds to the task.
func (p *pool) runImport(ctx context.Context, t *store.Task) error {
	p.log.Info("task", "event", "importing", "task", t.ID, "account", t.AccountID, "kind", t.Kind)
	for v, next := range pendingDisks(t) {
		note := ""
		if t.TakenOverFrom != "" {
			// The journal is the one of the disk converted next: an
			// OVA's appliance row has none of its own.
			note = " (taken over from " + t.TakenOverFrom + ")"
			if _, err := os.Stat(volume.JournalName(p.volumePath(next.ID))); err == nil {
				note = " (taken over from " + t.TakenOverFrom + ", resuming from its journal)"
			}
			t.TakenOverFrom = ""
		}
		if err := p.importDisk(ctx, t, v, note); err != nil {
			return err
		}
	}
	return nil
}

// importDisk converts one disk of a modern import task into its snapshot:
// a sparse raw file of its image's virtual size rounded up to whole GiB.
func (p *pool) importDisk(ctx context.Context, t *store.Task, v *store.Volume, note string) error {
	if v.Size > 0 && !isAppliance(v) && p.inPlace(v) {
		return p.st.Progress(ctx, v.ID, t.LeaseGeneration, p.cfg.ServerID, v.BytesConverted, store.ConversionCompleted, "")
	}
	p.status(ctx, t, v, 0, "validating"+note)
	img, format, bytes, err := p.openSource(ctx, v)
	if err != nil {
		return err
	}
	defer img.Close()
	ova := format == manifest.FormatOVA
	if ova && t.Kind == store.KindSnapshot {
		return clientErrorf("%s is an OVA: import an appliance with ImportImage", redact(v.ManifestURL))
	}
	size := max((img.Size()+GiB-1)/GiB, 1)
	if size > maxVolumeGiB {
		return clientErrorf("the image's virtual size, %d bytes, is larger than %d GiB", img.Size(), maxVolumeGiB)
	}
	if err := p.st.SetSource(ctx, v.ID, t.LeaseGeneration, format, bytes, img.Size(), size); err != nil {
		return err
	}
	v.Format, v.Bytes, v.VirtualSize, v.Size = format, bytes, img.Size(), size
	if !ova {
		return p.convertImage(ctx, t, v, img, note, 0)
	}
	a, _ := img.Appliance()
	if len(a.Disks) == 0 {
		return clientErrorf("the OVA %s has no disks to import", redact(v.ManifestURL))
	}
	vols, err := p.expand(ctx, t, v, a)
	if err != nil && !errors.Is(err, errFenced) && !errors.Is(err, errCancelled) && !store.Unavailable(err) && ctx.Err() == nil {
		return &clientError{err} // a disk too large, too many disks
	}
	if err != nil {
		return err
	}
	for k, dv := range vols {
		if dv.Status == store.ConversionCompleted {
			continue
		}
		if err := p.convertApplianceDisk(ctx, t, img, k, dv, note); err != nil {
			return err
		}
	}
	return nil
}

// failureMessage is the status message of a task that failed with err:
// for a modern task "ClientError: …" when the client's input caused it,
// else "ServerError: …"; for a legacy task "Failed: …".
func failureMessage(t *store.Task, err error) string {
	text := clipMessage(redact(err.Error()))
	switch {
	case !isModern(t):
		return "Failed: " + text
	case isClientError(err):
		return "ClientError: " + text
	}
	return "ServerError: " + text
}
