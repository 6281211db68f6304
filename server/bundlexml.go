package server

import (
	"encoding/xml"
	"strconv"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/server/store"
)

// bundleTaskXML is the wire shape of a bundle task (API BundleTask):
// bundleInstanceTask in BundleInstance's and CancelBundleTask's answers,
// an item of DescribeBundleTasks' bundleInstanceTasksSet. The error
// follows storage, and only for a failed task.
type bundleTaskXML struct {
	InstanceID string          `xml:"instanceId"`
	BundleID   string          `xml:"bundleId"`
	State      bundle.State    `xml:"state"`
	StartTime  string          `xml:"startTime"`
	UpdateTime string          `xml:"updateTime"`
	Progress   string          `xml:"progress"`
	Storage    s3StorageXML    `xml:"storage>S3"`
	Error      *bundleErrorXML `xml:"error,omitempty"`
}

// s3StorageXML is a bundle task's Storage.S3 as the API writes it.
type s3StorageXML struct {
	Bucket                string `xml:"bucket"`
	Prefix                string `xml:"prefix"`
	AWSAccessKeyID        string `xml:"AWSAccessKeyId,omitempty"`
	UploadPolicy          string `xml:"uploadPolicy,omitempty"`
	UploadPolicySignature string `xml:"uploadPolicySignature,omitempty"`
}

type bundleErrorXML struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

// bundleTaskOf shapes a bundle.Task (a Runner's) for the wire.
func bundleTaskOf(t bundle.Task) bundleTaskXML {
	x := bundleTaskXML{InstanceID: t.InstanceID, BundleID: t.BundleID, State: t.State,
		StartTime: formatTime(t.StartTime), UpdateTime: formatTime(t.UpdateTime), Progress: strconv.Itoa(t.Progress) + "%",
		Storage: s3StorageXML{Bucket: t.Storage.Bucket, Prefix: t.Storage.Prefix, AWSAccessKeyID: t.Storage.AWSAccessKeyID,
			UploadPolicy: t.Storage.UploadPolicy, UploadPolicySignature: t.Storage.UploadPolicySignature}}
	if t.Error != nil {
		x.Error = &bundleErrorXML{Code: t.Error.Code, Message: t.Error.Message}
	}
	return x
}

// bundleXML shapes a stored bundle task for the wire.
func bundleXML(b *store.BundleTask) bundleTaskXML {
	t := bundle.Task{InstanceID: b.InstanceID, BundleID: b.ID, State: bundle.State(b.State), StartTime: b.Started,
		UpdateTime: b.Updated, Progress: b.Progress, Storage: bundle.S3Storage{Bucket: b.Bucket, Prefix: b.Prefix,
			AWSAccessKeyID: b.UploadAccessKey, UploadPolicy: b.UploadPolicy, UploadPolicySignature: b.UploadPolicySignature}}
	if b.ErrorCode != "" {
		t.Error = &bundle.TaskError{Code: b.ErrorCode, Message: b.ErrorMessage}
	}
	return bundleTaskOf(t)
}

type bundleTaskResponse struct {
	meta
	Task bundleTaskXML `xml:"bundleInstanceTask"`
}

type describeBundleTasksResponse struct {
	meta
	Tasks []bundleTaskXML `xml:"bundleInstanceTasksSet>item"`
}

// BundleInstanceResponse returns the BundleInstance response document
// carrying t, indented, as `diskport bundle --task-xml` prints a task it
// ran itself.
func BundleInstanceResponse(t bundle.Task, requestID string) ([]byte, error) {
	type response struct {
		XMLName   xml.Name      `xml:"BundleInstanceResponse"`
		Xmlns     string        `xml:"xmlns,attr"`
		RequestID string        `xml:"requestId"`
		Task      bundleTaskXML `xml:"bundleInstanceTask"`
	}
	b, err := xml.MarshalIndent(response{Xmlns: Namespace, RequestID: requestID, Task: bundleTaskOf(t)}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}
