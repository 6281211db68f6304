package server

import (
	"context"
	"fmt"

	"github.com/diskport/diskport/server/store"
)

type importImageTaskXML struct {
	Architecture    string              `xml:"architecture,omitempty"`
	BootMode        string              `xml:"bootMode,omitempty"`
	Description     string              `xml:"description,omitempty"`
	Encrypted       bool                `xml:"encrypted"`
	Hypervisor      string              `xml:"hypervisor,omitempty"`
	ImageID         string              `xml:"imageId,omitempty"`
	ImportTaskID    string              `xml:"importTaskId"`
	LicenseType     string              `xml:"licenseType,omitempty"`
	Platform        string              `xml:"platform,omitempty"`
	Progress        string              `xml:"progress,omitempty"`
	SnapshotDetails []snapshotDetailXML `xml:"snapshotDetailSet>item"`
	Status          string              `xml:"status"`
	StatusMessage   string              `xml:"statusMessage,omitempty"`
	TagSet          []tagXML            `xml:"tagSet>item"`
}

type importImageResponse struct {
	meta
	importImageTaskXML
}

type describeImportImageTasksResponse struct {
	meta
	Tasks     []importImageTaskXML `xml:"importImageTaskSet>item"`
	NextToken string               `xml:"nextToken,omitempty"`
}

// importImageTask is an ImportImage task as its Describe item: its image
// id once completed, a snapshot detail per disk (an OVA's every disk once
// the worker read its descriptor).
func importImageTask(t *store.Task, tags []store.Tag) importImageTaskXML {
	x := importImageTaskXML{Architecture: t.Architecture, BootMode: t.BootMode, Description: t.Description, Hypervisor: "xen",
		ImportTaskID: t.ID, LicenseType: t.LicenseType, Platform: t.Platform, Progress: modernProgress(t, t.Volumes),
		SnapshotDetails: []snapshotDetailXML{}, Status: modernState(t.State), StatusMessage: modernMessage(t), TagSet: tagSet(tags, t.ID)}
	if t.State == store.TaskCompleted {
		x.ImageID = t.ImageID
	}
	for i, v := range t.Volumes {
		d := snapshotDetail(t, v)
		d.DeviceName = v.DeviceName
		if d.DeviceName == "" {
			d.DeviceName = store.DeviceName(i)
		}
		x.SnapshotDetails = append(x.SnapshotDetails, d)
	}
	return x
}

// importImage answers ImportImage: a task that imports one or more disks
// (DiskContainer.N: RAW, VMDK, VHD, VHDX, or an OVA whose every disk
// becomes a snapshot) and, when every one is converted, registers an
// image whose block devices are the snapshots, the first the root.
func (s *Server) importImage(ctx context.Context, c *call) (response, error) {
	now := s.cfg.Clock().UTC()
	prev, token, hash, err := s.earlierTask(ctx, c)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		return s.importImageAnswer(ctx, c, prev)
	}
	if err := encryption(c); err != nil {
		return nil, err
	}
	if err := roleName(c); err != nil {
		return nil, err
	}
	t := &store.Task{ID: newID("import-ami-", 17), AccountID: c.account, Kind: store.KindImage, State: store.TaskActive,
		StatusMessage: statusPending, Description: c.get("Description"), ClientToken: token, ParamsHash: hash,
		ImageID: newID("ami-", 17), Architecture: "x86_64", Platform: "Linux",
		Expiration: now.Add(s.cfg.Expiration), Created: now, Updated: now}
	if err := maxLength("Description", t.Description, 255); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		name string
		dst  *string
		vals []string
	}{
		{"Architecture", &t.Architecture, []string{"i386", "x86_64", "arm64"}},
		{"Platform", &t.Platform, []string{"Windows", "Linux"}},
		{"LicenseType", &t.LicenseType, []string{"AWS", "BYOL"}},
		{"BootMode", &t.BootMode, []string{"legacy-bios", "uefi"}},
		{"Hypervisor", new(string), []string{"xen"}},
	} {
		if v := c.get(p.name); v != "" {
			if *p.dst, err = oneOf(p.name, v, p.vals...); err != nil {
				return nil, err
			}
		}
	}
	if t.Architecture == "arm64" && t.BootMode == "" {
		t.BootMode = "uefi" // arm64 boots only with UEFI
	}
	idx, err := indexes(c.params, "DiskContainer")
	if err != nil {
		return nil, err
	}
	if len(idx) == 0 {
		return nil, errorf("MissingParameter", "The request must contain the parameter DiskContainer.1.")
	}
	if len(idx) > 26 {
		return nil, errorf("InvalidParameterValue", "An image takes at most 26 disks, not %d.", len(idx))
	}
	for i, n := range idx {
		prefix := fmt.Sprintf("DiskContainer.%d.", n)
		if c.get(prefix+"SnapshotId") != "" {
			return nil, errorf("InvalidParameterValue", "%sSnapshotId is not supported: give the disk's Url or UserBucket (or RegisterImage the snapshot).", prefix)
		}
		v, err := s.diskContainer(c, prefix, now, imageFormats...)
		if err != nil {
			return nil, err
		}
		v.Index, v.DeviceName = i, c.get(prefix+"DeviceName")
		if err := maxLength(prefix+"DeviceName", v.DeviceName, 64); err != nil {
			return nil, err
		}
		t.Volumes = append(t.Volumes, v)
	}
	t.AvailabilityZone = t.Volumes[0].AvailabilityZone
	if t, err = s.createModernTask(ctx, c, t, "import-image-task"); err != nil {
		return nil, err
	}
	return s.importImageAnswer(ctx, c, t)
}

func (s *Server) importImageAnswer(ctx context.Context, c *call, t *store.Task) (response, error) {
	tags, err := s.answerTags(ctx, c, t)
	if err != nil {
		return nil, err
	}
	x := importImageTask(t, tags)
	x.BootMode = "" // ImportImage's answer has none; the Describe items do
	return &importImageResponse{importImageTaskXML: x}, nil
}

func (s *Server) describeImportImageTasks(ctx context.Context, c *call) (response, error) {
	tasks, next, tags, err := s.modernTasks(ctx, c, store.KindImage)
	if err != nil {
		return nil, err
	}
	r := &describeImportImageTasksResponse{Tasks: []importImageTaskXML{}, NextToken: next}
	for _, t := range tasks {
		r.Tasks = append(r.Tasks, importImageTask(t, tags))
	}
	return r, nil
}
