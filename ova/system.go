package ova

import (
	"slices"
	"strconv"
	"strings"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
)

// describe fills the appliance's system and disks from the descriptor,
// checking each file reference against the archive and the .mf.
func (a *Appliance) describe(env *envelope) error {
	name := a.Descriptor
	a.Version = env.Version
	systems := env.Systems
	if env.Collection != nil {
		systems = append(systems, env.Collection.Systems...)
	}
	if len(systems) > 1 {
		return disk.Errorf("ova", disk.ErrUnsupported, "%s: %d virtual systems; diskport reads appliances of one", name, len(systems))
	}
	if len(env.Disks) > a.opts.MaxDisks {
		return disk.Errorf("ova", disk.ErrTooLarge, "%s: %d disks, more than the %d allowed", name, len(env.Disks), a.opts.MaxDisks)
	}
	if len(env.Files) > maxMembers {
		return disk.Errorf("ova", disk.ErrTooLarge, "%s: %d file references, more than the archive's limit of %d members", name, len(env.Files), maxMembers)
	}
	files := map[string]fileRef{}
	for _, f := range env.Files {
		if _, dup := files[f.ID]; dup || f.ID == "" {
			return disk.Errorf("ova", disk.ErrCorrupt, "%s: file id %q is empty or used twice in References", name, f.ID)
		}
		files[f.ID] = f
	}
	var disks []Disk
	ids := map[string]int{}
	used := map[string]string{} // member -> the disk it holds
	for _, de := range env.Disks {
		if _, dup := ids[de.ID]; dup || de.ID == "" {
			return disk.Errorf("ova", disk.ErrCorrupt, "%s: disk id %q is empty or used twice in DiskSection", name, de.ID)
		}
		d, err := a.disk(name, de, files)
		if err != nil {
			return err
		}
		if other, dup := used[d.File]; dup && d.File != "" {
			return disk.Errorf("ova", disk.ErrCorrupt, "%s: disks %q and %q are both in %q", name, other, de.ID, d.File)
		}
		used[d.File] = de.ID
		ids[de.ID] = len(disks)
		disks = append(disks, d)
	}
	if len(systems) == 1 {
		a.System = systems[0].Name
		if a.System == "" {
			a.System = systems[0].ID
		}
		disks = bootOrder(disks, ids, systems[0])
	}
	a.Disks = disks
	return nil
}

// disk checks one DiskSection entry and its file.
func (a *Appliance) disk(name string, de diskElem, files map[string]fileRef) (Disk, error) {
	d := Disk{ID: de.ID, FormatURI: de.Format}
	if de.ParentRef != "" {
		return d, disk.Errorf("ova", disk.ErrUnsupported, "%s: disk %q is a delta of disk %q (ovf:parentRef); diskport does not read OVF disk chains", name, de.ID, de.ParentRef)
	}
	c, err := parseCapacity(de.Capacity, de.Units)
	if e, ok := err.(*disk.Error); ok {
		return d, disk.Errorf("ova", e.Class, "%s: disk %q: %s", name, de.ID, e.Msg)
	}
	if c > a.opts.MaxVirtualSize {
		return d, disk.Errorf("ova", disk.ErrTooLarge, "%s: disk %q has a capacity of %d bytes, more than the limit of %d", name, de.ID, c, a.opts.MaxVirtualSize)
	}
	d.Capacity = c
	if f := formatOf(de.Format); f != "" {
		d.Format = diskport.Format(f)
	}
	if de.FileRef == "" {
		return d, nil // an empty disk the importer would create: nothing to read
	}
	f, ok := files[de.FileRef]
	if !ok {
		return d, disk.Errorf("ova", disk.ErrCorrupt, "%s: disk %q names file %q, which References lacks", name, de.ID, de.FileRef)
	}
	m, ok := a.members[strings.TrimPrefix(f.Href, "./")]
	if !ok {
		return d, disk.Errorf("ova", disk.ErrCorrupt, "%s: disk %q is in %q, which the archive lacks", name, de.ID, f.Href)
	}
	d.File, d.member, d.Compression = m.Name, m, f.Compression
	if f.Size != "" {
		if n, err := strconv.ParseInt(f.Size, 10, 64); err != nil || n != m.Size {
			return d, disk.Errorf("ova", disk.ErrCorrupt, "%s: file %q has ovf:size %q, but the member is %d bytes", name, f.Href, f.Size, m.Size)
		}
	}
	switch {
	case f.ChunkSize != "":
		return d, disk.Errorf("ova", disk.ErrUnsupported, "%s: file %q is split in chunks (ovf:chunkSize); diskport does not read chunked files", name, f.Href)
	case f.Compression != "" && f.Compression != "identity" && f.Compression != "gzip":
		return d, disk.Errorf("ova", disk.ErrUnsupported, "%s: file %q has compression %q; OVF defines gzip only", name, f.Href, f.Compression)
	}
	if dg, ok := a.Digests[m.Name]; ok {
		d.Digest = dg
	} else if !a.opts.NoVerifyManifest {
		return d, coverage(disk.ErrCorrupt, "%s: the .mf %q does not list disk file %q", a.s.Name(), a.Manifest, m.Name)
	}
	return d, nil
}

// bootOrder sorts the disks as the system's hardware attaches them:
// controllers in the order the section lists them, then by address on
// the controller; disks no item attaches keep their order, after.
func bootOrder(disks []Disk, ids map[string]int, sys systemElem) []Disk {
	items := append(slices.Clone(sys.Items), sys.StorageItems...)
	rank := map[string]int{} // controller InstanceID -> position
	names := map[string]string{}
	for _, it := range items {
		switch it.ResourceType {
		case rtIDE, rtSCSI, rtOther:
			if _, ok := rank[it.InstanceID]; !ok {
				rank[it.InstanceID] = len(rank)
				names[it.InstanceID] = it.ElementName
			}
		}
	}
	type slot struct{ ctl, addr, idx int }
	order := map[int]slot{}
	for _, it := range items {
		if it.ResourceType != rtDiskDrive {
			continue
		}
		for _, hr := range it.HostResource {
			id, ok := diskRef(hr)
			i, known := ids[id]
			if !ok || !known {
				continue
			}
			if _, done := order[i]; done {
				continue
			}
			r, ok := rank[it.Parent]
			if !ok {
				r = len(rank)
			}
			addr, err := strconv.Atoi(strings.TrimSpace(it.Address))
			if err != nil {
				addr = 1 << 30
			}
			order[i] = slot{r, addr, len(order)}
			disks[i].Controller, disks[i].Address = names[it.Parent], strings.TrimSpace(it.Address)
		}
	}
	idx := make([]int, len(disks))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(x, y int) int {
		sx, okx := order[x]
		sy, oky := order[y]
		switch {
		case okx != oky:
			if okx {
				return -1
			}
			return 1
		case !okx:
			return 0
		case sx.ctl != sy.ctl:
			return sx.ctl - sy.ctl
		case sx.addr != sy.addr:
			return sx.addr - sy.addr
		}
		return sx.idx - sy.idx
	})
	out := make([]Disk, len(disks))
	for k, i := range idx {
		out[k] = disks[i]
	}
	return out
}

// diskRef returns the disk id of a HostResource "ovf:/disk/ID" (or the
// older "/disk/ID").
func diskRef(hr string) (string, bool) {
	hr = strings.TrimSpace(hr)
	hr = strings.TrimPrefix(hr, "ovf:")
	return strings.CutPrefix(hr, "/disk/")
}
