package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
	"github.com/diskport/diskport/server/store"
)

// GiB is a volume size unit.
const GiB = 1 << 30

// maxVolumeGiB is EBS's largest volume (16 TiB).
const maxVolumeGiB = 16384

// statusQueued is a new task's status message.
const statusQueued = "Pending: queued"

// diskImage reads one disk image's parameters (PREFIX.Image.Format, ...)
// into a new volume record.
func (s *Server) diskImage(c *call, prefix string, now time.Time) (*store.Volume, error) {
	f, err := c.required(prefix + "Image.Format")
	if err != nil {
		return nil, err
	}
	format, err := oneOf(prefix+"Image.Format", f, manifest.FormatVMDK, manifest.FormatRAW, manifest.FormatVHD, manifest.FormatOVA)
	if err != nil {
		return nil, err
	}
	bytes, err := c.integer(prefix+"Image.Bytes", 1, parts.MaxFileSize, true)
	if err != nil {
		return nil, err
	}
	u, err := c.required(prefix + "Image.ImportManifestUrl")
	if err != nil {
		return nil, err
	}
	if err := s.fetch.checkURL(u); err != nil {
		return nil, errorf("InvalidParameterValue", "Value for parameter %sImage.ImportManifestUrl is invalid: %v.", prefix, err)
	}
	size, err := c.integer(prefix+"Volume.Size", 1, maxVolumeGiB, true)
	if err != nil {
		return nil, err
	}
	if format == manifest.FormatRAW && bytes > size*GiB {
		return nil, errorf("InvalidParameterValue", "Value (%d) for parameter %sVolume.Size is invalid: the %d-byte RAW image needs at least %d GiB.",
			size, prefix, bytes, (bytes+GiB-1)/GiB)
	}
	desc := c.get(prefix + "Description")
	if err := maxLength(prefix+"Description", desc, 255); err != nil {
		return nil, err
	}
	return &store.Volume{ID: newID("vol-", 17), Size: size, State: store.VolumeCreating, Created: now, Description: desc,
		Format: format, Bytes: bytes, ManifestURL: u, Status: store.ConversionActive, StatusMessage: statusQueued}, nil
}

// zone returns the availability zone parameter, or the region's first.
// A zone of another region is refused as EC2 refuses it.
func (s *Server) zone(c *call, name string) (string, error) {
	z := strings.TrimSpace(c.get(name))
	if z == "" {
		return s.cfg.Region + "a", nil
	}
	if err := maxLength(name, z, 64); err != nil {
		return "", err
	}
	if !inRegion(z, s.cfg.Region) {
		return "", errorf("InvalidParameterValue", "Invalid availability zone: [%s]", z)
	}
	return z, nil
}

