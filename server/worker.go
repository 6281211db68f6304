package server

import (
	"context"
	"errors"
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
	go func() {
		defer p.wg.Done()
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
		case busy:
		case b.State == string(bundle.Cancelling):
			s.finishBundleCancel(b)
		default:
			p.startWork(ctx, b.ID, func(ctx context.Context) { s.runBundle(ctx, b) })
		}
	}
}

func (p *pool) loop(ctx context.Context) {
	defer p.wg.Done()
	for {
		p.schedule(ctx)
		p.scheduleBundles(ctx)
		select {
		case <-ctx.Done():
			return
		case <-p.kickc:
		case <-time.After(time.Second):
		}
	}
}

// schedule finishes cancellations, expires old tasks and starts queued
// conversions while workers are free.
func (p *pool) schedule(ctx context.Context) {
	s := p.s
	tasks, err := s.st.Unfinished(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("reading the conversion queue", "error", err.Error())
		}
		return
	}
	for _, t := range tasks {
		p.mu.Lock()
		_, busy := p.running[t.ID]
		p.mu.Unlock()
		switch {
		case busy:
		case t.State == store.TaskCancelling:
			s.finish(t, errCancelled)
		case time.Now().After(t.Expiration):
			s.finish(t, errExpired)
		default:
			p.startWork(ctx, t.ID, func(ctx context.Context) {
				err := s.runTask(ctx, t)
				if cause := context.Cause(ctx); err != nil && cause != nil {
					err = cause
				}
				if !errors.Is(err, errShutdown) {
					s.finish(t, err)
				}
			})
		}
	}
}

// runTask converts the task's volumes that are not converted yet.
func (s *Server) runTask(ctx context.Context, t *store.Task) error {
	s.log.Info("task", "event", "converting", "task", t.ID, "account", t.AccountID, "kind", t.Kind)
	for i, v := range t.Volumes {
		if v.Status == "completed" {
			continue
		}
		if err := s.convertVolume(ctx, t, i, v); err != nil {
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
			s.log.Info("task", "event", "completed", "task", t.ID, "account", t.AccountID)
			return
		}
		if !errors.Is(err2, store.ErrState) {
			s.log.Error("completing a task", "task", t.ID, "error", err2.Error())
			return
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
// resume journals.
func (s *Server) removeFiles(t *store.Task) {
	for _, v := range t.Volumes {
		volume.Remove(s.VolumePath(v.ID))
	}
}

// clipMessage folds a failure's text onto one line of at most 400 bytes,
// for a status message.
func clipMessage(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
