package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/diskport/diskport/server/store"
)

type imageBlockDeviceXML struct {
	DeviceName string `xml:"deviceName"`
	EBS        struct {
		SnapshotID          string `xml:"snapshotId"`
		VolumeSize          int64  `xml:"volumeSize"`
		DeleteOnTermination bool   `xml:"deleteOnTermination"`
		VolumeType          string `xml:"volumeType"`
		Encrypted           bool   `xml:"encrypted"`
	} `xml:"ebs"`
}

type amiXML struct {
	ImageID            string                `xml:"imageId"`
	ImageLocation      string                `xml:"imageLocation"`
	ImageState         string                `xml:"imageState"`
	ImageOwnerID       string                `xml:"imageOwnerId"`
	CreationDate       string                `xml:"creationDate"`
	IsPublic           bool                  `xml:"isPublic"`
	Architecture       string                `xml:"architecture"`
	ImageType          string                `xml:"imageType"`
	Platform           string                `xml:"platform,omitempty"`
	PlatformDetails    string                `xml:"platformDetails"`
	Name               string                `xml:"name"`
	Description        string                `xml:"description,omitempty"`
	RootDeviceType     string                `xml:"rootDeviceType"`
	RootDeviceName     string                `xml:"rootDeviceName"`
	BlockDeviceMapping []imageBlockDeviceXML `xml:"blockDeviceMapping>item"`
	VirtualizationType string                `xml:"virtualizationType"`
	Hypervisor         string                `xml:"hypervisor"`
	EnaSupport         bool                  `xml:"enaSupport"`
	BootMode           string                `xml:"bootMode,omitempty"`
	TagSet             []tagXML              `xml:"tagSet>item"`
}

type describeImagesResponse struct {
	meta
	Images []amiXML `xml:"imagesSet>item"`
}

type registerImageResponse struct {
	meta
	ImageID string `xml:"imageId"`
}

// registerImage answers RegisterImage of an EBS-backed image: its block
// devices name the account's snapshots (an imported disk's, typically:
// osbuild, Talos and coreos-assembler register their ImportSnapshot's).
func (s *Server) registerImage(ctx context.Context, c *call) (response, error) {
	now := s.cfg.Clock().UTC()
	name, err := c.required("Name")
	if err != nil {
		return nil, err
	}
	if len(name) < 3 || len(name) > 128 || strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("()[] ./-'@_", r))
	}) >= 0 {
		return nil, errorf("InvalidAMIName.Malformed", "AMI names must be 3 to 128 letters, digits and ()[] ./-'@_ characters, not '%s'.", clip(name))
	}
	if c.get("ImageLocation") != "" {
		return nil, errorf("InvalidParameterValue", "diskport registers EBS-backed images only: give BlockDeviceMapping.N.Ebs.SnapshotId, not ImageLocation.")
	}
	img := &store.Image{ID: newID("ami-", 17), AccountID: c.account, Name: name, Description: c.get("Description"),
		State: store.ImageAvailable, Created: now, VirtualizationType: "hvm", Architecture: "x86_64"}
	if err := maxLength("Description", img.Description, 255); err != nil {
		return nil, err
	}
	if a := c.get("Architecture"); a != "" {
		if img.Architecture, err = oneOf("Architecture", a, "i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac"); err != nil {
			return nil, err
		}
	}
	if v := c.get("VirtualizationType"); v != "" {
		if img.VirtualizationType, err = oneOf("VirtualizationType", v, "hvm", "paravirtual"); err != nil {
			return nil, err
		}
	}
	if b := c.get("BootMode"); b != "" {
		if img.BootMode, err = oneOf("BootMode", b, "legacy-bios", "uefi", "uefi-preferred"); err != nil {
			return nil, err
		}
	}
	if img.EnaSupport, err = c.boolean("EnaSupport"); err != nil {
		return nil, err
	}
	if img.Devices, err = s.blockDevices(ctx, c); err != nil {
		return nil, err
	}
	img.RootDeviceName = c.get("RootDeviceName")
	if img.RootDeviceName == "" {
		img.RootDeviceName = img.Devices[0].DeviceName
	}
	if !slices.ContainsFunc(img.Devices, func(d store.BlockDevice) bool { return d.DeviceName == img.RootDeviceName && d.SnapshotID != "" }) {
		return nil, errorf("InvalidBlockDeviceMapping", "The root device %s is not one of the block devices with a snapshot.", clip(img.RootDeviceName))
	}
	tags, err := tagSpecs(c, "image", img.ID)
	if err != nil {
		return nil, err
	}
	err = s.st.CreateImage(ctx, img)
	switch {
	case errors.Is(err, store.ErrExists):
		return nil, errorf("InvalidAMIName.Duplicate", "AMI name %s is already in use by an image of this account.", clip(name))
	case errors.Is(err, store.ErrNotFound):
		return nil, notFound(err, "InvalidSnapshot.NotFound", "snapshot")
	case err != nil:
		return nil, err
	}
	if len(tags) > 0 {
		if err := s.st.CreateTags(ctx, c.account, tags); err != nil {
			return nil, err
		}
	}
	c.ids = []string{img.ID}
	return &registerImageResponse{ImageID: img.ID}, nil
}

