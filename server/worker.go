package server

import (
	"context"
	"crypto/rsa"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/internal/logtext"
	"github.com/diskport/diskport/server/store"
	"github.com/diskport/diskport/volume"
)

// errCancelled and errShutdown say why a running conversion's context
// ended: the client cancelled the task, or the server is stopping (the
// task stays active and resumes on the next start).
var (
	errCancelled = errors.New("cancelled by CancelConversionTask")
	errShutdown  = errors.New("server stopping")
	errExpired   = errors.New("import task expired")
	errFenced    = errors.New("the task's lease was taken over by another server")
	// errStoreLost: the store stayed out of reach until the task's lease
	// lapsed, so the work cannot be committed under it; failing the task
	// for that would throw the work away. The task stays active, and the
	// server that claims it next resumes it from its journal.
	errStoreLost = errors.New("the store was out of reach until the task's lease lapsed")
)

// pool runs up to Config.Workers conversion and bundle tasks at once,
// taking them from the store's queues of unfinished tasks, oldest first.
// It holds what the workers need and nothing of the API: the store (every
// call bounded by storeTimeout), the configuration, the logger, the
// metrics, the fetch policy and the bundle key.
type pool struct {
	cfg     Config
	st      store.Store
	log     *slog.Logger
	metrics *metrics
	fetch   *fetchPolicy
	// bundleKey signs bundle manifests and encrypts their keys: EC2's
	// part in BundleInstance (DataDir/bundle.key, DataDir/bundle.crt).
	bundleKey *rsa.PrivateKey

	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // conversion and bundle tasks
	runners map[string]*bundle.Runner          // running bundle tasks
	kickc   chan struct{}
	wg      sync.WaitGroup
	stopFn  context.CancelCauseFunc
}

func newPool(cfg Config, m *metrics, fetch *fetchPolicy, key *rsa.PrivateKey) *pool {
	return &pool{cfg: cfg, st: boundedStore{cfg.Store, storeTimeout}, log: cfg.Logger, metrics: m, fetch: fetch, bundleKey: key,
		running: map[string]context.CancelCauseFunc{}, runners: map[string]*bundle.Runner{}, kickc: make(chan struct{}, 1)}
}

// now is the server's clock, in UTC.
func (p *pool) now() time.Time { return p.cfg.Clock().UTC() }

// volumePath is where a volume's raw file lives, or a snapshot's (a
// snap- id).
func (p *pool) volumePath(volumeID string) string {
	if strings.HasPrefix(volumeID, "snap-") {
		return filepath.Join(p.cfg.SnapshotDir, volumeID+".raw")
	}
	return filepath.Join(p.cfg.VolumeDir, volumeID+".raw")
}

// detached is a context for a store write that must be made after the
// work's own context ended (a task's final state, a failure): ctx's
// values without its cancellation. The store bounds the call.
func detached(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func (p *pool) start(ctx context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	p.stopFn = cancel
	// The tasks this server ran before it stopped are free to claim now.
	if err := p.st.Release(ctx, p.cfg.ServerID); err != nil {
		p.log.Warn("releasing the leases of a previous run", "error", err.Error())
	}
	p.wg.Add(1)
	go p.loop(ctx)
}

func (p *pool) stop() {
	if p.stopFn != nil {
		p.stopFn(errShutdown)
		p.wg.Wait()
	}
}

// kick asks the scheduler to look at the queue now.
func (p *pool) kick() {
	select {
	case p.kickc <- struct{}{}:
	default:
	}
}

// cancel stops a running conversion of the task, or asks the scheduler
// to finish cancelling a queued one.
func (p *pool) cancel(id string) {
	p.mu.Lock()
	c := p.running[id]
	p.mu.Unlock()
	if c != nil {
		c(errCancelled)
	}
	p.kick()
}

// setRunner records (or, with nil, forgets) a running bundle task's
// runner.
func (p *pool) setRunner(id string, r *bundle.Runner) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r == nil {
		delete(p.runners, id)
	} else {
		p.runners[id] = r
	}
}

