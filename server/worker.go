package server

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/diskport/diskport/bundle"
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
)

// pool runs up to Config.Workers conversion and bundle tasks at once,
// taking them from the store's queues of unfinished tasks, oldest first.
type pool struct {
	s       *Server
	mu      sync.Mutex
	running map[string]context.CancelCauseFunc // conversion and bundle tasks
	runners map[string]*bundle.Runner          // running bundle tasks
	kickc   chan struct{}
	wg      sync.WaitGroup
	stopFn  context.CancelCauseFunc
}

func newPool(s *Server) *pool {
	return &pool{s: s, running: map[string]context.CancelCauseFunc{}, runners: map[string]*bundle.Runner{},
		kickc: make(chan struct{}, 1)}
}

func (p *pool) start(ctx context.Context) {
	ctx, cancel := context.WithCancelCause(ctx)
	p.stopFn = cancel
	// The tasks this server ran before it stopped are free to claim now.
	if err := p.s.st.Release(ctx, p.s.cfg.ServerID); err != nil {
		p.s.log.Warn("releasing the leases of a previous run", "error", err.Error())
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

// startWork runs f as the task id's work, unless all workers are busy.
func (p *pool) startWork(ctx context.Context, id string, f func(ctx context.Context)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, busy := p.running[id]; busy || len(p.running) >= p.s.cfg.Workers {
		return false
	}
	wctx, cancel := context.WithCancelCause(ctx)
	p.running[id] = cancel
	p.wg.Add(1)
	p.s.metrics.running.Inc()
	go func() {
		defer p.wg.Done()
		defer p.s.metrics.running.Dec()
		f(wctx)
		cancel(nil)
		p.mu.Lock()
		delete(p.running, id)
		p.mu.Unlock()
		p.kick()
	}()
	return true
}

// scheduleBundles finishes cancellations and starts queued bundle tasks
// while workers are free. A task that was bundling or storing when the
// server stopped starts again.
func (p *pool) scheduleBundles(ctx context.Context) {
	s := p.s
	bundles, err := s.st.UnfinishedBundles(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("reading the bundle queue", "error", err.Error())
		}
		return
	}
	for _, b := range bundles {
		p.mu.Lock()
		_, busy := p.running[b.ID]
		p.mu.Unlock()
		switch {
		case busy || !s.holdsRoot(ctx, b):
		case b.State == string(bundle.Cancelling):
			s.finishBundleCancel(b)
		default:
			p.startWork(ctx, b.ID, func(ctx context.Context) { s.runBundle(ctx, b) })
		}
	}
}

// holdsRoot says whether this server holds the root volume of the bundle
// task's instance: a bundle runs where its volume is.
func (s *Server) holdsRoot(ctx context.Context, b *store.BundleTask) bool {
	insts, err := s.st.Instances(ctx, b.AccountID, []string{b.InstanceID})
	if err != nil || len(insts[0].VolumeIDs) == 0 {
		return true // runBundle reports it
	}
	vs, err := s.st.Volumes(ctx, b.AccountID, insts[0].VolumeIDs[:1])
	if err != nil {
		return true
	}
	return vs[0].Server == "" || vs[0].Server == s.cfg.ServerID
}

func (p *pool) loop(ctx context.Context) {
	defer p.wg.Done()
	for {
		p.schedule(ctx)
		p.scheduleBundles(ctx)
		p.s.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-p.kickc:
		case <-time.After(time.Second):
		}
	}
}