// blockDevices reads BlockDeviceMapping.N of RegisterImage: each an EBS
// device of one of the account's snapshots, at least its size.
func (s *Server) blockDevices(ctx context.Context, c *call) ([]store.BlockDevice, error) {
	idx, err := indexes(c.params, "BlockDeviceMapping")
	if err != nil {
		return nil, err
	}
	var devs []store.BlockDevice
	for _, n := range idx {
		p := fmt.Sprintf("BlockDeviceMapping.%d.", n)
		if c.get(p+"NoDevice") != "" || c.get(p+"VirtualName") != "" {
			continue // an instance store or a suppressed device: nothing to record
		}
		d := store.BlockDevice{DeviceName: c.get(p + "DeviceName"), SnapshotID: c.get(p + "Ebs.SnapshotId"), VolumeType: "gp2", DeleteOnTermination: true}
		if d.DeviceName == "" {
			return nil, errorf("MissingParameter", "The request must contain the parameter %sDeviceName.", p)
		}
		if d.SnapshotID == "" {
			return nil, errorf("InvalidBlockDeviceMapping", "%sEbs.SnapshotId is required: diskport makes no empty volumes.", p)
		}
		snaps, err := s.st.Snapshots(ctx, c.account, []string{d.SnapshotID})
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound(err, "InvalidSnapshot.NotFound", "snapshot")
		}
		if err != nil {
			return nil, err
		}
		if d.VolumeSize, err = c.integer(p+"Ebs.VolumeSize", 1, maxVolumeGiB, false); err != nil {
			return nil, err
		}
		if d.VolumeSize == 0 {
			d.VolumeSize = snaps[0].Size
		}
		if d.VolumeSize < snaps[0].Size {
			return nil, errorf("InvalidBlockDeviceMapping", "Volume of size %d GiB is smaller than snapshot '%s', expect size >= %d.", d.VolumeSize, d.SnapshotID, snaps[0].Size)
		}
		if v := c.get(p + "Ebs.VolumeType"); v != "" {
			d.VolumeType = v
		}
		if v := c.get(p + "Ebs.DeleteOnTermination"); v != "" {
			d.DeleteOnTermination = v == "true"
		}
		devs = append(devs, d)
	}
	if len(devs) == 0 {
		return nil, errorf("InvalidBlockDeviceMapping", "Give at least one BlockDeviceMapping.N with Ebs.SnapshotId.")
	}
	return devs, nil
}

