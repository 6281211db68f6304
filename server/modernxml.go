package server

import (
	"strconv"
	"strings"

	"github.com/diskport/diskport/server/store"
)

// The response shapes of the modern VM Import/Export API, with the
// element names of EC2's API model (botocore's ec2 2016-11-15).

type tagXML struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type userBucketXML struct {
	S3Bucket string `xml:"s3Bucket"`
	S3Key    string `xml:"s3Key"`
}

// snapshotDetailXML is a SnapshotTaskDetail (ImportSnapshot) or a
// SnapshotDetail (ImportImage: with deviceName).
type snapshotDetailXML struct {
	Description   string         `xml:"description,omitempty"`
	DeviceName    string         `xml:"deviceName,omitempty"`
	DiskImageSize *float64       `xml:"diskImageSize,omitempty"`
	Encrypted     *bool          `xml:"encrypted,omitempty"`
	Format        string         `xml:"format,omitempty"`
	Progress      string         `xml:"progress,omitempty"`
	SnapshotID    string         `xml:"snapshotId,omitempty"`
	Status        string         `xml:"status"`
	StatusMessage string         `xml:"statusMessage,omitempty"`
	URL           string         `xml:"url,omitempty"`
	UserBucket    *userBucketXML `xml:"userBucket,omitempty"`
}

type importSnapshotTaskXML struct {
	Description        string            `xml:"description,omitempty"`
	ImportTaskID       string            `xml:"importTaskId"`
	SnapshotTaskDetail snapshotDetailXML `xml:"snapshotTaskDetail"`
	TagSet             []tagXML          `xml:"tagSet>item"`
}

type importSnapshotResponse struct {
	meta
	importSnapshotTaskXML
}

type describeImportSnapshotTasksResponse struct {
	meta
	Tasks     []importSnapshotTaskXML `xml:"importSnapshotTaskSet>item"`
	NextToken string                  `xml:"nextToken,omitempty"`
}

type cancelImportTaskResponse struct {
	meta
	ImportTaskID  string `xml:"importTaskId"`
	PreviousState string `xml:"previousState"`
	State         string `xml:"state"`
}

// modernState is a modern import task's state as the API names it:
// active, deleting (being cancelled), deleted (cancelled or failed),
// completed.
func modernState(s store.TaskState) string {
	switch s {
	case store.TaskCancelling:
		return "deleting"
	case store.TaskCancelled:
		return "deleted"
	}
	return string(s)
}

// modernMessage is a modern import task's status message: the worker's
// steps as AWS names them (pending, validating, converting), or the
// reason a task ended deleted.
func modernMessage(t *store.Task) string {
	switch {
	case t.State == store.TaskCompleted:
		return ""
	case t.State == store.TaskActive && strings.HasPrefix(t.StatusMessage, "Progress:"):
		return "converting"
	}
	return t.StatusMessage
}

// modernProgress is a task's or a disk's progress in percent, present
// while it is not completed (Talos dereferences it): 3 while pending or
// validating, then 10 to 95 as the disks convert.
func modernProgress(t *store.Task, vols []*store.Volume) string {
	if t.State == store.TaskCompleted {
		return ""
	}
	var done, total int64
	for _, v := range vols {
		size := v.VirtualSize // what the conversion counts to
		if size == 0 {
			size = max(v.Size, 1) * GiB // not opened yet (an OVA's added disk: its capacity)
		}
		switch {
		case v.Status == store.ConversionCompleted:
			done += size
		case v.Size > 0:
			done += min(v.BytesConverted, size)
		}
		total += size
	}
	if done == 0 {
		return "3"
	}
	return strconv.FormatInt(10+85*min(done, total)/max(total, 1), 10)
}

// snapshotDetail is one disk of a modern import task.
func snapshotDetail(t *store.Task, v *store.Volume) snapshotDetailXML {
	x := snapshotDetailXML{Description: v.Description, Format: v.Format, Status: modernState(t.State),
		StatusMessage: modernMessage(t), Progress: modernProgress(t, []*store.Volume{v})}
	if v.Bytes > 0 {
		size := float64(v.Bytes)
		x.DiskImageSize = &size
	}
	if b, k, ok := splitS3URL(v.ManifestURL); ok {
		x.UserBucket = &userBucketXML{S3Bucket: b, S3Key: k}
	} else {
		x.URL = redact(v.ManifestURL)
	}
	if t.State == store.TaskCompleted {
		x.SnapshotID = v.ID
	}
	return x
}

// importSnapshotTask is an ImportSnapshot task as its Describe item.
func importSnapshotTask(t *store.Task, tags []store.Tag) importSnapshotTaskXML {
	x := importSnapshotTaskXML{Description: t.Description, ImportTaskID: t.ID, TagSet: tagSet(tags, t.ID)}
	if len(t.Volumes) > 0 {
		x.SnapshotTaskDetail = snapshotDetail(t, t.Volumes[0])
		encrypted := false
		x.SnapshotTaskDetail.Encrypted = &encrypted
	}
	return x
}

// tagSet is the tags of resource id among tags.
func tagSet(tags []store.Tag, id string) []tagXML {
	out := []tagXML{}
	for _, t := range tags {
		if t.ResourceID == id {
			out = append(out, tagXML{t.Key, t.Value})
		}
	}
	return out
}