// schedule finishes cancellations and expires old tasks that no other
// server holds a live lease on, and claims queued conversions while
// workers are free.
func (p *pool) schedule(ctx context.Context) {
	s := p.s
	tasks, err := s.st.Unfinished(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("reading the conversion queue", "error", err.Error())
		}
		return
	}
	now := time.Now()
	for _, t := range tasks {
		p.mu.Lock()
		_, busy := p.running[t.ID]
		p.mu.Unlock()
		free := t.LeaseOwner == "" || t.LeaseOwner == s.cfg.ServerID || now.After(t.LeaseExpires)
		switch {
		case busy || !free:
		case t.State == store.TaskCancelling:
			s.finish(t, errCancelled)
		case now.After(t.Expiration):
			s.finish(t, errExpired)
		}
	}
	for {
		p.mu.Lock()
		full := len(p.running) >= s.cfg.Workers
		p.mu.Unlock()
		if full || ctx.Err() != nil {
			return
		}
		t, err := s.st.Claim(ctx, s.cfg.ServerID, s.cfg.LeaseTimeout)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("claiming a task", "error", err.Error())
			}
			return
		}
		if t == nil {
			return
		}
		s.log.Info("task", "event", "claimed", "task", t.ID, "generation", t.LeaseGeneration, "taken_over_from", t.TakenOverFrom)
		s.metrics.claims.Inc()
		if t.TakenOverFrom != "" {
			s.metrics.takeovers.Inc()
		}
		if !p.startWork(ctx, t.ID, func(ctx context.Context) { p.run(ctx, t) }) {
			return
		}
	}
}

// run runs a claimed task, renewing its lease, and ends it unless the
// server is stopping or another server took it over.
func (p *pool) run(ctx context.Context, t *store.Task) {
	s := p.s
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go p.renew(ctx, cancel, t)
	err := s.runTask(ctx, t)
	if cause := context.Cause(ctx); err != nil && cause != nil {
		err = cause
	}
	if err != nil && !errors.Is(err, errCancelled) && !errors.Is(err, errShutdown) && s.fenced(t) {
		err = errFenced
	}
	switch {
	case errors.Is(err, errShutdown):
	case errors.Is(err, errFenced):
		s.log.Warn("task", "event", "fenced", "task", t.ID, "generation", t.LeaseGeneration)
	default:
		s.finish(t, err)
	}
}

