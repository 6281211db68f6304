package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/server/store"
)

// activeBundle are the states of a bundle task still at work.
var activeBundle = []string{string(bundle.Pending), string(bundle.Bundling), string(bundle.Storing)}

type bundleTaskResponse struct {
	meta
	Task bundle.Task `xml:"bundleInstanceTask"`
}

type describeBundleTasksResponse struct {
	meta
	Tasks []bundle.Task `xml:"bundleInstanceTasksSet>item"`
}

func bundleXML(b *store.BundleTask) bundle.Task {
	t := bundle.Task{InstanceID: b.InstanceID, BundleID: b.ID, State: bundle.State(b.State), StartTime: b.Started,
		UpdateTime: b.Updated, Progress: b.Progress, Storage: bundle.S3Storage{Bucket: b.Bucket, Prefix: b.Prefix,
			AWSAccessKeyID: b.UploadAccessKey, UploadPolicy: b.UploadPolicy, UploadPolicySignature: b.UploadPolicySignature}}
	if b.ErrorCode != "" {
		t.Error = &bundle.TaskError{Code: b.ErrorCode, Message: b.ErrorMessage}
	}
	return t
}

func (s *Server) bundleInstance(ctx context.Context, c *call) (response, error) {
	id, err := c.required("InstanceId")
	if err != nil {
		return nil, err
	}
	c.ids = []string{id}
	const st = "Storage.S3."
	var f [5]string
	for i, name := range []string{"Bucket", "Prefix", "AWSAccessKeyId", "UploadPolicy", "UploadPolicySignature"} {
		if f[i], err = c.required(st + name); err != nil {
			return nil, err
		}
	}
	bucket, prefix, akid, policy, sig := f[0], f[1], f[2], f[3], f[4]
	insts, err := s.st.Instances(ctx, c.account, []string{id})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist.", clip(id))
	}
	if err != nil {
		return nil, err
	}
	inst := insts[0]
	if s.cfg.S3Endpoint == "" {
		return nil, errorf("UnsupportedOperation", "BundleInstance needs the server's --s3-endpoint, which is not set.")
	}
	if inst.State != store.InstanceStopped || len(inst.VolumeIDs) == 0 {
		return nil, errorf("IncorrectState", "The instance %s is %s.", inst.ID, inst.State)
	}
	vols, err := s.st.Volumes(ctx, c.account, inst.VolumeIDs[:1])
	if err != nil {
		return nil, err
	}
	if vols[0].State != store.VolumeInUse {
		return nil, errorf("IncorrectState", "The instance %s is still being imported (its root volume is %s).", inst.ID, vols[0].State)
	}
	bundles, err := s.st.Bundles(ctx, c.account, nil)
	if err != nil {
		return nil, err
	}
	for _, b := range bundles {
		if b.InstanceID == inst.ID && !bundle.State(b.State).Done() {
			return nil, errorf("BundlingInProgress", "The instance %s already has a bundling task in progress (%s).", inst.ID, b.ID)
		}
	}
	if _, err := bundle.CheckPolicy(policy, bundle.Grant{Bucket: bucket, Prefix: prefix, Signature: sig, MaxObjectSize: bundle.DefaultPartSize}); err != nil {
		return nil, errorf("InvalidParameterValue", "Value for parameter %sUploadPolicy is invalid: %v.", st, err)
	}
	now := time.Now().UTC()
	b := &store.BundleTask{ID: bundle.NewBundleID(), AccountID: c.account, InstanceID: inst.ID, State: string(bundle.Pending),
		Bucket: bucket, Prefix: prefix, UploadAccessKey: akid, UploadPolicy: policy, UploadPolicySignature: sig, Started: now, Updated: now}
	newBundleSecret(b)
	if err := s.st.CreateBundle(ctx, b); err != nil {
		return nil, err
	}
	c.ids = append(c.ids, b.ID)
	s.log.Info("bundle", "event", "created", "bundle", b.ID, "account", b.AccountID, "instance", b.InstanceID)
	s.pool.kick()
	return &bundleTaskResponse{Task: bundleXML(b)}, nil
}

