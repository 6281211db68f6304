package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/diskport/diskport/server/store"
)

type s3ExportLocationXML struct {
	S3Bucket string `xml:"s3Bucket"`
	S3Prefix string `xml:"s3Prefix"`
}

type exportImageTaskXML struct {
	Description       string              `xml:"description,omitempty"`
	DiskImageFormat   string              `xml:"diskImageFormat,omitempty"`
	ExportImageTaskID string              `xml:"exportImageTaskId"`
	ImageID           string              `xml:"imageId"`
	Progress          string              `xml:"progress,omitempty"`
	RoleName          string              `xml:"roleName,omitempty"`
	S3ExportLocation  s3ExportLocationXML `xml:"s3ExportLocation"`
	Status            string              `xml:"status"`
	StatusMessage     string              `xml:"statusMessage,omitempty"`
	TagSet            []tagXML            `xml:"tagSet>item"`
}

type exportImageResponse struct {
	meta
	exportImageTaskXML
}

type describeExportImageTasksResponse struct {
	meta
	Tasks     []exportImageTaskXML `xml:"exportImageTaskSet>item"`
	NextToken string               `xml:"nextToken,omitempty"`
}

type exportTaskXML struct {
	ExportTaskID   string `xml:"exportTaskId"`
	Description    string `xml:"description"`
	State          string `xml:"state"`
	StatusMessage  string `xml:"statusMessage"`
	InstanceExport struct {
		InstanceID        string `xml:"instanceId"`
		TargetEnvironment string `xml:"targetEnvironment"`
	} `xml:"instanceExport"`
	ExportToS3 struct {
		DiskImageFormat string `xml:"diskImageFormat"`
		ContainerFormat string `xml:"containerFormat,omitempty"`
		S3Bucket        string `xml:"s3Bucket"`
		S3Key           string `xml:"s3Key"`
	} `xml:"exportToS3"`
	TagSet []tagXML `xml:"tagSet>item"`
}

type exportTaskResponse struct {
	meta
	ExportTask exportTaskXML `xml:"exportTask"`
}

type describeExportTasksResponse struct {
	meta
	Tasks []exportTaskXML `xml:"exportTaskSet>item"`
}

// exportProgress is an active export's percentage, from its worker's
// "Progress: N%" status message.
func exportProgress(t *store.Task) string {
	if t.State == store.TaskCompleted {
		return ""
	}
	var pct int
	if _, err := fmt.Sscanf(t.StatusMessage, "Progress: %d%%", &pct); err != nil {
		return "0"
	}
	return fmt.Sprint(pct)
}

func exportImageTask(t *store.Task, tags []store.Tag) exportImageTaskXML {
	return exportImageTaskXML{Description: t.Description, DiskImageFormat: t.ExportFormat, ExportImageTaskID: t.ID, ImageID: t.ImageID,
		Progress: exportProgress(t), RoleName: t.RoleName, S3ExportLocation: s3ExportLocationXML{t.S3Bucket, t.S3Prefix},
		Status: modernState(t.State), StatusMessage: modernMessage(t), TagSet: tagSet(tags, t.ID)}
}

func exportTask(t *store.Task, tags []store.Tag) exportTaskXML {
	x := exportTaskXML{ExportTaskID: t.ID, Description: t.Description, State: string(t.State), StatusMessage: t.StatusMessage, TagSet: tagSet(tags, t.ID)}
	if t.State == store.TaskCompleted {
		x.StatusMessage = ""
	}
	x.InstanceExport.InstanceID, x.InstanceExport.TargetEnvironment = t.InstanceID, t.ExportTarget
	x.ExportToS3.DiskImageFormat, x.ExportToS3.ContainerFormat = t.ExportFormat, t.ExportContainer
	x.ExportToS3.S3Bucket, x.ExportToS3.S3Key = t.S3Bucket, exportKey(t)
	return x
}

// exportLocation reads the bucket and prefix of an export and checks the
// server has an S3 endpoint to write them to.
func (s *Server) exportLocation(c *call, bucketParam, prefixParam string) (string, string, error) {
	bucket, err := c.required(bucketParam)
	if err != nil {
		return "", "", err
	}
	prefix := c.get(prefixParam)
	if err := maxLength(prefixParam, prefix, 900); err != nil {
		return "", "", err
	}
	if s.cfg.S3Endpoint == "" {
		return "", "", errorf("InvalidParameterValue", "This server writes no S3 buckets (it was started without --s3-endpoint).")
	}
	return bucket, prefix, nil
}