// inRegion says whether zone is one of region's: the region's name and a
// letter (us-east-1a), or a Local or Wavelength Zone of it
// (us-west-2-lax-1a, us-east-1-wl1-bos-wlz-1).
func inRegion(zone, region string) bool {
	rest, ok := strings.CutPrefix(zone, region)
	if !ok || rest == "" {
		return false
	}
	if len(rest) == 1 {
		return rest[0] >= 'a' && rest[0] <= 'z'
	}
	if rest[0] != '-' || rest[len(rest)-1] == '-' {
		return false
	}
	for _, r := range rest[1:] {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

func (s *Server) importVolume(ctx context.Context, c *call) (response, error) {
	now := s.cfg.Clock().UTC()
	v, err := s.diskImage(c, "", now)
	if err != nil {
		return nil, err
	}
	if v.Description == "" {
		v.Description = c.get("Description")
	}
	if err := maxLength("Description", c.get("Description"), 255); err != nil {
		return nil, err
	}
	zone, err := s.zone(c, "AvailabilityZone")
	if err != nil {
		return nil, err
	}
	v.AvailabilityZone = zone
	t := &store.Task{ID: newID("import-vol-", 8), AccountID: c.account, Kind: store.KindVolume, State: store.TaskActive,
		StatusMessage: statusQueued, Description: c.get("Description"), AvailabilityZone: zone,
		Expiration: now.Add(s.cfg.Expiration), Created: now, Updated: now, Volumes: []*store.Volume{v}}
	if err := s.st.CreateTask(ctx, t, nil); err != nil {
		return nil, err
	}
	c.ids = []string{t.ID, v.ID}
	s.taskLog(t, "created")
	s.pool.kick()
	return &conversionTaskResponse{ConversionTask: taskXML(t)}, nil
}

func (s *Server) importInstance(ctx context.Context, c *call) (response, error) {
	now := s.cfg.Clock().UTC()
	p, err := c.required("Platform")
	if err != nil {
		return nil, err
	}
	platform, err := oneOf("Platform", p, "Windows", "Linux")
	if err != nil {
		return nil, err
	}
	const ls = "LaunchSpecification."
	arch := c.get(ls + "Architecture")
	if arch == "" {
		arch = "x86_64"
	}
	if arch, err = oneOf(ls+"Architecture", arch, "i386", "x86_64", "arm64"); err != nil {
		return nil, err
	}
	itype := c.get(ls + "InstanceType")
	if itype == "" {
		itype = "m1.small"
	}
	if err := maxLength(ls+"InstanceType", itype, 64); err != nil {
		return nil, err
	}
	// boto3 and the SDKs send Monitoring=true; euca2ools sent
	// Monitoring.Enabled=true.
	mon, err := c.boolean(ls + "Monitoring")
	if err != nil {
		return nil, err
	}
	monEnabled, err := c.boolean(ls + "Monitoring.Enabled")
	if err != nil {
		return nil, err
	}
	zone, err := s.zone(c, ls+"Placement.AvailabilityZone")
	if err != nil {
		return nil, err
	}
	if err := maxLength("Description", c.get("Description"), 255); err != nil {
		return nil, err
	}
	idx, err := indexes(c.params, "DiskImage")
	if err != nil {
		return nil, err
	}
	if len(idx) == 0 {
		return nil, errorf("MissingParameter", "The request must contain the parameter DiskImage.1.Image.Format (at least one disk image).")
	}
	if len(idx) > 26 {
		return nil, errorf("InvalidParameterValue", "An instance takes at most 26 disk images, not %d.", len(idx))
	}
	inst := &store.Instance{ID: newID("i-", 17), AccountID: c.account, State: store.InstanceStopped, InstanceType: itype,
		Platform: platform, Architecture: arch, AvailabilityZone: zone, Monitoring: mon || monEnabled, Launched: now}
	t := &store.Task{ID: newID("import-i-", 8), AccountID: c.account, Kind: store.KindInstance, State: store.TaskActive,
		StatusMessage: statusQueued, Description: c.get("Description"), AvailabilityZone: zone, Platform: platform,
		InstanceID: inst.ID, Expiration: now.Add(s.cfg.Expiration), Created: now, Updated: now}
	for i, n := range idx {
		v, err := s.diskImage(c, fmt.Sprintf("DiskImage.%d.", n), now)
		if err != nil {
			return nil, err
		}
		v.Index, v.InstanceID, v.AvailabilityZone = i, inst.ID, zone
		t.Volumes = append(t.Volumes, v)
	}
	inst.TaskID = t.ID
	if err := s.st.CreateTask(ctx, t, inst); err != nil {
		return nil, err
	}
	c.ids = []string{t.ID, inst.ID}
	s.taskLog(t, "created")
	s.pool.kick()
	return &conversionTaskResponse{ConversionTask: taskXML(t)}, nil
}

func (s *Server) describeConversionTasks(ctx context.Context, c *call) (response, error) {
	ids, err := c.list("ConversionTaskId")
	if err != nil {
		return nil, err
	}
	c.ids = ids
	tasks, err := s.st.TasksOf(ctx, c.account, store.LegacyKinds, ids)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf("InvalidConversionTaskId.NotFound", "%s.", notFoundMessage(err, "conversion task"))
	}
	if err != nil {
		return nil, err
	}
	r := &describeConversionTasksResponse{ConversionTasks: []conversionTaskXML{}}
	for _, t := range tasks {
		r.ConversionTasks = append(r.ConversionTasks, taskXML(t))
	}
	return r, nil
}

// notFoundMessage turns a store's "not found: ID" into EC2's wording.
func notFoundMessage(err error, what string) string {
	id := strings.TrimPrefix(err.Error(), store.ErrNotFound.Error()+": ")
	return fmt.Sprintf("The %s ID '%s' does not exist", what, clip(id))
}

func (s *Server) cancelConversionTask(ctx context.Context, c *call) (response, error) {
	id, err := c.required("ConversionTaskId")
	if err != nil {
		return nil, err
	}
	c.ids = []string{id}
	reason := c.get("ReasonMessage")
	if err := maxLength("ReasonMessage", reason, 255); err != nil {
		return nil, err
	}
	if reason == "" {
		reason = "Cancelled by user"
	}
	t, err := s.st.Task(ctx, c.account, id)
	if err == nil && t.Kind != store.KindVolume && t.Kind != store.KindInstance {
		err = store.ErrNotFound // a modern task, cancelled with CancelImportTask or CancelExportTask
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf("InvalidConversionTaskId.NotFound", "The conversion task ID '%s' does not exist.", clip(id))
	}
	if err != nil {
		return nil, err
	}
	if err := s.cancelTask(ctx, c, t, reason, "conversion", legacyState); err != nil {
		return nil, err
	}
	return &returnResponse{Return: true}, nil
}

// cancelTask moves t from active to cancelling, reason its status message,
// and stops its worker. A task no longer active is IncorrectState: "The
// what task ID is STATE and cannot be cancelled.", STATE as show names it.
func (s *Server) cancelTask(ctx context.Context, c *call, t *store.Task, reason, what string, show func(store.TaskState) string) error {
	err := s.st.Transition(ctx, t.ID, []store.TaskState{store.TaskActive}, store.TaskCancelling, reason)
	if errors.Is(err, store.ErrState) {
		return errorf("IncorrectState", "The %s task %s is %s and cannot be cancelled.", what, t.ID, show(s.currentState(ctx, c.account, t)))
	}
	if err != nil {
		return err
	}
	t.State = store.TaskCancelling
	s.taskLog(t, "cancelling")
	s.pool.cancel(t.ID)
	return nil
}

// legacyState names a task state as the conversion and export task APIs
// do: the store's own name (active, cancelling, cancelled, completed).
func legacyState(st store.TaskState) string { return string(st) }

// currentState re-reads a task's state for an error message.
func (s *Server) currentState(ctx context.Context, account string, t *store.Task) store.TaskState {
	if now, err := s.st.Task(ctx, account, t.ID); err == nil {
		return now.State
	}
	return t.State
}

// taskLog logs a task transition.
func (s *Server) taskLog(t *store.Task, event string) {
	s.log.Info("task", "event", event, "task", t.ID, "account", t.AccountID, "kind", t.Kind, "state", t.State)
}