// renew renews t's lease until ctx ends; it stops the work when the task
// was cancelled or another server claimed it.
func (p *pool) renew(ctx context.Context, stop context.CancelCauseFunc, t *store.Task) {
	s := p.s
	tick := time.NewTicker(min(s.cfg.LeaseTimeout/3, time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := s.st.Renew(ctx, t.ID, t.LeaseGeneration, s.cfg.LeaseTimeout)
		switch {
		case err == nil:
		case errors.Is(err, store.ErrState):
			// Cancelled under this worker's lease, or (completed,
			// claimed again: whatever else) no longer this worker's.
			if now, err := s.st.Task(ctx, t.AccountID, t.ID); err == nil && now.State == store.TaskCancelling && now.LeaseGeneration == t.LeaseGeneration {
				stop(errCancelled)
			} else {
				stop(errFenced)
			}
			return
		case ctx.Err() == nil:
			s.log.Warn("renewing a lease", "task", t.ID, "error", err.Error())
		}
	}
}

// fenced says whether t is still active under another server's lease.
func (s *Server) fenced(t *store.Task) bool {
	err := s.st.CheckLease(context.Background(), t.ID, t.LeaseGeneration)
	if !errors.Is(err, store.ErrState) {
		return false
	}
	now, err := s.st.Task(context.Background(), t.AccountID, t.ID)
	return err == nil && now.State == store.TaskActive
}

// runTask converts the task's volumes that are not converted yet. An
// OVA disk image converts its appliance's every disk, into its own volume
// and those it adds to the task.
func (s *Server) runTask(ctx context.Context, t *store.Task) error {
	s.log.Info("task", "event", "converting", "task", t.ID, "account", t.AccountID, "kind", t.Kind)
	for _, v := range slices.Clone(t.Volumes) {
		next := v // the volume to convert next
		if isAppliance(v) {
			next = nextDisk(t, v)
		}
		if v.Origin != "" || next == nil || next.Status == "completed" {
			continue // done, or an OVA's added disk, converted with its appliance
		}
		note := ""
		if t.TakenOverFrom != "" {
			note = " (taken over from " + t.TakenOverFrom + ", whose lease expired: "
			if _, err := os.Stat(volume.JournalName(s.VolumePath(next.ID))); err == nil {
				note += "resuming from its journal)"
			} else {
				note += "its volume directory is not shared with this server, converting from zero)"
			}
			t.TakenOverFrom = "" // said once, for the disk it was converting
		}
		conv := s.convertVolume
		if isAppliance(v) {
			conv = s.convertAppliance
		}
		if err := conv(ctx, t, v, note); err != nil {
			return err
		}
	}
	return nil
}

// finish ends a task: completed when err is nil, else cancelled, with the
// cancellation's reason or the failure as its status message, and its
// volumes' files removed.
func (s *Server) finish(t *store.Task, err error) {
	ctx := context.Background()
	if err == nil {
		err2 := s.st.Transition(ctx, t.ID, []string{store.TaskActive}, store.TaskCompleted, "")
		if err2 == nil {
			s.metrics.tasks.WithLabelValues(store.TaskCompleted).Inc()
			s.log.Info("task", "event", "completed", "task", t.ID, "account", t.AccountID)
			return
		}
		if !errors.Is(err2, store.ErrState) {
			s.log.Error("completing a task", "task", t.ID, "error", err2.Error())
			return
		}
		if now, err := s.st.Task(ctx, t.AccountID, t.ID); err == nil && now.State == store.TaskCompleted {
			return // completed by the server that took it over
		}
		err = errCancelled // cancelled while its last bytes were written
	}
	s.removeFiles(t)
	from := []string{store.TaskActive, store.TaskCancelling}
	msg := "Failed: " + clipMessage(redact(err.Error()))
	if errors.Is(err, errCancelled) {
		from = []string{store.TaskCancelling}
		msg = s.cancelReason(ctx, t)
	} else if errors.Is(err, errExpired) {
		msg = "Import task is expired: it did not finish before its expirationTime"
	}
	terr := s.st.Transition(ctx, t.ID, from, store.TaskCancelled, msg)
	if errors.Is(terr, store.ErrState) && !errors.Is(err, errCancelled) {
		// Cancelled by the client while failing: the reason wins.
		msg = s.cancelReason(ctx, t)
		terr = s.st.Transition(ctx, t.ID, []string{store.TaskCancelling}, store.TaskCancelled, msg)
	}
	if terr != nil {
		if !errors.Is(terr, store.ErrState) {
			s.log.Error("cancelling a task", "task", t.ID, "error", terr.Error())
		}
		return
	}
	s.metrics.tasks.WithLabelValues(store.TaskCancelled).Inc()
	s.log.Info("task", "event", "cancelled", "task", t.ID, "account", t.AccountID, "status_message", msg)
}

// cancelReason is the ReasonMessage a cancelling task was given.
func (s *Server) cancelReason(ctx context.Context, t *store.Task) string {
	if now, err := s.st.Task(ctx, t.AccountID, t.ID); err == nil && now.State == store.TaskCancelling && now.StatusMessage != "" {
		return now.StatusMessage
	}
	return "Cancelled by user"
}

// removeFiles removes a task's volumes, finished or partial, with their
// resume journals: those the store lists now too (an OVA's disks added
// since t was read).
func (s *Server) removeFiles(t *store.Task) {
	vols := t.Volumes
	if now, err := s.st.Task(context.Background(), t.AccountID, t.ID); err == nil {
		vols = append(slices.Clone(vols), now.Volumes...)
	}
	for _, v := range vols {
		volume.Remove(s.VolumePath(v.ID))
	}
}

// clipMessage folds a failure's text onto one line of at most 400 bytes,
// for a status message.
func clipMessage(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = cut(s, 400) + "…"
	}
	return s
}
