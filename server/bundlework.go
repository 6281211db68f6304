package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/server/store"
)

// runBundle bundles the instance's root volume into the task's bucket
// under its upload policy.
func (p *pool) runBundle(ctx context.Context, b *store.BundleTask) {
	fail := func(code, msg string) {
		b.State, b.ErrorCode, b.ErrorMessage, b.Updated = string(bundle.Failed), code, clipMessage(redact(msg)), p.now()
		p.st.UpdateBundle(detached(ctx), b, append(activeBundle, string(bundle.Cancelling)))
		if code == bundle.CodeCancelled {
			p.log.Info("bundle", "event", "cancelled", "bundle", b.ID, "account", b.AccountID)
			return
		}
		p.log.Warn("bundle", "event", "failed", "bundle", b.ID, "account", b.AccountID, "code", code, "error", b.ErrorMessage)
	}
	insts, err := p.st.Instances(ctx, b.AccountID, []string{b.InstanceID})
	if err != nil || len(insts[0].VolumeIDs) == 0 {
		fail("InternalError", fmt.Sprintf("the instance %s has no root volume", b.InstanceID))
		return
	}
	img, err := diskport.Open(p.volumePath(insts[0].VolumeIDs[0]), diskport.Options{Format: "RAW"})
	if err != nil {
		fail("InternalError", err.Error())
		return
	}
	defer img.Close()
	secret := bundleSecret(b)
	if secret == nil {
		now := p.now()
		newBundleSecret(b, now)
		b.Updated = now
		if err := p.st.UpdateBundle(ctx, b, activeBundle); err != nil {
			fail("InternalError", "recording the bundle's key: "+err.Error())
			return
		}
		secret = bundleSecret(b)
	}
	stored, err := p.st.BundleParts(ctx, b.ID)
	if err != nil {
		fail("InternalError", err.Error())
		return
	}
	sink := &partSink{sink: &bundle.PostSink{Endpoint: p.cfg.S3Endpoint, Bucket: b.Bucket, AccessKeyID: b.UploadAccessKey,
		Policy: b.UploadPolicy, Signature: b.UploadPolicySignature, Client: p.fetch.client},
		st: p.st, log: p.log, id: b.ID, prefix: b.Prefix, stored: stored}
	r := bundle.NewRunner(b.InstanceID, bundle.S3Storage{Bucket: b.Bucket, Prefix: b.Prefix})
	r.Now = p.cfg.Clock
	r.OnUpdate = func(t bundle.Task) {
		if errors.Is(context.Cause(ctx), errShutdown) || t.State.Done() {
			return // the final state is recorded below
		}
		if t.State != bundle.Cancelling {
			b.State = string(t.State)
		}
		b.Progress, b.Updated = t.Progress, p.now()
		p.st.UpdateBundle(detached(ctx), b, activeBundle)
	}
	p.setRunner(b.ID, r)
	defer p.setRunner(b.ID, nil)
	p.log.Info("bundle", "event", "bundling", "bundle", b.ID, "account", b.AccountID, "parts_stored_before", len(stored))
	_, err = r.Run(ctx, img, sink, bundle.Options{Prefix: b.Prefix, User: b.AccountID, Architecture: insts[0].Architecture,
		EC2Key: &p.bundleKey.PublicKey, SignKey: p.bundleKey, Rand: bytes.NewReader(secret), ModTime: b.ModTime})
	if errors.Is(context.Cause(ctx), errShutdown) {
		return // pending again on the next start
	}
	t := r.Task()
	if err == nil && t.State == bundle.Complete {
		b.State, b.Progress, b.Updated = string(bundle.Complete), 100, p.now()
		p.st.UpdateBundle(detached(ctx), b, activeBundle)
		p.log.Info("bundle", "event", "complete", "bundle", b.ID, "account", b.AccountID,
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
func (p *pool) finishBundleCancel(ctx context.Context, b *store.BundleTask) {
	b.State, b.ErrorCode, b.ErrorMessage, b.Updated = string(bundle.Failed), bundle.CodeCancelled, "Cancelled by user", p.now()
	if err := p.st.UpdateBundle(detached(ctx), b, []string{string(bundle.Cancelling)}); err == nil {
		p.log.Info("bundle", "event", "cancelled", "bundle", b.ID, "account", b.AccountID)
	}
}

// scheduleBundles finishes cancellations and starts queued bundle tasks
// while workers are free. A task that was bundling or storing when the
// server stopped starts again.
func (p *pool) scheduleBundles(ctx context.Context) {
	bundles, err := p.st.UnfinishedBundles(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("reading the bundle queue", "error", err.Error())
		}
		return
	}
	for _, b := range bundles {
		switch {
		case p.busy(b.ID) || !p.holdsRoot(ctx, b):
		case b.State == string(bundle.Cancelling):
			p.finishBundleCancel(ctx, b)
		default:
			p.startWork(ctx, b.ID, func(ctx context.Context) { p.runBundle(ctx, b) })
		}
	}
}

// holdsRoot says whether this server holds the root volume of the bundle
// task's instance: a bundle runs where its volume is.
func (p *pool) holdsRoot(ctx context.Context, b *store.BundleTask) bool {
	insts, err := p.st.Instances(ctx, b.AccountID, []string{b.InstanceID})
	if err != nil || len(insts[0].VolumeIDs) == 0 {
		return true // runBundle reports it
	}
	vs, err := p.st.Volumes(ctx, b.AccountID, insts[0].VolumeIDs[:1])
	if err != nil {
		return true
	}
	return vs[0].Server == "" || vs[0].Server == p.cfg.ServerID
}
