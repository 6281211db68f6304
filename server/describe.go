package server

import (
	"context"
	"errors"

	"github.com/diskport/diskport/server/store"
)

func (s *Server) describeVolumes(ctx context.Context, c *call) (response, error) {
	ids, err := c.list("VolumeId")
	if err != nil {
		return nil, err
	}
	c.ids = ids
	vols, err := s.st.Volumes(ctx, c.account, ids)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf("InvalidVolume.NotFound", "%s.", notFoundMessage(err, "volume"))
	}
	if err != nil {
		return nil, err
	}
	r := &describeVolumesResponse{Volumes: []volumeXML{}}
	for _, v := range vols {
		x := volumeXML{VolumeID: v.ID, Size: v.Size, SnapshotID: v.SourceSnapshot, AvailabilityZone: v.AvailabilityZone, Status: v.State,
			CreateTime: formatTime(v.Created), VolumeType: "standard", Attachments: []attachmentXML{}}
		if v.InstanceID != "" && v.State == store.VolumeInUse {
			x.Attachments = append(x.Attachments, attachmentXML{VolumeID: v.ID, InstanceID: v.InstanceID,
				Device: deviceName(v.Index), Status: "attached", AttachTime: formatTime(v.Created)})
		}
		r.Volumes = append(r.Volumes, x)
	}
	return r, nil
}

func (s *Server) describeInstances(ctx context.Context, c *call) (response, error) {
	ids, err := c.list("InstanceId")
	if err != nil {
		return nil, err
	}
	c.ids = ids
	insts, err := s.st.Instances(ctx, c.account, ids)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf("InvalidInstanceID.NotFound", "%s.", notFoundMessage(err, "instance"))
	}
	if err != nil {
		return nil, err
	}
	r := &describeInstancesResponse{Reservations: []reservationXML{}}
	for _, in := range insts {
		x := instanceXML{InstanceID: in.ID, InstanceState: instanceStateXML{instanceStateCode(in.State), in.State},
			InstanceType: in.InstanceType, LaunchTime: formatTime(in.Launched), Architecture: in.Architecture,
			RootDeviceType: "ebs", RootDeviceName: deviceName(0), VirtualizationType: "hvm", Hypervisor: "xen",
			BlockDeviceMapping: []blockDeviceXML{}}
		x.Placement.AvailabilityZone, x.Placement.Tenancy = in.AvailabilityZone, "default"
		if in.Platform == "Windows" {
			x.Platform = "windows"
		}
		x.Monitoring.State = "disabled"
		if in.Monitoring {
			x.Monitoring.State = "enabled"
		}
		for i, vid := range in.VolumeIDs {
			var b blockDeviceXML
			b.DeviceName = deviceName(i)
			b.EBS.VolumeID, b.EBS.Status, b.EBS.AttachTime = vid, "attached", formatTime(in.Launched)
			x.BlockDeviceMapping = append(x.BlockDeviceMapping, b)
		}
		// One reservation per imported instance, named after it.
		r.Reservations = append(r.Reservations, reservationXML{ReservationID: "r-" + in.ID[2:], OwnerID: in.AccountID,
			Instances: []instanceXML{x}})
	}
	return r, nil
}

func (s *Server) deleteVolume(ctx context.Context, c *call) (response, error) {
	id, err := c.required("VolumeId")
	if err != nil {
		return nil, err
	}
	c.ids = []string{id}
	vols, err := s.st.Volumes(ctx, c.account, []string{id})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf("InvalidVolume.NotFound", "The volume '%s' does not exist.", clip(id))
	}
	if err != nil {
		return nil, err
	}
	switch v := vols[0]; v.State {
	case store.VolumeCreating:
		return nil, errorf("IncorrectState", "The volume %s is still being imported (conversion task %s): cancel the task instead.", v.ID, v.TaskID)
	case store.VolumeInUse:
		return nil, errorf("VolumeInUse", "The volume %s is attached to instance %s.", v.ID, v.InstanceID)
	}
	err = s.st.SetVolumeState(ctx, id, []store.VolumeState{store.VolumeAvailable}, store.VolumeDeleted)
	if errors.Is(err, store.ErrState) {
		return nil, errorf("IncorrectState", "The volume %s is not available.", id)
	}
	if err != nil {
		return nil, err
	}
	// The volume's file is its holder's to remove: this server's now, or
	// another's on its next look at the store (pool.sweep).
	if v := vols[0]; v.Server == "" || v.Server == s.cfg.ServerID {
		s.pool.removeVolume(ctx, id)
	}
	return &returnResponse{Return: true}, nil
}
