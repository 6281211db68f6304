package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/diskport/diskport/server/store"
)

// importSnapshot answers ImportSnapshot: a task that converts one disk
// image, read from the server's S3 endpoint (UserBucket, s3:// Url) or an
// allowed https:// Url, into a snapshot (DATA/snapshots/snap-ID.raw).
func (s *Server) importSnapshot(ctx context.Context, c *call) (response, error) {
	now := s.cfg.Clock().UTC()
	prev, token, hash, err := s.earlierTask(ctx, c)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		return s.importSnapshotAnswer(ctx, c, prev)
	}
	if err := encryption(c); err != nil {
		return nil, err
	}
	if err := roleName(c); err != nil {
		return nil, err
	}
	desc := c.get("Description")
	if err := maxLength("Description", desc, 255); err != nil {
		return nil, err
	}
	v, err := s.diskContainer(c, "DiskContainer.", now, snapshotFormats...)
	if err != nil {
		return nil, err
	}
	t := &store.Task{ID: newID("import-snap-", 17), AccountID: c.account, Kind: store.KindSnapshot, State: store.TaskActive,
		StatusMessage: statusPending, Description: desc, AvailabilityZone: v.AvailabilityZone, ClientToken: token, ParamsHash: hash,
		Expiration: now.Add(s.cfg.Expiration), Created: now, Updated: now, Volumes: []*store.Volume{v}}
	if t, err = s.createModernTask(ctx, c, t, "import-snapshot-task"); err != nil {
		return nil, err
	}
	return s.importSnapshotAnswer(ctx, c, t)
}

// createModernTask reads the tags of TagSpecification.N for a resource of
// type tagType, stores t, a new modern task, with them and wakes the
// workers, and returns it; or, when a concurrent call with the same
// ClientToken stored its task first, that one.
func (s *Server) createModernTask(ctx context.Context, c *call, t *store.Task, tagType string) (*store.Task, error) {
	var err error
	if t.Tags, err = tagSpecs(c, tagType, t.ID); err != nil {
		return nil, err
	}
	err = s.st.CreateTask(ctx, t, nil)
	if errors.Is(err, store.ErrExists) && t.ClientToken != "" {
		prev, err2 := s.idempotent(ctx, c, t.ClientToken, t.ParamsHash)
		if err2 != nil {
			return nil, err2
		}
		if prev != nil {
			return prev, nil
		}
	}
	if err != nil {
		return nil, err
	}
	c.ids = []string{t.ID}
	for _, v := range t.Volumes {
		c.ids = append(c.ids, v.ID)
	}
	s.taskLog(t, "created")
	s.pool.kick()
	return t, nil
}

// answerTags returns the tags of t, the task a create call answers with
// (new, or an earlier call's), whose id the call touched unless it noted
// others.
func (s *Server) answerTags(ctx context.Context, c *call, t *store.Task) ([]store.Tag, error) {
	if len(c.ids) == 0 {
		c.ids = []string{t.ID}
	}
	return s.st.Tags(ctx, c.account, []string{t.ID})
}

func (s *Server) importSnapshotAnswer(ctx context.Context, c *call, t *store.Task) (response, error) {
	tags, err := s.answerTags(ctx, c, t)
	if err != nil {
		return nil, err
	}
	return &importSnapshotResponse{importSnapshotTaskXML: importSnapshotTask(t, tags)}, nil
}

// modernTasks returns the account's listed tasks of kind with the ids
// ImportTaskId.N names (all when none), filtered by Filters.N, a page of
// them, the next page's token, and their tags.
func (s *Server) modernTasks(ctx context.Context, c *call, kind store.TaskKind) ([]*store.Task, string, []store.Tag, error) {
	ids, err := c.list("ImportTaskId")
	if err != nil {
		return nil, "", nil, err
	}
	fs, err := filters(c, "Filters", "task-state", "tag:", "tag-key")
	if err != nil {
		return nil, "", nil, err
	}
	c.ids = ids
	tasks, err := s.st.TasksOf(ctx, c.account, []store.TaskKind{kind}, ids)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil, errorf("InvalidConversionTaskId.Malformed", "%s.", notFoundMessage(err, "import task"))
	}
	if err != nil {
		return nil, "", nil, err
	}
	var tags []store.Tag
	if len(fs) > 0 || len(tasks) > 0 {
		if tags, err = s.st.Tags(ctx, c.account, taskIDs(tasks)); err != nil {
			return nil, "", nil, err
		}
	}
	var out []*store.Task
	for _, t := range tasks {
		if len(ids) == 0 && !s.listed(t) {
			continue
		}
		if match(fs, tags, t.ID, func(string) []string { return []string{modernState(t.State)} }) {
			out = append(out, t)
		}
	}
	page, next, err := page(c, out, func(t *store.Task) string { return t.ID }, 1)
	return page, next, tags, err
}

func taskIDs(tasks []*store.Task) []string {
	ids := make([]string, len(tasks))
	for i, t := range tasks {
		ids[i] = t.ID
	}
	return ids
}

func (s *Server) describeImportSnapshotTasks(ctx context.Context, c *call) (response, error) {
	tasks, next, tags, err := s.modernTasks(ctx, c, store.KindSnapshot)
	if err != nil {
		return nil, err
	}
	r := &describeImportSnapshotTasksResponse{Tasks: []importSnapshotTaskXML{}, NextToken: next}
	for _, t := range tasks {
		r.Tasks = append(r.Tasks, importSnapshotTask(t, tags))
	}
	return r, nil
}

// cancelImportTask answers CancelImportTask for an ImportSnapshot or
// ImportImage task: active becomes deleting, and the worker removes the
// partial snapshots and ends it deleted.
func (s *Server) cancelImportTask(ctx context.Context, c *call) (response, error) {
	id, err := c.required("ImportTaskId")
	if err != nil {
		return nil, err
	}
	c.ids = []string{id}
	reason := c.get("CancelReason")
	if err := maxLength("CancelReason", reason, 255); err != nil {
		return nil, err
	}
	if reason == "" {
		reason = "Cancelled by user"
	}
	tasks, err := s.st.TasksOf(ctx, c.account, []store.TaskKind{store.KindSnapshot, store.KindImage}, []string{id})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf("InvalidConversionTaskId", "The import task ID '%s' does not exist.", clip(id))
	}
	if err != nil {
		return nil, err
	}
	t := tasks[0]
	if err := s.cancelTask(ctx, c, t, reason, "import", modernState); err != nil {
		return nil, err
	}
	return &cancelImportTaskResponse{ImportTaskID: t.ID, PreviousState: "active", State: modernState(store.TaskCancelling)}, nil
}

// checkIDs refuses ids that do not start with prefix, as EC2's
// .Malformed errors.
func checkIDs(ids []string, prefix, code string) error {
	for _, id := range ids {
		if !strings.HasPrefix(id, prefix) {
			return errorf(code, "Invalid id: \"%s\" (expecting \"%s...\")", clip(id), prefix)
		}
	}
	return nil
}

// notFound is EC2's InvalidX.NotFound for an id of a store error.
func notFound(err error, code, what string) error {
	id := strings.TrimPrefix(err.Error(), store.ErrNotFound.Error()+": ")
	return errorf(code, "%s", fmt.Sprintf("The %s '%s' does not exist.", what, clip(id)))
}
