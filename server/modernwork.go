package server

import (
	"context"
	"os"
	"slices"

	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/server/store"
	"github.com/diskport/diskport/volume"
)

// isModern says whether t is a task of the modern VM Import/Export API,
// whose states and messages are its own (deleting, deleted, ClientError).
func isModern(t *store.Task) bool {
	return t.Kind == store.KindSnapshot || t.Kind == store.KindImage || t.Kind == store.KindCopy
}

// runImport converts an ImportSnapshot or ImportImage task's disks that
// are not converted yet, each into its snapshot's file, through the one
// import path.
func (p *pool) runImport(ctx context.Context, t *store.Task) error {
	p.log.Info("task", "event", "importing", "task", t.ID, "account", t.AccountID, "kind", t.Kind)
	for _, v := range slices.Clone(t.Volumes) {
		if v.Status == store.ConversionCompleted {
			continue
		}
		note := ""
		if t.TakenOverFrom != "" {
			note = " (taken over from " + t.TakenOverFrom + ")"
			if _, err := os.Stat(volume.JournalName(p.volumePath(v.ID))); err == nil {
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
	if v.Size > 0 && p.inPlace(v) {
		return p.st.Progress(ctx, v.ID, t.LeaseGeneration, p.cfg.ServerID, v.BytesConverted, store.ConversionCompleted, "")
	}
	p.status(ctx, t, v, 0, "validating"+note)
	img, format, bytes, err := p.openSource(ctx, v)
	if err != nil {
		return err
	}
	defer img.Close()
	if t.Kind == store.KindSnapshot && format == manifest.FormatOVA {
		return clientErrorf("%s is an OVA: import an appliance with ImportImage", redact(v.ManifestURL))
	}
	size := max((img.Size()+GiB-1)/GiB, 1)
	if size > maxVolumeGiB {
		return clientErrorf("the image's virtual size, %d bytes, is larger than %d GiB", img.Size(), maxVolumeGiB)
	}
	if err := p.st.SetSource(ctx, v.ID, t.LeaseGeneration, format, bytes, size); err != nil {
		return err
	}
	v.Format, v.Bytes, v.Size = format, bytes, size
	return p.convertImage(ctx, t, v, img, note, 0)
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
