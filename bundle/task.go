package bundle

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/logtext"
)

// A State is a bundle task's state as BundleInstance and
// DescribeBundleTasks report it.
type State string

// The bundle task states (API BundleTask). AWS's own CancelBundleTask sample
// spells cancelling "canceling"; ParseState accepts both and diskport
// writes "cancelling".
const (
	Pending            State = "pending"
	WaitingForShutdown State = "waiting-for-shutdown"
	Bundling           State = "bundling"
	Storing            State = "storing"
	Cancelling         State = "cancelling"
	Complete           State = "complete"
	Failed             State = "failed"
)

// ParseState returns the state named s, accepting "canceling" for
// Cancelling.
func ParseState(s string) (State, error) {
	switch st := State(strings.TrimSpace(s)); st {
	case Pending, WaitingForShutdown, Bundling, Storing, Cancelling, Complete, Failed:
		return st, nil
	case "canceling":
		return Cancelling, nil
	}
	return "", fmt.Errorf("bundle: unknown bundle task state %q", truncate(s, 40))
}

// Done reports whether the state is final (complete or failed).
func (s State) Done() bool { return s == Complete || s == Failed }

// A Task is a bundle task as BundleInstance, DescribeBundleTasks and
// CancelBundleTask report it; its EC2 XML is the API server's to write
// (package server).
type Task struct {
	InstanceID string
	BundleID   string
	State      State
	StartTime  time.Time
	UpdateTime time.Time
	// Progress is the percentage done, 0..100; written "70%".
	Progress int
	Storage  S3Storage
	// Error is set when the task failed.
	Error *TaskError
}

// S3Storage is the task's Storage.S3: where the bundle goes and the upload
// policy it goes there under.
type S3Storage struct {
	Bucket, Prefix                                      string
	AWSAccessKeyID, UploadPolicy, UploadPolicySignature string
}

// A TaskError is a failed task's error code and message.
type TaskError struct {
	Code, Message string
}

// Error codes diskport reports in a failed task's error.
const (
	CodeCancelled     = "Cancelled"     // CancelBundleTask, or the context ended
	CodeInvalidPolicy = "InvalidPolicy" // the upload policy refused the upload
	CodeInvalidVolume = "InvalidVolume" // the volume could not be read
	CodeStorageFailed = "StorageFailed" // an object could not be stored
	CodeInternal      = "InternalError" // anything else
)

// NewBundleID returns a fresh "bun-" and 8 hex digits.
func NewBundleID() string {
	var b [4]byte
	rand.Read(b[:])
	return "bun-" + hex.EncodeToString(b[:])
}

// A Runner runs one bundle task: bundles a volume into a sink, moving the
// task through pending, bundling, storing and complete or failed, and
// removes what it stored when the task fails or is cancelled.
type Runner struct {
	// OnUpdate, if set, is called with a copy of the task after every
	// change of state or progress, from whichever goroutine made it.
	OnUpdate func(Task)
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	task     Task
	cancel   context.CancelCauseFunc
	canceled bool
}

// errCancelled is the cause a Runner cancels its work with.
var errCancelled = errors.New("bundle task cancelled")

