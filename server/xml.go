package server

import (
	"time"

	"github.com/diskport/diskport/server/store"
)

// The response shapes, with the element names of EC2's API model. Every
// field sits directly under its <item> or named element: AWS's own
// documentation sample nests a <conversionTask> inside <item>, which the
// SDKs parse as an empty task.

type conversionTaskXML struct {
	ConversionTaskID string             `xml:"conversionTaskId"`
	ExpirationTime   string             `xml:"expirationTime"`
	ImportVolume     *importVolumeXML   `xml:"importVolume,omitempty"`
	ImportInstance   *importInstanceXML `xml:"importInstance,omitempty"`
	State            store.TaskState    `xml:"state"`
	StatusMessage    string             `xml:"statusMessage"`
	TagSet           struct{}           `xml:"tagSet"`
}

type importVolumeXML struct {
	AvailabilityZone string     `xml:"availabilityZone"`
	BytesConverted   int64      `xml:"bytesConverted"`
	Description      string     `xml:"description"`
	Image            imageXML   `xml:"image"`
	Volume           volDescXML `xml:"volume"`
}

type importInstanceXML struct {
	Description string                 `xml:"description"`
	InstanceID  string                 `xml:"instanceId"`
	Platform    string                 `xml:"platform"`
	Volumes     []importInstanceVolXML `xml:"volumes>item"`
}

type importInstanceVolXML struct {
	AvailabilityZone string                 `xml:"availabilityZone"`
	BytesConverted   int64                  `xml:"bytesConverted"`
	Description      string                 `xml:"description"`
	Image            imageXML               `xml:"image"`
	Volume           volDescXML             `xml:"volume"`
	Status           store.ConversionStatus `xml:"status"`
	StatusMessage    string                 `xml:"statusMessage"`
}

type imageXML struct {
	Format            string `xml:"format"`
	Size              int64  `xml:"size"`
	ImportManifestURL string `xml:"importManifestUrl"`
}

type volDescXML struct {
	ID   string `xml:"id"`
	Size int64  `xml:"size"`
}

// timeFormat is how times are written (ISO 8601, UTC, milliseconds).
const timeFormat = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func taskXML(t *store.Task) conversionTaskXML {
	x := conversionTaskXML{ConversionTaskID: t.ID, ExpirationTime: t.Expiration.UTC().Format("2006-01-02T15:04:05Z"),
		State: t.State, StatusMessage: t.StatusMessage}
	image := func(v *store.Volume) imageXML {
		return imageXML{Format: v.Format, Size: v.Bytes, ImportManifestURL: v.ManifestURL}
	}
	if t.Kind == store.KindVolume && len(t.Volumes) > 0 {
		v := t.Volumes[0]
		x.ImportVolume = &importVolumeXML{AvailabilityZone: v.AvailabilityZone, BytesConverted: v.BytesConverted,
			Description: t.Description, Image: image(v), Volume: volDescXML{ID: v.ID, Size: v.Size}}
		return x
	}
	x.ImportInstance = &importInstanceXML{Description: t.Description, InstanceID: t.InstanceID, Platform: t.Platform,
		Volumes: []importInstanceVolXML{}}
	for _, v := range t.Volumes {
		x.ImportInstance.Volumes = append(x.ImportInstance.Volumes, importInstanceVolXML{
			AvailabilityZone: v.AvailabilityZone, BytesConverted: v.BytesConverted, Description: v.Description,
			Image: image(v), Volume: volDescXML{ID: v.ID, Size: v.Size}, Status: v.Status, StatusMessage: v.StatusMessage})
	}
	return x
}

type conversionTaskResponse struct {
	meta
	ConversionTask conversionTaskXML `xml:"conversionTask"`
}

type describeConversionTasksResponse struct {
	meta
	ConversionTasks []conversionTaskXML `xml:"conversionTasks>item"`
}

type returnResponse struct {
	meta
	Return bool `xml:"return"`
}

type volumeXML struct {
	VolumeID           string            `xml:"volumeId"`
	Size               int64             `xml:"size"`
	SnapshotID         string            `xml:"snapshotId"`
	AvailabilityZone   string            `xml:"availabilityZone"`
	Status             store.VolumeState `xml:"status"`
	CreateTime         string            `xml:"createTime"`
	Attachments        []attachmentXML   `xml:"attachmentSet>item"`
	VolumeType         string            `xml:"volumeType"`
	Encrypted          bool              `xml:"encrypted"`
	MultiAttachEnabled bool              `xml:"multiAttachEnabled"`
}

type attachmentXML struct {
	VolumeID            string `xml:"volumeId"`
	InstanceID          string `xml:"instanceId"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type describeVolumesResponse struct {
	meta
	Volumes []volumeXML `xml:"volumeSet>item"`
}

type instanceStateXML struct {
	Code int                 `xml:"code"`
	Name store.InstanceState `xml:"name"`
}

type blockDeviceXML struct {
	DeviceName string `xml:"deviceName"`
	EBS        struct {
		VolumeID            string `xml:"volumeId"`
		Status              string `xml:"status"`
		AttachTime          string `xml:"attachTime"`
		DeleteOnTermination bool   `xml:"deleteOnTermination"`
	} `xml:"ebs"`
}

type instanceXML struct {
	InstanceID     string           `xml:"instanceId"`
	ImageID        string           `xml:"imageId"`
	InstanceState  instanceStateXML `xml:"instanceState"`
	PrivateDNSName string           `xml:"privateDnsName"`
	DNSName        string           `xml:"dnsName"`
	AMILaunchIndex int              `xml:"amiLaunchIndex"`
	InstanceType   string           `xml:"instanceType"`
	LaunchTime     string           `xml:"launchTime"`
	Placement      struct {
		AvailabilityZone string `xml:"availabilityZone"`
		Tenancy          string `xml:"tenancy"`
	} `xml:"placement"`
	Platform   string `xml:"platform,omitempty"`
	Monitoring struct {
		State string `xml:"state"`
	} `xml:"monitoring"`
	Architecture       string           `xml:"architecture"`
	RootDeviceType     string           `xml:"rootDeviceType"`
	RootDeviceName     string           `xml:"rootDeviceName"`
	BlockDeviceMapping []blockDeviceXML `xml:"blockDeviceMapping>item"`
	VirtualizationType string           `xml:"virtualizationType"`
	Hypervisor         string           `xml:"hypervisor"`
}

type reservationXML struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	GroupSet      struct{}      `xml:"groupSet"`
	Instances     []instanceXML `xml:"instancesSet>item"`
}

type describeInstancesResponse struct {
	meta
	Reservations []reservationXML `xml:"reservationSet>item"`
}

// deviceName is the device of an instance's i-th volume: /dev/sda1 for
// the root volume, then /dev/sdb, /dev/sdc, ...
func deviceName(i int) string {
	if i == 0 {
		return "/dev/sda1"
	}
	return "/dev/sd" + string(rune('a'+min(i, 25)))
}

// instanceStateCode is EC2's numeric code of an instance state.
func instanceStateCode(state store.InstanceState) int {
	switch state {
	case "pending":
		return 0
	case "running":
		return 16
	case "terminated":
		return 48
	case "stopping":
		return 64
	}
	return 80 // stopped
}