func (s *Server) describeImages(ctx context.Context, c *call) (response, error) {
	ids, err := c.list("ImageId")
	if err != nil {
		return nil, err
	}
	if err := checkIDs(ids, "ami-", "InvalidAMIID.Malformed"); err != nil {
		return nil, err
	}
	c.ids = ids
	fs, err := filters(c, "Filter", "image-id", "name", "state", "architecture", "owner-id", "description", "root-device-name",
		"virtualization-type", "block-device-mapping.snapshot-id", "image-type", "is-public", "tag:", "tag-key")
	if err != nil {
		return nil, err
	}
	mine, err := owned(c, "Owner")
	if err != nil {
		return nil, err
	}
	r := &describeImagesResponse{Images: []amiXML{}}
	if !mine {
		return r, nil
	}
	imgs, err := s.st.Images(ctx, c.account, ids)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(err, "InvalidAMIID.NotFound", "image id")
	}
	if err != nil {
		return nil, err
	}
	var tags []store.Tag
	if len(imgs) > 0 {
		iids := make([]string, len(imgs))
		for i, img := range imgs {
			iids[i] = img.ID
		}
		if tags, err = s.st.Tags(ctx, c.account, iids); err != nil {
			return nil, err
		}
	}
	for _, img := range imgs {
		x := imageXMLOf(img, tags)
		ok := match(fs, tags, img.ID, func(name string) []string {
			switch name {
			case "image-id":
				return []string{x.ImageID}
			case "name":
				return []string{x.Name}
			case "state":
				return []string{x.ImageState}
			case "architecture":
				return []string{x.Architecture}
			case "owner-id":
				return []string{x.ImageOwnerID}
			case "description":
				return []string{x.Description}
			case "root-device-name":
				return []string{x.RootDeviceName}
			case "virtualization-type":
				return []string{x.VirtualizationType}
			case "image-type":
				return []string{x.ImageType}
			case "is-public":
				return []string{"false"}
			case "block-device-mapping.snapshot-id":
				var out []string
				for _, d := range img.Devices {
					out = append(out, d.SnapshotID)
				}
				return out
			}
			return nil
		})
		if ok {
			r.Images = append(r.Images, x)
		}
	}
	return r, nil
}

// imageXMLOf is an image as DescribeImages lists it.
func imageXMLOf(img *store.Image, tags []store.Tag) amiXML {
	x := amiXML{ImageID: img.ID, ImageLocation: img.AccountID + "/" + img.Name, ImageState: string(img.State), ImageOwnerID: img.AccountID,
		CreationDate: formatTime(img.Created), Architecture: img.Architecture, ImageType: "machine", PlatformDetails: "Linux/UNIX",
		Name: img.Name, Description: img.Description, RootDeviceType: "ebs", RootDeviceName: img.RootDeviceName,
		BlockDeviceMapping: []imageBlockDeviceXML{}, VirtualizationType: img.VirtualizationType, Hypervisor: "xen",
		EnaSupport: img.EnaSupport, BootMode: img.BootMode, TagSet: tagSet(tags, img.ID)}
	if strings.EqualFold(img.Platform, "windows") {
		x.Platform, x.PlatformDetails = "windows", "Windows"
	}
	for _, d := range img.Devices {
		var b imageBlockDeviceXML
		b.DeviceName = d.DeviceName
		b.EBS.SnapshotID, b.EBS.VolumeSize, b.EBS.DeleteOnTermination, b.EBS.VolumeType = d.SnapshotID, d.VolumeSize, d.DeleteOnTermination, d.VolumeType
		x.BlockDeviceMapping = append(x.BlockDeviceMapping, b)
	}
	return x
}

func (s *Server) deregisterImage(ctx context.Context, c *call) (response, error) {
	id, err := c.required("ImageId")
	if err != nil {
		return nil, err
	}
	c.ids = []string{id}
	if err := checkIDs(c.ids, "ami-", "InvalidAMIID.Malformed"); err != nil {
		return nil, err
	}
	err = s.st.DeregisterImage(ctx, c.account, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(err, "InvalidAMIID.NotFound", "image id")
	}
	if err != nil {
		return nil, err
	}
	return &returnResponse{Return: true}, nil
}