// cancelBundle stops a running bundle task (its runner removes what it
// stored), or asks the scheduler to finish cancelling a pending one.
func (p *pool) cancelBundle(id string) {
	p.mu.Lock()
	r := p.runners[id]
	p.mu.Unlock()
	if r != nil {
		r.Cancel()
	}
	p.kick()
}

// busy says whether the task id's work is running here.
func (p *pool) busy(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.running[id]
	return ok
}

// startWork runs f as the task id's work, unless all workers are busy.
func (p *pool) startWork(ctx context.Context, id string, f func(ctx context.Context)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, busy := p.running[id]; busy || len(p.running) >= p.cfg.Workers {
		return false
	}
	wctx, cancel := context.WithCancelCause(ctx)
	p.running[id] = cancel
	p.wg.Add(1)
	p.metrics.running.Inc()
	go func() {
		defer p.wg.Done()
		defer p.metrics.running.Dec()
		f(wctx)
		cancel(nil)
		p.mu.Lock()
		delete(p.running, id)
		p.mu.Unlock()
		p.kick()
	}()
	return true
}

func (p *pool) loop(ctx context.Context) {
	defer p.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		p.schedule(ctx)
		p.scheduleBundles(ctx)
		p.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-p.kickc:
		case <-tick.C:
		}
	}
}

// schedule finishes cancellations and expires old tasks that no other
// server holds a live lease on, and claims queued conversions while
// workers are free.
func (p *pool) schedule(ctx context.Context) {
	tasks, err := p.st.Unfinished(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("reading the conversion queue", "error", err.Error())
		}
		return
	}
	now := p.now()
	for _, t := range tasks {
		free := t.LeaseOwner == "" || t.LeaseOwner == p.cfg.ServerID || now.After(t.LeaseExpires)
		switch {
		case p.busy(t.ID) || !free:
		case t.State == store.TaskCancelling:
			p.finish(ctx, t, errCancelled)
		case now.After(t.Expiration):
			p.finish(ctx, t, errExpired)
		}
	}
	for {
		p.mu.Lock()
		full := len(p.running) >= p.cfg.Workers
		p.mu.Unlock()
		if full || ctx.Err() != nil {
			return
		}
		t, err := p.st.Claim(ctx, p.cfg.ServerID, p.cfg.LeaseTimeout)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("claiming a task", "error", err.Error())
			}
			return
		}
		if t == nil {
			return
		}
		p.log.Info("task", "event", "claimed", "task", t.ID, "generation", t.LeaseGeneration, "taken_over_from", t.TakenOverFrom)
		p.metrics.claims.Inc()
		if t.TakenOverFrom != "" {
			p.metrics.takeovers.Inc()
		}
		if !p.startWork(ctx, t.ID, func(ctx context.Context) { p.run(ctx, t) }) {
			return
		}
	}
}

// run runs a claimed task, renewing its lease, and ends it unless the
// server is stopping or another server took it over.
func (p *pool) run(ctx context.Context, t *store.Task) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go p.renew(ctx, cancel, t)
	err := p.runTask(ctx, t)
	if cause := context.Cause(ctx); err != nil && cause != nil {
		err = cause
	}
	if err != nil && !errors.Is(err, errCancelled) && !errors.Is(err, errShutdown) && p.fenced(ctx, t) {
		err = errFenced
	}
	switch {
	case errors.Is(err, errShutdown):
	case errors.Is(err, errFenced):
		p.log.Warn("task", "event", "fenced", "task", t.ID, "generation", t.LeaseGeneration)
	case errors.Is(err, errStoreLost):
		p.log.Warn("task", "event", "left", "task", t.ID, "generation", t.LeaseGeneration, "error", err.Error())
	default:
		p.finish(ctx, t, err)
	}
}

