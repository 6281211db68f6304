package server

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/server/store"
)

type createVolumeResponse struct {
	meta
	volumeXML
	TagSet []tagXML `xml:"tagSet>item"`
}

// createVolume answers CreateVolume: a new volume, DATA/volumes/vol-ID.raw,
// holding a snapshot's bytes (SnapshotId, required here; Size, when given,
// at least the snapshot's). The copy is a task of
// its own (leased, resumed after a crash, like an import) through the one
// conversion path, which copies only the snapshot's data extents with
// copy_file_range (a reflink on file systems that share extents) and
// leaves the rest a hole: it never writes zeros.
func (s *Server) createVolume(ctx context.Context, c *call) (response, error) {
	now := s.cfg.Clock().UTC()
	zone, err := s.zone(c, "AvailabilityZone")
	if err != nil {
		return nil, err
	}
	size, err := c.integer("Size", 1, maxVolumeGiB, false)
	if err != nil {
		return nil, err
	}
	if enc, err := c.boolean("Encrypted"); err != nil {
		return nil, err
	} else if enc {
		return nil, errorf("InvalidParameterValue", "Encrypted=true is not supported: diskport's volumes are unencrypted raw files.")
	}
	vtype := c.get("VolumeType")
	if vtype == "" {
		vtype = "gp2"
	}
	if vtype, err = oneOf("VolumeType", vtype, "standard", "io1", "io2", "gp2", "gp3", "sc1", "st1"); err != nil {
		return nil, err
	}
	snap, err := c.required("SnapshotId")
	if err != nil {
		return nil, err
	}
	{
		if err := checkIDs([]string{snap}, "snap-", "InvalidSnapshotID.Malformed"); err != nil {
			return nil, err
		}
		snaps, err := s.st.Snapshots(ctx, c.account, []string{snap})
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound(err, "InvalidSnapshot.NotFound", "snapshot")
		}
		if err != nil {
			return nil, err
		}
		if size == 0 {
			size = snaps[0].Size
		}
		if size < snaps[0].Size {
			return nil, errorf("InvalidParameterValue", "Volume of %d GiB is too small; minimum is %d GiB (the size of %s).", size, snaps[0].Size, snap)
		}
	}
	v := &store.Volume{ID: newID("vol-", 17), Size: size, AvailabilityZone: zone, State: store.VolumeCreating, Created: now,
		Format: manifest.FormatRAW, Status: store.ConversionActive, SourceSnapshot: snap}
	t := &store.Task{ID: newID("copy-", 17), AccountID: c.account, Kind: store.KindCopy, State: store.TaskActive,
		StatusMessage: statusPending, AvailabilityZone: zone, Expiration: now.Add(s.cfg.Expiration), Created: now, Updated: now,
		Volumes: []*store.Volume{v}}
	if t.Tags, err = tagSpecs(c, "volume", v.ID); err != nil {
		return nil, err
	}
	if err := s.st.CreateTask(ctx, t, nil); err != nil {
		return nil, err
	}
	c.ids = []string{v.ID, snap}
	s.taskLog(t, "created")
	s.pool.kick()
	x := volumeXML{VolumeID: v.ID, Size: size, SnapshotID: snap, AvailabilityZone: zone, Status: v.State,
		CreateTime: formatTime(now), VolumeType: vtype, Attachments: []attachmentXML{}}
	return &createVolumeResponse{volumeXML: x, TagSet: tagSet(t.Tags, v.ID)}, nil
}

// runCopy makes a CreateVolume task's volume: the snapshot's file read
// as a raw image and converted into the volume (its holes stay holes).
func (p *pool) runCopy(ctx context.Context, t *store.Task) error {
	if len(t.Volumes) != 1 {
		return fmt.Errorf("a CreateVolume task has %d volumes, not 1", len(t.Volumes))
	}
	v := t.Volumes[0]
	if v.Status == store.ConversionCompleted || p.inPlace(v) {
		return p.st.Progress(ctx, v.ID, t.LeaseGeneration, p.cfg.ServerID, v.BytesConverted, store.ConversionCompleted, "")
	}
	src := p.volumePath(v.SourceSnapshot)
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("the file of %s is not on this server (%s): %w", v.SourceSnapshot, p.cfg.ServerID, err)
	}
	img, err := manifest.OpenImage(ctx, manifest.Source{Path: src}, manifest.ImageOptions{Image: diskport.Options{Format: "raw"}})
	if err != nil {
		return err
	}
	defer img.Close()
	return p.convertImage(ctx, t, v, img, "", 0)
}
