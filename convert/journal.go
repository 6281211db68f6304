package convert

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/diskport/diskport/disk"
	"golang.org/x/sys/unix"
)

// journalVersion changes when the journal's meaning changes.
const journalVersion = 1

// A journal records which segments of a file volume are finished, so a
// killed run can be resumed. It lives beside the temporary output as
// ".NAME.diskport-journal" and is replaced atomically at each checkpoint,
// after the output is flushed, so it never claims more than the output
// holds. Block-device outputs keep no journal.
type journal struct {
	path string // "" when there is none

	mu      sync.Mutex
	done    []bool
	resumed []int // segments finished by earlier runs

	file      journalFile
	hashNext  int
	hashState []byte
}

// journalFile is the journal's JSON.
type journalFile struct {
	Version     int    `json:"version"`
	Source      string `json:"source"` // fingerprint of the image
	VolumeSize  int64  `json:"volume_size"`
	SegmentSize int64  `json:"segment_size"`
	Segments    int    `json:"segments"`
	Done        []byte `json:"done"` // bitmap, LSB first
	HashNext    int    `json:"hash_next,omitempty"`
	HashState   []byte `json:"hash_state,omitempty"`
}

func journalName(dst string) string {
	return filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".diskport-journal")
}

// fingerprint identifies an image: its description and samples of its
// first and last MiB.
func fingerprint(src disk.Image) (string, error) {
	h := sha256.New()
	info := src.Info()
	fmt.Fprintf(h, "%s|%s|%d|%d|%d|", info.Format, info.Subformat, info.VirtualSize, info.FileSize, info.ClusterSize)
	buf := make([]byte, 1<<20)
	for _, off := range []int64{0, max(0, src.Size()-int64(len(buf)))} {
		n := min(int64(len(buf)), src.Size()-off)
		if _, err := src.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return "", err
		}
		h.Write(buf[:n])
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// openJournal returns the journal of this conversion: the earlier run's
// when resuming into the same output, else a new one.
func openJournal(src disk.Image, out *output, opts Options, size int64, segments int) (*journal, error) {
	j := &journal{done: make([]bool, segments)}
	if out.device {
		if opts.Resume {
			return nil, fmt.Errorf("convert: cannot resume onto block device %s: it keeps no journal", out.dst)
		}
		return j, nil
	}
	fp, err := fingerprint(src)
	if err != nil {
		return nil, err
	}
	j.path = journalName(out.dst)
	j.file = journalFile{Version: journalVersion, Source: fp, VolumeSize: size, SegmentSize: segmentSize, Segments: segments}
	if !out.resumed {
		os.Remove(j.path)
		return j, nil
	}
	b, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		// Killed before its first checkpoint: nothing is known finished.
		return j, out.f.Truncate(0)
	}
	if err != nil {
		return nil, fmt.Errorf("convert: %w", err)
	}
	var old journalFile
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, fmt.Errorf("convert: journal %s is damaged (%v); remove it and %s to start over", j.path, err, out.tmp)
	}
	switch {
	case old.Version != journalVersion, old.SegmentSize != segmentSize, old.Segments != segments:
		return nil, fmt.Errorf("convert: journal %s was written by another version of diskport; remove it to start over", j.path)
	case old.Source != fp:
		return nil, fmt.Errorf("convert: cannot resume into %s: the source image changed since the interrupted run (remove %s to start over)", out.dst, j.path)
	case old.VolumeSize != size:
		return nil, fmt.Errorf("convert: cannot resume into %s: the volume size changed from %d to %d bytes (remove %s to start over)", out.dst, old.VolumeSize, size, j.path)
	}
	for i := range segments {
		if i/8 < len(old.Done) && old.Done[i/8]&(1<<(i%8)) != 0 {
			j.done[i] = true
			j.resumed = append(j.resumed, i)
		}
	}
	j.hashNext, j.hashState = old.HashNext, old.HashState
	return j, nil
}

func (j *journal) isDone(i int) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.done[i]
}

func (j *journal) markDone(i int) {
	j.mu.Lock()
	j.done[i] = true
	j.mu.Unlock()
}

// resumedBytes returns the bytes of the virtual disk earlier runs finished.
func (j *journal) resumedBytes(total int64) int64 {
	var n int64
	for i := range j.resumed {
		n += min(segmentSize, total-int64(j.resumed[i])*segmentSize)
	}
	return n
}

// checkpoint records the finished segments: it takes the set, flushes the
// output (unless noSync), then replaces the journal file.
func (j *journal) checkpoint(out *output, h *orderedHash, noSync bool) error {
	if j.path == "" {
		return nil
	}
	j.mu.Lock()
	bits := make([]byte, (len(j.done)+7)/8)
	for i, d := range j.done {
		if d {
			bits[i/8] |= 1 << (i % 8)
		}
	}
	j.mu.Unlock()
	f := j.file
	f.Done = bits
	if h != nil {
		f.HashNext, f.HashState = h.snapshot()
	}
	if !noSync {
		if err := unix.Fdatasync(int(out.f.Fd())); err != nil {
			return fmt.Errorf("convert: flushing %s: %w", out.tmp, err)
		}
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	tmp := j.path + ".new"
	if err := writeFileSync(tmp, b, !noSync); err != nil {
		return fmt.Errorf("convert: journal: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("convert: journal: %w", err)
	}
	return nil
}

func writeFileSync(name string, b []byte, sync bool) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, bytes.NewReader(b)); err != nil {
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

// remove deletes the journal once the volume is in place.
func (j *journal) remove() {
	if j.path != "" {
		os.Remove(j.path)
		os.Remove(j.path + ".new")
	}
}