// exportImage answers ExportImage: the image's root device, written as
// VMDK (streamOptimized), VHD (dynamic) or RAW to
// S3Bucket/S3Prefix+task-id.format on the server's S3 endpoint.
func (s *Server) exportImage(ctx context.Context, c *call) (response, error) {
	now := s.cfg.Clock().UTC()
	prev, token, hash, err := s.earlierTask(ctx, c)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		return &exportImageResponse{exportImageTaskXML: exportImageTask(prev, nil)}, nil
	}
	id, err := c.required("ImageId")
	if err != nil {
		return nil, err
	}
	if err := checkIDs([]string{id}, "ami-", "InvalidAMIID.Malformed"); err != nil {
		return nil, err
	}
	f, err := c.required("DiskImageFormat")
	if err != nil {
		return nil, err
	}
	if f, err = oneOf("DiskImageFormat", f, "VMDK", "RAW", "VHD"); err != nil {
		return nil, err
	}
	bucket, prefix, err := s.exportLocation(c, "S3ExportLocation.S3Bucket", "S3ExportLocation.S3Prefix")
	if err != nil {
		return nil, err
	}
	if err := roleName(c); err != nil {
		return nil, err
	}
	if _, err := s.st.Images(ctx, c.account, []string{id}); errors.Is(err, store.ErrNotFound) {
		return nil, notFound(err, "InvalidAMIID.NotFound", "image id")
	} else if err != nil {
		return nil, err
	}
	t := &store.Task{ID: newID("export-ami-", 17), AccountID: c.account, Kind: store.KindExportImage, State: store.TaskActive,
		StatusMessage: statusPending, Description: c.get("Description"), ClientToken: token, ParamsHash: hash, ImageID: id,
		ExportFormat: strings.ToLower(f), S3Bucket: bucket, S3Prefix: prefix, RoleName: c.get("RoleName"),
		Expiration: now.Add(s.cfg.Expiration), Created: now, Updated: now}
	if err := maxLength("Description", t.Description, 255); err != nil {
		return nil, err
	}
	if t, err = s.createModernTask(ctx, c, t, "export-image-task"); err != nil {
		return nil, err
	}
	return &exportImageResponse{exportImageTaskXML: exportImageTask(t, t.Tags)}, nil
}

// exportTasks returns the account's listed export tasks of kind with the
// ids idParam.N names (all when none), filtered by Filter.N (tags only),
// and their tags.
func (s *Server) exportTasks(ctx context.Context, c *call, idParam string, kind store.TaskKind) ([]*store.Task, []store.Tag, error) {
	ids, err := c.list(idParam)
	if err != nil {
		return nil, nil, err
	}
	fs, err := filters(c, "Filter", "tag:", "tag-key")
	if err != nil {
		return nil, nil, err
	}
	c.ids = ids
	tasks, err := s.st.TasksOf(ctx, c.account, []store.TaskKind{kind}, ids)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, notFound(err, "InvalidExportTaskID.NotFound", "export task")
	}
	if err != nil {
		return nil, nil, err
	}
	tags, err := s.st.Tags(ctx, c.account, taskIDs(tasks))
	if err != nil {
		return nil, nil, err
	}
	var out []*store.Task
	for _, t := range tasks {
		if (len(ids) > 0 || s.listed(t)) && match(fs, tags, t.ID, func(string) []string { return nil }) {
			out = append(out, t)
		}
	}
	return out, tags, nil
}

func (s *Server) describeExportImageTasks(ctx context.Context, c *call) (response, error) {
	list, tags, err := s.exportTasks(ctx, c, "ExportImageTaskId", store.KindExportImage)
	if err != nil {
		return nil, err
	}
	page, next, err := page(c, list, func(t *store.Task) string { return t.ID }, 1)
	if err != nil {
		return nil, err
	}
	r := &describeExportImageTasksResponse{Tasks: []exportImageTaskXML{}, NextToken: next}
	for _, t := range page {
		r.Tasks = append(r.Tasks, exportImageTask(t, tags))
	}
	return r, nil
}

// exportFormats are the DiskImageFormats each TargetEnvironment takes,
// as AWS refuses the others (RAW for every one of them).
var exportFormats = map[string][]string{"vmware": {"vmdk"}, "citrix": {"vhd"}, "microsoft": {"vhd"}}