// bundleFilters are DescribeBundleTasks' filter names and the field each
// one matches.
var bundleFilters = map[string]func(*store.BundleTask) string{
	"bundle-id":     func(b *store.BundleTask) string { return b.ID },
	"instance-id":   func(b *store.BundleTask) string { return b.InstanceID },
	"state":         func(b *store.BundleTask) string { return b.State },
	"s3-bucket":     func(b *store.BundleTask) string { return b.Bucket },
	"s3-prefix":     func(b *store.BundleTask) string { return b.Prefix },
	"progress":      func(b *store.BundleTask) string { return strconv.Itoa(b.Progress) + "%" },
	"error-code":    func(b *store.BundleTask) string { return b.ErrorCode },
	"error-message": func(b *store.BundleTask) string { return b.ErrorMessage },
}

func (s *Server) describeBundleTasks(ctx context.Context, c *call) (response, error) {
	ids, err := c.list("BundleId")
	if err != nil {
		return nil, err
	}
	c.ids = ids
	type filter struct {
		field  func(*store.BundleTask) string
		values []string
	}
	var filters []filter
	idx, err := indexes(c.params, "Filter")
	if err != nil {
		return nil, err
	}
	for _, n := range idx {
		name := c.get(fmt.Sprintf("Filter.%d.Name", n))
		field, ok := bundleFilters[name]
		if !ok {
			return nil, errorf("InvalidParameterValue", "The filter '%s' is invalid for DescribeBundleTasks.", clip(name))
		}
		values, err := c.list(fmt.Sprintf("Filter.%d.Value", n))
		if err != nil {
			return nil, err
		}
		filters = append(filters, filter{field, values})
	}
	bundles, err := s.st.Bundles(ctx, c.account, ids)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf("InvalidBundleID.NotFound", "%s.", notFoundMessage(err, "bundle"))
	}
	if err != nil {
		return nil, err
	}
	r := &describeBundleTasksResponse{Tasks: []bundle.Task{}}
next:
	for _, b := range bundles {
		for _, f := range filters {
			if !matchAny(f.field(b), f.values) {
				continue next
			}
		}
		r.Tasks = append(r.Tasks, bundleXML(b))
	}
	return r, nil
}

// matchAny matches v against filter values, where * is any run of
// characters and ? any one.
func matchAny(v string, patterns []string) bool {
	for _, p := range patterns {
		if wildcard(p, v) {
			return true
		}
	}
	return false
}

func wildcard(p, v string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := len(v); i >= 0; i-- {
				if wildcard(p[1:], v[i:]) {
					return true
				}
			}
			return false
		case '?':
			if v == "" {
				return false
			}
		default:
			if v == "" || v[0] != p[0] {
				return false
			}
		}
		p, v = p[1:], v[1:]
	}
	return v == ""
}

func (s *Server) cancelBundleTask(ctx context.Context, c *call) (response, error) {
	id, err := c.required("BundleId")
	if err != nil {
		return nil, err
	}
	c.ids = []string{id}
	bundles, err := s.st.Bundles(ctx, c.account, []string{id})
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf("InvalidBundleID.NotFound", "The bundle ID '%s' does not exist.", clip(id))
	}
	if err != nil {
		return nil, err
	}
	b := bundles[0]
	b.State, b.Updated = string(bundle.Cancelling), time.Now().UTC()
	err = s.st.UpdateBundle(ctx, b, activeBundle)
	if errors.Is(err, store.ErrState) {
		return nil, errorf("IncorrectState", "The bundle task %s is finished and cannot be cancelled.", b.ID)
	}
	if err != nil {
		return nil, err
	}
	s.log.Info("bundle", "event", "cancelling", "bundle", b.ID, "account", b.AccountID)
	s.pool.cancelBundle(b.ID)
	return &bundleTaskResponse{Task: bundleXML(b)}, nil
}