// NewRunner returns a runner for a pending task of instanceID storing to
// storage.
func NewRunner(instanceID string, storage S3Storage) *Runner {
	r := &Runner{}
	now := r.now()
	r.task = Task{InstanceID: instanceID, BundleID: NewBundleID(), State: Pending, StartTime: now, UpdateTime: now, Storage: storage}
	return r
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// Task returns a copy of the task as it stands.
func (r *Runner) Task() Task {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.task
}

// update changes the task under the lock and reports it.
func (r *Runner) update(f func(t *Task) bool) {
	r.mu.Lock()
	if !f(&r.task) {
		r.mu.Unlock()
		return
	}
	r.task.UpdateTime = r.now()
	t := r.task
	r.mu.Unlock()
	if r.OnUpdate != nil {
		r.OnUpdate(t)
	}
}

// Cancel asks the running task to stop (CancelBundleTask): it goes to
// cancelling, and once the work has stopped and what was stored has been
// removed, to failed with error code Cancelled. A finished task is not
// changed; Cancel reports whether it had any effect.
func (r *Runner) Cancel() bool {
	ok := false
	r.update(func(t *Task) bool {
		if t.State.Done() {
			return false
		}
		ok, r.canceled = true, true
		if t.State == Pending && r.cancel == nil {
			// Not started: nothing to stop or remove.
			t.State, t.Error = Failed, &TaskError{Code: CodeCancelled, Message: errCancelled.Error() + " before it started"}
			return true
		}
		t.State = Cancelling
		return true
	})
	r.mu.Lock()
	c := r.cancel
	r.mu.Unlock()
	if ok && c != nil {
		c(errCancelled)
	}
	return ok
}

// recorder remembers what a sink stored.
type recorder struct {
	Sink
	mu    sync.Mutex
	names []string
}

func (s *recorder) Put(ctx context.Context, name string, data []byte) error {
	err := s.Sink.Put(ctx, name, data)
	if err == nil {
		s.mu.Lock()
		s.names = append(s.names, name)
		s.mu.Unlock()
	}
	return err
}

// Run bundles img into sink with opt (the task's progress replaces opt.Progress). The
// task is bundling while the volume is read and storing once it has been
// read whole and the last parts and manifest are being stored; progress is
// the share of the volume whose bundled bytes are stored. On failure or
// cancellation every object stored is removed (when sink is a Remover) and
// the task ends failed with an error code and message.
func (r *Runner) Run(ctx context.Context, img disk.Image, sink Sink, opt Options) (*Manifest, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.mu.Lock()
	if r.task.State != Pending {
		st := r.task.State
		r.mu.Unlock()
		return nil, fmt.Errorf("bundle: task %s is %s, not pending", r.task.BundleID, st)
	}
	r.cancel = cancel
	r.mu.Unlock()
	r.update(func(t *Task) bool {
		if t.State != Pending { // cancelled already
			return false
		}
		t.State = Bundling
		return true
	})
	size := img.Size()
	opt.Progress = nil
	opt.stages = func(read, stored int64) {
		r.update(func(t *Task) bool {
			if t.State != Bundling && t.State != Storing {
				return false
			}
			st, pct := t.State, percent(stored, size)
			if read >= size {
				st = Storing
			}
			if pct == 100 {
				pct = 99 // 100% is for complete
			}
			if st == t.State && pct == t.Progress {
				return false
			}
			t.State, t.Progress = st, pct
			return true
		})
	}
	rec := &recorder{Sink: sink}
	m, err := Write(ctx, img, rec, opt)
	if err == nil {
		r.update(func(t *Task) bool { t.State, t.Progress = Complete, 100; return true })
		return m, nil
	}
	r.mu.Lock()
	cancelled := r.canceled
	r.mu.Unlock()
	if cancelled || errors.Is(err, context.Canceled) {
		err = errCancelled
	}
	msg := logtext.OneLine(err.Error())
	if rm, ok := sink.(Remover); ok {
		n, rerr := removeAll(rm, rec.names)
		if n > 0 {
			msg += fmt.Sprintf("; removed %d stored objects", n)
		}
		if rerr != nil {
			msg += "; removing stored objects: " + logtext.OneLine(rerr.Error())
		}
	}
	code := errorCode(err)
	r.update(func(t *Task) bool {
		t.State, t.Error = Failed, &TaskError{Code: code, Message: msg}
		return true
	})
	return nil, err
}

// removeAll removes names with a fresh context (the task's is cancelled).
func removeAll(rm Remover, names []string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := 0
	var first error
	for _, name := range names {
		if err := rm.Remove(ctx, name); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		n++
	}
	return n, first
}

func errorCode(err error) string {
	var de *disk.Error
	switch {
	case errors.Is(err, errCancelled):
		return CodeCancelled
	case errors.Is(err, ErrPolicy):
		return CodeInvalidPolicy
	case errors.As(err, &de):
		return CodeInvalidVolume
	case errors.As(err, new(*StoreError)):
		return CodeStorageFailed
	}
	return CodeInternal
}

func percent(n, total int64) int {
	if total <= 0 {
		return 100
	}
	return int(min(n, total) * 100 / total)
}