// createInstanceExportTask answers CreateInstanceExportTask: an
// imported instance's root volume, as an OVA (a streamOptimized VMDK in
// it) or a bare VMDK for vmware, a VHD for citrix and microsoft.
func (s *Server) createInstanceExportTask(ctx context.Context, c *call) (response, error) {
	now := s.cfg.Clock().UTC()
	inst, err := c.required("InstanceId")
	if err != nil {
		return nil, err
	}
	target, err := c.required("TargetEnvironment")
	if err != nil {
		return nil, err
	}
	if target, err = oneOf("TargetEnvironment", target, "citrix", "vmware", "microsoft"); err != nil {
		return nil, err
	}
	const e = "ExportToS3."
	format := strings.ToLower(c.get(e + "DiskImageFormat"))
	if format == "" {
		format = exportFormats[target][0]
	}
	if _, err := oneOf(e+"DiskImageFormat", format, "vmdk", "raw", "vhd"); err != nil {
		return nil, err
	}
	valid := exportFormats[target]
	if !strings.Contains(strings.Join(valid, ","), format) {
		return nil, errorf("Unsupported", "diskImageFormat '%s' not supported for targetEnvironment '%s'. Valid value(s): ['%s']", format, target, strings.Join(valid, "', '"))
	}
	container := strings.ToLower(c.get(e + "ContainerFormat"))
	if container != "" && container != "ova" {
		return nil, errorf("InvalidParameterValue", "Value (%s) for parameter %sContainerFormat is invalid: want ova.", clip(container), e)
	}
	if container == "ova" && format != "vmdk" {
		return nil, errorf("Unsupported", "containerFormat 'ova' not supported for diskImageFormat '%s'. Valid value(s): ['vmdk']", format)
	}
	bucket, prefix, err := s.exportLocation(c, e+"S3Bucket", e+"S3Prefix")
	if err != nil {
		return nil, err
	}
	insts, err := s.st.Instances(ctx, c.account, []string{inst})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(err, "InvalidInstanceID.NotFound", "instance ID")
	}
	if err != nil {
		return nil, err
	}
	if insts[0].State != store.InstanceStopped || len(insts[0].VolumeIDs) == 0 {
		return nil, errorf("IncorrectInstanceState", "The instance %s is %s or has no volume yet: export a stopped instance whose import completed.", inst, insts[0].State)
	}
	t := &store.Task{ID: newID("export-i-", 17), AccountID: c.account, Kind: store.KindExportInstance, State: store.TaskActive,
		StatusMessage: statusPending, Description: c.get("Description"), InstanceID: inst, ExportFormat: format, ExportContainer: container,
		ExportTarget: target, S3Bucket: bucket, S3Prefix: prefix, Expiration: now.Add(s.cfg.Expiration), Created: now, Updated: now}
	if err := maxLength("Description", t.Description, 255); err != nil {
		return nil, err
	}
	if t, err = s.createModernTask(ctx, c, t, "export-instance-task"); err != nil {
		return nil, err
	}
	return &exportTaskResponse{ExportTask: exportTask(t, t.Tags)}, nil
}

func (s *Server) describeExportTasks(ctx context.Context, c *call) (response, error) {
	tasks, tags, err := s.exportTasks(ctx, c, "ExportTaskId", store.KindExportInstance)
	if err != nil {
		return nil, err
	}
	r := &describeExportTasksResponse{Tasks: []exportTaskXML{}}
	for _, t := range tasks {
		r.Tasks = append(r.Tasks, exportTask(t, tags))
	}
	return r, nil
}

// cancelExportTask answers CancelExportTask for both kinds of export: the
// worker stops, aborts its upload and removes any object it stored.
func (s *Server) cancelExportTask(ctx context.Context, c *call) (response, error) {
	id, err := c.required("ExportTaskId")
	if err != nil {
		return nil, err
	}
	c.ids = []string{id}
	tasks, err := s.st.TasksOf(ctx, c.account, []store.TaskKind{store.KindExportImage, store.KindExportInstance}, []string{id})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(err, "InvalidExportTaskID.NotFound", "export task")
	}
	if err != nil {
		return nil, err
	}
	if err := s.cancelTask(ctx, c, tasks[0], "Cancelled by user", "export", legacyState); err != nil {
		return nil, err
	}
	return &returnResponse{Return: true}, nil
}
