package server

import (
	"context"
	"time"

	"github.com/diskport/diskport/server/store"
)

// storeTimeout bounds each store call the workers make: a database that
// stops answering fails the call (the task is tried again, or its lease
// lapses and another server takes it over) instead of holding a worker,
// or a lease's renewal, for ever.
const storeTimeout = 30 * time.Second

// boundedStore is a store.Store whose every call runs under a deadline
// of timeout (or ctx's own, if sooner). The workers use it: their
// contexts live as long as the server, or have no cancellation at all
// (a task's final write).
type boundedStore struct {
	st      store.Store
	timeout time.Duration
}

var _ store.Store = boundedStore{}

func (b boundedStore) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.timeout)
}

func (b boundedStore) CreateAccount(ctx context.Context, a *store.Account, key *store.AccessKey) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.CreateAccount(ctx, a, key)
}

func (b boundedStore) AccountCount(ctx context.Context) (int, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.AccountCount(ctx)
}

func (b boundedStore) AccessKey(ctx context.Context, id string) (*store.AccessKey, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.AccessKey(ctx, id)
}

func (b boundedStore) Accounts(ctx context.Context) ([]*store.Account, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Accounts(ctx)
}

func (b boundedStore) AccessKeys(ctx context.Context, account string) ([]*store.AccessKey, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.AccessKeys(ctx, account)
}

func (b boundedStore) RemoveAccount(ctx context.Context, name string) (*store.Account, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.RemoveAccount(ctx, name)
}

func (b boundedStore) RotateKey(ctx context.Context, name string, key *store.AccessKey) (*store.Account, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.RotateKey(ctx, name, key)
}

func (b boundedStore) CreateTask(ctx context.Context, t *store.Task, inst *store.Instance) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.CreateTask(ctx, t, inst)
}

func (b boundedStore) Task(ctx context.Context, account, id string) (*store.Task, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Task(ctx, account, id)
}

func (b boundedStore) Tasks(ctx context.Context, account string, ids []string) ([]*store.Task, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Tasks(ctx, account, ids)
}

func (b boundedStore) Unfinished(ctx context.Context) ([]*store.Task, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Unfinished(ctx)
}

func (b boundedStore) Transition(ctx context.Context, id string, from []store.TaskState, to store.TaskState, message string) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Transition(ctx, id, from, to, message)
}

func (b boundedStore) SetStatus(ctx context.Context, id string, gen int64, message string) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.SetStatus(ctx, id, gen, message)
}

func (b boundedStore) AddVolumes(ctx context.Context, id string, gen int64, vols []*store.Volume) ([]*store.Volume, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.AddVolumes(ctx, id, gen, vols)
}

func (b boundedStore) Progress(ctx context.Context, volumeID string, gen int64, server string, bytes int64, status store.ConversionStatus, message string) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Progress(ctx, volumeID, gen, server, bytes, status, message)
}

func (b boundedStore) Claim(ctx context.Context, server string, lease time.Duration) (*store.Task, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Claim(ctx, server, lease)
}

func (b boundedStore) Renew(ctx context.Context, id string, gen int64, lease time.Duration) error {
	// A renewal that arrives after the lease lapsed is of no use.
	ctx, cancel := context.WithTimeout(ctx, min(b.timeout, lease))
	defer cancel()
	return b.st.Renew(ctx, id, gen, lease)
}

func (b boundedStore) CheckLease(ctx context.Context, id string, gen int64) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.CheckLease(ctx, id, gen)
}

func (b boundedStore) Release(ctx context.Context, server string) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Release(ctx, server)
}

func (b boundedStore) Claims(ctx context.Context, id string) ([]store.Claim, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Claims(ctx, id)
}

func (b boundedStore) Volumes(ctx context.Context, account string, ids []string) ([]*store.Volume, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Volumes(ctx, account, ids)
}

func (b boundedStore) SetVolumeState(ctx context.Context, id string, from []store.VolumeState, to store.VolumeState) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.SetVolumeState(ctx, id, from, to)
}

func (b boundedStore) OrphanedVolumes(ctx context.Context, server string) ([]string, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.OrphanedVolumes(ctx, server)
}

func (b boundedStore) ForgetVolume(ctx context.Context, id, server string) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.ForgetVolume(ctx, id, server)
}

func (b boundedStore) Instances(ctx context.Context, account string, ids []string) ([]*store.Instance, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Instances(ctx, account, ids)
}

func (b boundedStore) CreateBundle(ctx context.Context, bt *store.BundleTask) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.CreateBundle(ctx, bt)
}

func (b boundedStore) Bundles(ctx context.Context, account string, ids []string) ([]*store.BundleTask, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Bundles(ctx, account, ids)
}

func (b boundedStore) UnfinishedBundles(ctx context.Context) ([]*store.BundleTask, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.UnfinishedBundles(ctx)
}

func (b boundedStore) UpdateBundle(ctx context.Context, bt *store.BundleTask, from []string) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.UpdateBundle(ctx, bt, from)
}

func (b boundedStore) StoreBundlePart(ctx context.Context, bundleID string, index int, digest string) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.StoreBundlePart(ctx, bundleID, index, digest)
}

func (b boundedStore) ForgetBundlePart(ctx context.Context, bundleID string, index int) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.ForgetBundlePart(ctx, bundleID, index)
}

func (b boundedStore) BundleParts(ctx context.Context, bundleID string) (map[int]string, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.BundleParts(ctx, bundleID)
}

// Close is the Server's caller's to call, on the store it gave.
func (b boundedStore) Close() error { return nil }

func (b boundedStore) TasksOf(ctx context.Context, account string, kinds []store.TaskKind, ids []string) ([]*store.Task, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.TasksOf(ctx, account, kinds, ids)
}

func (b boundedStore) TaskByToken(ctx context.Context, account, token string) (*store.Task, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.TaskByToken(ctx, account, token)
}

func (b boundedStore) SetSource(ctx context.Context, volumeID string, gen int64, format string, bytes, virtualSize, sizeGiB int64) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.SetSource(ctx, volumeID, gen, format, bytes, virtualSize, sizeGiB)
}

func (b boundedStore) Snapshots(ctx context.Context, account string, ids []string) ([]*store.Snapshot, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Snapshots(ctx, account, ids)
}

func (b boundedStore) DeleteSnapshot(ctx context.Context, account, id string) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.DeleteSnapshot(ctx, account, id)
}

func (b boundedStore) CreateImage(ctx context.Context, img *store.Image) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.CreateImage(ctx, img)
}

func (b boundedStore) Images(ctx context.Context, account string, ids []string) ([]*store.Image, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Images(ctx, account, ids)
}

func (b boundedStore) DeregisterImage(ctx context.Context, account, id string) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.DeregisterImage(ctx, account, id)
}

func (b boundedStore) CreateTags(ctx context.Context, account string, tags []store.Tag) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.CreateTags(ctx, account, tags)
}

func (b boundedStore) DeleteTags(ctx context.Context, account string, tags []store.Tag) error {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.DeleteTags(ctx, account, tags)
}

func (b boundedStore) Tags(ctx context.Context, account string, ids []string) ([]store.Tag, error) {
	ctx, cancel := b.ctx(ctx)
	defer cancel()
	return b.st.Tags(ctx, account, ids)
}