// renew renews t's lease until ctx ends; it stops the work when the task
// was cancelled or another server claimed it.
func (p *pool) renew(ctx context.Context, stop context.CancelCauseFunc, t *store.Task) {
	tick := time.NewTicker(min(p.cfg.LeaseTimeout/3, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := p.st.Renew(ctx, t.ID, t.LeaseGeneration, p.cfg.LeaseTimeout)
		switch {
		case err == nil:
		case errors.Is(err, store.ErrState):
			// Cancelled under this worker's lease, or (completed,
			// claimed again: whatever else) no longer this worker's.
			stop(p.leaseLost(ctx, t))
			return
		case ctx.Err() == nil:
			p.log.Warn("renewing a lease", "task", t.ID, "error", err.Error())
		}
	}
}

// fenced says whether t is still active under another server's lease.
func (p *pool) fenced(ctx context.Context, t *store.Task) bool {
	ctx = detached(ctx)
	err := p.st.CheckLease(ctx, t.ID, t.LeaseGeneration)
	if !errors.Is(err, store.ErrState) {
		return false
	}
	now, err := p.st.Task(ctx, t.AccountID, t.ID)
	return err == nil && now.State == store.TaskActive
}

// leaseLost is the error of a worker whose fenced write was refused: the
// task was cancelled under its lease, or another server holds it.
func (p *pool) leaseLost(ctx context.Context, t *store.Task) error {
	now, err := p.st.Task(detached(ctx), t.AccountID, t.ID)
	if err == nil && now.State == store.TaskCancelling && now.LeaseGeneration == t.LeaseGeneration {
		return errCancelled
	}
	return errFenced
}

// runTask converts the task's volumes that are not converted yet. An
// OVA disk image converts its appliance's every disk, into its own volume
// and those it adds to the task.
func (p *pool) runTask(ctx context.Context, t *store.Task) error {
	switch t.Kind {
	case store.KindSnapshot, store.KindImage:
		return p.runImport(ctx, t)
	case store.KindCopy:
		return p.runCopy(ctx, t)
	case store.KindExportImage, store.KindExportInstance:
		return p.runExport(ctx, t)
	}
	p.log.Info("task", "event", "converting", "task", t.ID, "account", t.AccountID, "kind", t.Kind)
	for v, next := range pendingDisks(t) {
		note := ""
		if t.TakenOverFrom != "" {
			note = " (taken over from " + t.TakenOverFrom + ", whose lease expired: "
			if _, err := os.Stat(volume.JournalName(p.volumePath(next.ID))); err == nil {
				note += "resuming from its journal)"
			} else {
				note += "its volume directory is not shared with this server, converting from zero)"
			}
			t.TakenOverFrom = "" // said once, for the disk it was converting
		}
		conv := p.convertVolume
		if isAppliance(v) {
			conv = p.convertAppliance
		}
		if err := conv(ctx, t, v, note); err != nil {
			return err
		}
	}
	return nil
}

// finish ends a task: completed when err is nil, else cancelled, with the
// cancellation's reason or the failure as its status message, and its
// volumes' files removed. Its writes outlive ctx (the task's context,
// which a cancellation ended).
func (p *pool) finish(ctx context.Context, t *store.Task, err error) {
	ctx = detached(ctx)
	if err == nil {
		err2 := p.st.Transition(ctx, t.ID, []store.TaskState{store.TaskActive}, store.TaskCompleted, "")
		if err2 == nil {
			p.metrics.tasks.WithLabelValues(string(store.TaskCompleted)).Inc()
			p.log.Info("task", "event", "completed", "task", t.ID, "account", t.AccountID)
			return
		}
		if !errors.Is(err2, store.ErrState) {
			p.log.Error("completing a task", "task", t.ID, "error", err2.Error())
			return
		}
		if now, err := p.st.Task(ctx, t.AccountID, t.ID); err == nil && now.State == store.TaskCompleted {
			return // completed by the server that took it over
		}
		err = errCancelled // cancelled while its last bytes were written
	}
	p.removeFiles(ctx, t)
	// EC2 reports a failed or expired import as cancelled; the log says
	// which, and why, at WARN.
	from := []store.TaskState{store.TaskActive, store.TaskCancelling}
	msg := failureMessage(t, err)
	level, event := slog.LevelWarn, "failed"
	if errors.Is(err, errCancelled) {
		from = []store.TaskState{store.TaskCancelling}
		msg = p.cancelReason(ctx, t)
		level, event = slog.LevelInfo, "cancelled"
	} else if errors.Is(err, errExpired) {
		msg = "Import task is expired: it did not finish before its expirationTime"
		event = "expired"
	}
	terr := p.st.Transition(ctx, t.ID, from, store.TaskCancelled, msg)
	if errors.Is(terr, store.ErrState) && !errors.Is(err, errCancelled) {
		// Cancelled by the client while failing: the reason wins.
		msg = p.cancelReason(ctx, t)
		level, event = slog.LevelInfo, "cancelled"
		terr = p.st.Transition(ctx, t.ID, []store.TaskState{store.TaskCancelling}, store.TaskCancelled, msg)
	}
	if terr != nil {
		if !errors.Is(terr, store.ErrState) {
			p.log.Error("cancelling a task", "task", t.ID, "error", terr.Error())
		}
		return
	}
	p.metrics.tasks.WithLabelValues(string(store.TaskCancelled)).Inc()
	p.log.Log(ctx, level, "task", "event", event, "task", t.ID, "account", t.AccountID, "status_message", msg)
}

// cancelReason is the ReasonMessage a cancelling task was given.
func (p *pool) cancelReason(ctx context.Context, t *store.Task) string {
	if now, err := p.st.Task(ctx, t.AccountID, t.ID); err == nil && now.State == store.TaskCancelling && now.StatusMessage != "" {
		return now.StatusMessage
	}
	return "Cancelled by user"
}

// removeFiles removes a task's volumes, finished or partial, with their
// resume journals: those the store lists now too (an OVA's disks added
// since t was read).
func (p *pool) removeFiles(ctx context.Context, t *store.Task) {
	vols := t.Volumes
	if now, err := p.st.Task(ctx, t.AccountID, t.ID); err == nil {
		vols = append(slices.Clone(vols), now.Volumes...)
	}
	for _, v := range vols {
		volume.Remove(p.volumePath(v.ID))
	}
	if t.Kind == store.KindExportImage || t.Kind == store.KindExportInstance {
		p.removeExport(ctx, t)
	}
}

// removeVolume removes a deleted volume's file and records that it is
// gone.
func (p *pool) removeVolume(ctx context.Context, id string) {
	if err := os.Remove(p.volumePath(id)); err != nil && !os.IsNotExist(err) {
		p.log.Warn("removing a deleted volume's file", "volume", id, "error", err.Error())
		return
	}
	if err := p.st.ForgetVolume(ctx, id, p.cfg.ServerID); err != nil {
		p.log.Warn("removing a deleted volume's file", "volume", id, "error", err.Error())
	}
}

// sweep removes the files of this server's volumes that DeleteVolume
// deleted through another server.
func (p *pool) sweep(ctx context.Context) {
	ids, err := p.st.OrphanedVolumes(ctx, p.cfg.ServerID)
	if err != nil {
		return
	}
	for _, id := range ids {
		p.log.Info("volume", "event", "removed", "volume", id)
		p.removeVolume(ctx, id)
	}
}

// clipMessage folds a failure's text onto one line of at most 400 bytes,
// for a status message.
func clipMessage(s string) string {
	s = logtext.OneLine(s)
	if len(s) > 400 {
		s = cut(s, 400) + "…"
	}
	return s
}
