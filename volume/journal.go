package volume

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/diskport/diskport/internal/atomicfile"
)

// journalVersion changes when the journal's meaning changes. (1: the
// converter's own journal, before this package; 2: the caller's state is
// opaque.)
const journalVersion = 2

// JournalSpec describes the work a journal records: a volume cut into
// Segments segments of SegmentSize bytes, written from the source Source
// identifies. A resumed run continues only a journal with the same spec and
// volume size.
type JournalSpec struct {
	// Source identifies what the volume is written from (a fingerprint of
	// the image); a resumed run with another source is refused.
	Source string
	// Segments is the number of segments; SegmentSize their size in bytes.
	Segments    int
	SegmentSize int64
}

// A Journal records which segments of a file volume are finished, so that
// a killed run can be resumed. It lives beside the temporary file as
// ".NAME.diskport-journal" and is replaced atomically at each Checkpoint,
// after the volume is flushed, so it never claims more than the file holds.
// Its methods may be called from several goroutines at once.
type Journal struct {
	w    *Writer
	path string
	spec JournalSpec

	mu      sync.Mutex
	done    []bool
	resumed []int  // segments finished by earlier runs
	state   []byte // the caller's state at the earlier run's last checkpoint

	ckpt sync.Mutex // serialises Checkpoint
}

// journalFile is the journal's JSON.
type journalFile struct {
	Version     int    `json:"version"`
	Source      string `json:"source"`
	VolumeSize  int64  `json:"volume_size"`
	SegmentSize int64  `json:"segment_size"`
	Segments    int    `json:"segments"`
	Done        []byte `json:"done"` // bitmap, LSB first
	State       []byte `json:"state,omitempty"`
}

// JournalName returns the name of the resume journal of a file volume for
// dst.
func JournalName(dst string) string {
	return filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".diskport-journal")
}

func newJournal(w *Writer, spec JournalSpec) *Journal {
	return &Journal{w: w, path: JournalName(w.dst), spec: spec, done: make([]bool, spec.Segments)}
}

// removeJournal removes the journal of dst and its unfinished replacement,
// and, when one existed and sync is set, makes the removal durable.
func removeJournal(dst string, sync bool) error {
	p := JournalName(dst)
	err := os.Remove(p)
	os.Remove(p + ".new")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("volume: removing the old journal: %w", err)
	case sync:
		if err := atomicfile.SyncDir(dst); err != nil {
			return fmt.Errorf("volume: removing the old journal: %w", err)
		}
	}
	return nil
}

// loadJournal reads the journal of the interrupted run that wrote f. It
// returns nil and the reason when there is nothing to continue (no
// journal, an unreadable one, one that does not fit the file), and an
// error when the run must not be continued (another source, size or
// version).
func loadJournal(w *Writer, f *os.File, spec JournalSpec) (*Journal, string, error) {
	j := newJournal(w, spec)
	b, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		// Killed before its first checkpoint: nothing is known finished.
		return nil, "no journal", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("volume: %w", err)
	}
	var old journalFile
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, fmt.Sprintf("journal %s unreadable (%v)", j.path, err), nil
	}
	// The source first: a changed image also changes the segment count.
	switch {
	case old.Source != spec.Source:
		return nil, "", fmt.Errorf("volume: cannot resume into %s: the source image changed since the interrupted run (remove %s to start over)", w.dst, j.path)
	case old.VolumeSize != w.size:
		return nil, "", fmt.Errorf("volume: cannot resume into %s: the volume size changed from %d to %d bytes (remove %s to start over)", w.dst, old.VolumeSize, w.size, j.path)
	case old.Version != journalVersion, old.SegmentSize != spec.SegmentSize, old.Segments != spec.Segments:
		return nil, "", fmt.Errorf("volume: journal %s was written by another version of diskport (remove it to start over)", j.path)
	case len(old.Done) != (spec.Segments+7)/8:
		return nil, fmt.Sprintf("journal %s unreadable (a bitmap of %d bytes for %d segments)", j.path, len(old.Done), spec.Segments), nil
	}
	st, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("volume: %w", err)
	}
	if st.Size() != w.size {
		return nil, fmt.Sprintf("partial output %s is %d bytes, its journal says %d", w.tmp, st.Size(), w.size), nil
	}
	for i := range spec.Segments {
		if old.Done[i/8]&(1<<(i%8)) != 0 {
			j.done[i] = true
			j.resumed = append(j.resumed, i)
		}
	}
	j.state = old.State
	return j, "", nil
}

// Done reports whether segment i is finished (by this run or an earlier
// one).
func (j *Journal) Done(i int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done[i]
}

// MarkDone records that segment i is finished: written in full, though
// not necessarily flushed. The next Checkpoint makes it durable.
func (j *Journal) MarkDone(i int) {
	j.mu.Lock()
	j.done[i] = true
	j.mu.Unlock()
}

// Resumed returns the segments earlier runs finished, in increasing order;
// none unless the run continues an interrupted one.
func (j *Journal) Resumed() []int { return j.resumed }

// State returns the state the earlier run passed to its last Checkpoint,
// or nil.
func (j *Journal) State() []byte { return j.state }

// Checkpoint records the segments finished so far, with the caller's state
// (nil for none): it takes the set, flushes the volume (unless NoSync),
// then atomically replaces the journal file.
func (j *Journal) Checkpoint(state []byte) error {
	j.ckpt.Lock()
	defer j.ckpt.Unlock()
	j.mu.Lock()
	bits := make([]byte, (len(j.done)+7)/8)
	for i, d := range j.done {
		if d {
			bits[i/8] |= 1 << (i % 8)
		}
	}
	j.mu.Unlock()
	if err := j.w.sync(); err != nil {
		return err
	}
	b, err := json.Marshal(journalFile{Version: journalVersion, Source: j.spec.Source, VolumeSize: j.w.size,
		SegmentSize: j.spec.SegmentSize, Segments: j.spec.Segments, Done: bits, State: state})
	if err != nil {
		return err
	}
	tmp := j.path + ".new"
	if err := writeFileSync(tmp, b, !j.w.noSync); err != nil {
		return fmt.Errorf("volume: journal: %w", err)
	}
	if err := j.w.rename(tmp, j.path); err != nil {
		return fmt.Errorf("volume: journal: %w", err)
	}
	return nil
}

func writeFileSync(name string, b []byte, sync bool) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
