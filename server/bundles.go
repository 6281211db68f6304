package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/server/store"
)

// activeBundle are the states of a bundle task still at work.
var activeBundle = []string{string(bundle.Pending), string(bundle.Bundling), string(bundle.Storing)}

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
	now := s.cfg.Clock().UTC()
	b := &store.BundleTask{ID: bundle.NewBundleID(), AccountID: c.account, InstanceID: inst.ID, State: string(bundle.Pending),
		Bucket: bucket, Prefix: prefix, UploadAccessKey: akid, UploadPolicy: policy, UploadPolicySignature: sig, Started: now, Updated: now}
	newBundleSecret(b, now)
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
	r := &describeBundleTasksResponse{Tasks: []bundleTaskXML{}}
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

// wildcard matches v against p, * any run of bytes, ? any one byte. It
// backtracks only to the last star seen, so a match costs at most
// len(p)×len(v) steps: filter values come from clients, and trying every
// split at every star would be exponential in their number.
func wildcard(p, v string) bool {
	pi, vi := 0, 0
	star, mark := -1, 0 // the last star's index in p, and where in v it took up
	for vi < len(v) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, vi
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == v[vi]):
			pi++
			vi++
		case star >= 0:
			mark++ // the star takes one more byte
			pi, vi = star+1, mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
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
	b.State, b.Updated = string(bundle.Cancelling), s.cfg.Clock().UTC()
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
