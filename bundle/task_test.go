package bundle

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestParseState(t *testing.T) {
	for in, want := range map[string]State{
		"pending": Pending, "waiting-for-shutdown": WaitingForShutdown, "bundling": Bundling, "storing": Storing,
		"cancelling": Cancelling, "canceling": Cancelling, "complete": Complete, "failed": Failed, " storing\n": Storing,
	} {
		if got, err := ParseState(in); err != nil || got != want {
			t.Errorf("ParseState(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "cancelled", "Complete", "done"} {
		if _, err := ParseState(bad); err == nil {
			t.Errorf("ParseState(%q) succeeded", bad)
		}
	}
}

func TestNewBundleID(t *testing.T) {
	if id := NewBundleID(); !regexp.MustCompile(`^bun-[0-9a-f]{8}$`).MatchString(id) {
		t.Errorf("NewBundleID() = %q", id)
	}
}

// updates collects the states a runner reports.
type updates struct {
	mu    sync.Mutex
	tasks []Task
}

func (u *updates) add(t Task) { u.mu.Lock(); u.tasks = append(u.tasks, t); u.mu.Unlock() }

func (u *updates) states() []State {
	u.mu.Lock()
	defer u.mu.Unlock()
	var s []State
	for _, t := range u.tasks {
		if len(s) == 0 || s[len(s)-1] != t.State {
			s = append(s, t.State)
		}
	}
	return s
}

func randomImage(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestRunnerComplete(t *testing.T) {
	img := memImage(t, randomImage(t, 3<<20))
	r := NewRunner("i-12345678", S3Storage{Bucket: "b", Prefix: "img"})
	var u updates
	r.OnUpdate = u.add
	opt := testOptions("img")
	opt.PartSize, opt.Level = 256<<10, 1
	dir := Dir(t.TempDir())
	if _, err := r.Run(context.Background(), img, dir, opt); err != nil {
		t.Fatal(err)
	}
	task := r.Task()
	if task.State != Complete || task.Progress != 100 || task.Error != nil || !strings.HasPrefix(task.BundleID, "bun-") {
		t.Errorf("final task %+v", task)
	}
	if got := u.states(); !equalStates(got, []State{Bundling, Storing, Complete}) {
		t.Errorf("states %v", got)
	}
	last := -1
	for _, tk := range u.tasks {
		if tk.Progress < last {
			t.Errorf("progress went back from %d%% to %d%%", last, tk.Progress)
		}
		if tk.State != Complete && tk.Progress > 99 {
			t.Errorf("%s at %d%%", tk.State, tk.Progress)
		}
		last = tk.Progress
	}
	seen := map[int]bool{}
	for _, tk := range u.tasks {
		seen[tk.Progress] = true
	}
	if len(seen) < 3 {
		t.Errorf("progress took only the values %v over 12 parts", seen)
	}
	if _, err := r.Run(context.Background(), img, dir, opt); err == nil {
		t.Error("a completed task ran again")
	}
	if r.Cancel() {
		t.Error("Cancel changed a completed task")
	}
}

func equalStates(a, b []State) bool {
	return strings.Join(stateStrings(a), ",") == strings.Join(stateStrings(b), ",")
}

func stateStrings(s []State) []string {
	var out []string
	for _, x := range s {
		out = append(out, string(x))
	}
	return out
}

// gateSink stores parts in a directory and, at part 3, calls hook and
// waits for the context to end.
type gateSink struct {
	Dir
	hook func()
}

func (g gateSink) Put(ctx context.Context, name string, data []byte) error {
	if strings.HasSuffix(name, ".part.03") {
		g.hook()
		<-ctx.Done()
		return ctx.Err()
	}
	return g.Dir.Put(ctx, name, data)
}

func TestRunnerCancel(t *testing.T) {
	img := memImage(t, randomImage(t, 3<<20))
	r := NewRunner("i-1", S3Storage{Bucket: "b", Prefix: "img"})
	var u updates
	r.OnUpdate = u.add
	opt := testOptions("img")
	opt.PartSize, opt.Level, opt.Uploads = 256<<10, 1, 1
	dir := Dir(t.TempDir())
	_, err := r.Run(context.Background(), img, gateSink{dir, func() { go r.Cancel() }}, opt)
	if !errors.Is(err, errCancelled) {
		t.Fatalf("Run = %v, want cancelled", err)
	}
	task := r.Task()
	if task.State != Failed || task.Error == nil || task.Error.Code != CodeCancelled || !strings.Contains(task.Error.Message, "removed 3 stored objects") {
		t.Errorf("task %+v error %+v", task, task.Error)
	}
	// The volume may have been read whole (storing) before part 3 blocks.
	if got := u.states(); !equalStates(got, []State{Bundling, Cancelling, Failed}) && !equalStates(got, []State{Bundling, Storing, Cancelling, Failed}) {
		t.Errorf("states %v", got)
	}
	if entries, _ := os.ReadDir(string(dir)); len(entries) != 0 {
		t.Errorf("cancelled task left %d files", len(entries))
	}
}

func TestRunnerFailure(t *testing.T) {
	img := memImage(t, randomImage(t, 2<<20))
	r := NewRunner("i-1", S3Storage{Bucket: "b", Prefix: "img"})
	opt := testOptions("img")
	opt.PartSize, opt.Level = 256<<10, 1
	dir := Dir(t.TempDir())
	_, err := r.Run(context.Background(), img, failSink{dir, "img.part.04"}, opt)
	if err == nil {
		t.Fatal("Run succeeded")
	}
	task := r.Task()
	if task.State != Failed || task.Error == nil || task.Error.Code != CodeStorageFailed || !strings.Contains(task.Error.Message, "img.part.04: disk full") {
		t.Errorf("task %+v error %+v", task, task.Error)
	}
	if entries, _ := os.ReadDir(string(dir)); len(entries) != 0 {
		t.Errorf("failed task left %d files", len(entries))
	}
}

func TestRunnerCancelBeforeRun(t *testing.T) {
	r := NewRunner("i-1", S3Storage{Bucket: "b", Prefix: "img"})
	if !r.Cancel() {
		t.Fatal("Cancel of a pending task had no effect")
	}
	if task := r.Task(); task.State != Failed || task.Error == nil || task.Error.Code != CodeCancelled {
		t.Errorf("task %+v", task)
	}
	dir := Dir(t.TempDir())
	if _, err := r.Run(context.Background(), memImage(t, make([]byte, 4096)), dir, testOptions("img")); err == nil {
		t.Error("a cancelled task ran")
	}
	if entries, _ := os.ReadDir(string(dir)); len(entries) != 0 {
		t.Errorf("a cancelled task stored %d files", len(entries))
	}
}
