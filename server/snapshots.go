package server

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/diskport/diskport/server/store"
)

type snapshotXML struct {
	SnapshotID  string   `xml:"snapshotId"`
	VolumeID    string   `xml:"volumeId"`
	Status      string   `xml:"status"`
	StartTime   string   `xml:"startTime"`
	Progress    string   `xml:"progress"`
	OwnerID     string   `xml:"ownerId"`
	VolumeSize  int64    `xml:"volumeSize"`
	Description string   `xml:"description"`
	Encrypted   bool     `xml:"encrypted"`
	StorageTier string   `xml:"storageTier"`
	TagSet      []tagXML `xml:"tagSet>item"`
}

type describeSnapshotsResponse struct {
	meta
	Snapshots []snapshotXML `xml:"snapshotSet>item"`
	NextToken string        `xml:"nextToken,omitempty"`
}

// importedVolumeID is the volume id EC2 gives a snapshot that no volume
// of its was taken from: an imported one.
const importedVolumeID = "vol-ffffffff"

// owned says whether Owner.N (self, or account ids) admits account's
// resources: no Owner.N admits them too.
func owned(c *call, name string) (bool, error) {
	owners, err := c.list(name)
	if err != nil {
		return false, err
	}
	if len(owners) == 0 {
		return true, nil
	}
	for _, o := range owners {
		if o == "self" || o == c.account {
			return true, nil
		}
	}
	return false, nil
}

func (s *Server) describeSnapshots(ctx context.Context, c *call) (response, error) {
	ids, err := c.list("SnapshotId")
	if err != nil {
		return nil, err
	}
	if err := checkIDs(ids, "snap-", "InvalidSnapshotID.Malformed"); err != nil {
		return nil, err
	}
	c.ids = ids
	fs, err := filters(c, "Filter", "snapshot-id", "status", "owner-id", "description", "volume-size", "volume-id", "encrypted", "tag:", "tag-key")
	if err != nil {
		return nil, err
	}
	mine, err := owned(c, "Owner")
	if err != nil {
		return nil, err
	}
	r := &describeSnapshotsResponse{Snapshots: []snapshotXML{}}
	if !mine {
		return r, nil
	}
	snaps, err := s.st.Snapshots(ctx, c.account, ids)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(err, "InvalidSnapshot.NotFound", "snapshot")
	}
	if err != nil {
		return nil, err
	}
	sids := make([]string, len(snaps))
	for i, sn := range snaps {
		sids[i] = sn.ID
	}
	var tags []store.Tag
	if len(snaps) > 0 {
		if tags, err = s.st.Tags(ctx, c.account, sids); err != nil {
			return nil, err
		}
	}
	var list []snapshotXML
	for _, sn := range snaps {
		x := snapshotXML{SnapshotID: sn.ID, VolumeID: importedVolumeID, Status: string(sn.State), StartTime: formatTime(sn.Created),
			Progress: "100%", OwnerID: sn.AccountID, VolumeSize: sn.Size, Description: sn.Description, StorageTier: "standard",
			TagSet: tagSet(tags, sn.ID)}
		ok := match(fs, tags, sn.ID, func(name string) []string {
			switch name {
			case "snapshot-id":
				return []string{x.SnapshotID}
			case "status":
				return []string{x.Status}
			case "owner-id":
				return []string{x.OwnerID}
			case "description":
				return []string{x.Description}
			case "volume-size":
				return []string{strconv.FormatInt(x.VolumeSize, 10)}
			case "volume-id":
				return []string{x.VolumeID}
			case "encrypted":
				return []string{"false"}
			}
			return nil
		})
		if ok {
			list = append(list, x)
		}
	}
	page, next, err := page(c, list, func(x snapshotXML) string { return x.SnapshotID }, 5)
	if err != nil {
		return nil, err
	}
	r.Snapshots = append(r.Snapshots, page...)
	r.NextToken = next
	return r, nil
}

func (s *Server) deleteSnapshot(ctx context.Context, c *call) (response, error) {
	id, err := c.required("SnapshotId")
	if err != nil {
		return nil, err
	}
	c.ids = []string{id}
	if err := checkIDs(c.ids, "snap-", "InvalidSnapshotID.Malformed"); err != nil {
		return nil, err
	}
	snaps, err := s.st.Snapshots(ctx, c.account, c.ids)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(err, "InvalidSnapshot.NotFound", "snapshot")
	}
	if err != nil {
		return nil, err
	}
	err = s.st.DeleteSnapshot(ctx, c.account, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, notFound(err, "InvalidSnapshot.NotFound", "snapshot")
	case errors.Is(err, store.ErrInUse):
		msg := trimStore(err)
		return nil, errorf("InvalidSnapshot.InUse", "%s%s.", strings.ToUpper(msg[:1]), msg[1:])
	case err != nil:
		return nil, err
	}
	// The file is its holder's to remove: this server's now, or
	// another's on its next look at the store (pool.sweep).
	if sn := snaps[0]; sn.Server == "" || sn.Server == s.cfg.ServerID {
		s.pool.removeVolume(ctx, id)
	}
	return &returnResponse{Return: true}, nil
}

// trimStore is a store error's text without its "store: in use: "
// prefix.
func trimStore(err error) string {
	msg := err.Error()
	for _, p := range []error{store.ErrInUse, store.ErrExists, store.ErrNotFound, store.ErrState} {
		if len(msg) > len(p.Error())+2 && msg[:len(p.Error())+2] == p.Error()+": " {
			return msg[len(p.Error())+2:]
		}
	}
	return msg
}