// runBundle bundles the instance's root volume into the task's bucket
// under its upload policy.
func (s *Server) runBundle(ctx context.Context, b *store.BundleTask) {
	fail := func(code, msg string) {
		b.State, b.ErrorCode, b.ErrorMessage, b.Updated = string(bundle.Failed), code, clipMessage(redact(msg)), time.Now().UTC()
		s.st.UpdateBundle(context.Background(), b, append(activeBundle, string(bundle.Cancelling)))
		s.log.Info("bundle", "event", "failed", "bundle", b.ID, "account", b.AccountID, "code", code)
	}
	insts, err := s.st.Instances(ctx, b.AccountID, []string{b.InstanceID})
	if err != nil || len(insts[0].VolumeIDs) == 0 {
		fail("InternalError", fmt.Sprintf("the instance %s has no root volume", b.InstanceID))
		return
	}
	img, err := diskport.Open(s.VolumePath(insts[0].VolumeIDs[0]), diskport.Options{Format: "RAW"})
	if err != nil {
		fail("InternalError", err.Error())
		return
	}
	defer img.Close()
	secret := bundleSecret(b)
	if secret == nil {
		newBundleSecret(b)
		b.Updated = time.Now().UTC()
		if err := s.st.UpdateBundle(ctx, b, activeBundle); err != nil {
			fail("InternalError", "recording the bundle's key: "+err.Error())
			return
		}
		secret = bundleSecret(b)
	}
	stored, err := s.st.BundleParts(ctx, b.ID)
	if err != nil {
		fail("InternalError", err.Error())
		return
	}
	sink := &partSink{sink: &bundle.PostSink{Endpoint: s.cfg.S3Endpoint, Bucket: b.Bucket, AccessKeyID: b.UploadAccessKey,
		Policy: b.UploadPolicy, Signature: b.UploadPolicySignature, Client: s.fetch.client},
		st: s.st, log: s.log, id: b.ID, prefix: b.Prefix, stored: stored}
	r := bundle.NewRunner(b.InstanceID, bundle.S3Storage{Bucket: b.Bucket, Prefix: b.Prefix})
	r.OnUpdate = func(t bundle.Task) {
		if errors.Is(context.Cause(ctx), errShutdown) || t.State.Done() {
			return // the final state is recorded below
		}
		if t.State != bundle.Cancelling {
			b.State = string(t.State)
		}
		b.Progress, b.Updated = t.Progress, time.Now().UTC()
		s.st.UpdateBundle(context.Background(), b, activeBundle)
	}
	s.pool.setRunner(b.ID, r)
	defer s.pool.setRunner(b.ID, nil)
	s.log.Info("bundle", "event", "bundling", "bundle", b.ID, "account", b.AccountID, "parts_stored_before", len(stored))
	_, err = r.Run(ctx, img, sink, bundle.Options{Prefix: b.Prefix, User: b.AccountID, Architecture: insts[0].Architecture,
		EC2Key: &s.bundleKey.PublicKey, SignKey: s.bundleKey, Rand: bytes.NewReader(secret), ModTime: b.ModTime})
	if errors.Is(context.Cause(ctx), errShutdown) {
		return // pending again on the next start
	}
	t := r.Task()
	if err == nil && t.State == bundle.Complete {
		b.State, b.Progress, b.Updated = string(bundle.Complete), 100, time.Now().UTC()
		s.st.UpdateBundle(context.Background(), b, activeBundle)
		s.log.Info("bundle", "event", "complete", "bundle", b.ID, "account", b.AccountID,
			"parts_skipped", sink.skipped.Load(), "parts_resent", sink.resent.Load())
		return
	}
	code, msg := "InternalError", ""
	if err != nil {
		msg = err.Error()
	}
	if t.Error != nil {
		code, msg = t.Error.Code, t.Error.Message
	}
	fail(code, msg)
}

// finishBundleCancel ends a cancelled bundle task that is not running.
func (s *Server) finishBundleCancel(b *store.BundleTask) {
	b.State, b.ErrorCode, b.ErrorMessage, b.Updated = string(bundle.Failed), bundle.CodeCancelled, "Cancelled by user", time.Now().UTC()
	if err := s.st.UpdateBundle(context.Background(), b, []string{string(bundle.Cancelling)}); err == nil {
		s.log.Info("bundle", "event", "cancelled", "bundle", b.ID, "account", b.AccountID)
	}
}
