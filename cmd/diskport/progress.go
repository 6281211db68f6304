package main

import (
	"encoding/json"
	"flag"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressMode is the value of --progress: "" (off), "bar" or "json".
// A bare --progress means "bar".
type progressMode string

func (m *progressMode) String() string   { return string(*m) }
func (m *progressMode) IsBoolFlag() bool { return true }
func (m *progressMode) Set(s string) error {
	switch strings.ToLower(s) {
	case "true", "bar":
		*m = "bar"
	case "json":
		*m = "json"
	case "false", "":
		*m = ""
	default:
		return usageError("--progress takes no value, or =json")
	}
	return nil
}

// progressReporter shows progress as a terminal bar or JSON lines.
type progressReporter struct {
	mode  progressMode
	w     io.Writer
	bar   *progressbar.ProgressBar
	start time.Time

	mu   sync.Mutex
	last time.Time
	done int64
	tot  int64
}

// progressJSON is one line of --progress=json. Its keys, like every JSON
// key diskport writes, are in qemu-img's kebab-case.
type progressJSON struct {
	BytesConverted int64   `json:"bytes-converted"`
	TotalBytes     int64   `json:"total-bytes"`
	Percent        float64 `json:"percent"`
	BytesPerSecond float64 `json:"bytes-per-second"`
	ETASeconds     float64 `json:"eta-seconds"`
}

// convertedJSON is the last line of `convert --progress=json`: the result.
// A checksum not asked for is absent, never "".
type convertedJSON struct {
	Done         bool   `json:"done"`
	Source       string `json:"source"`
	Destination  string `json:"destination"`
	VirtualSize  int64  `json:"virtual-size"`
	VolumeSize   int64  `json:"volume-size"`
	WrittenBytes int64  `json:"written-bytes"`
	ResumedBytes int64  `json:"resumed-bytes"`
	// StartedOver is true when --resume found nothing usable to continue
	// and started over; StartedOverReason says why.
	StartedOver       bool   `json:"started-over"`
	StartedOverReason string `json:"started-over-reason,omitempty"`
	SHA256            string `json:"sha256,omitempty"`
	VirtualSHA256     string `json:"virtual-sha256,omitempty"`
}

// exportedJSON is the last line of `convert -O FMT --progress=json`.
type exportedJSON struct {
	Done        bool   `json:"done"`
	Source      string `json:"source"`
	Destination string `json:"destination"`
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
	ImageSize   int64  `json:"image-size"`
	SHA256      string `json:"sha256,omitempty"`
}

func newProgress(mode progressMode, w io.Writer, total int64, what string) *progressReporter {
	p := &progressReporter{mode: mode, w: w, start: time.Now(), tot: total}
	if mode == "bar" {
		max := total
		if max <= 0 {
			max = -1 // not known yet: the bar takes a max of 0 as one that never moves
		}
		p.bar = progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowBytes(true),
			progressbar.OptionUseIECUnits(true), // KiB, MiB, GiB, as qemu-img and the summaries
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { io.WriteString(w, "\n") }),
		)
	}
	return p
}

// update is the library's progress callback.
func (p *progressReporter) update(done, total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil && total != p.tot {
		p.bar.ChangeMax64(total)
	}
	p.done, p.tot = done, total
	if p.bar != nil {
		p.bar.Set64(done)
		return
	}
	if now := time.Now(); now.Sub(p.last) >= 200*time.Millisecond || done == total {
		p.last = now
		p.emit()
	}
}

func (p *progressReporter) emit() {
	secs := max(time.Since(p.start).Seconds(), 1e-3)
	rate := float64(p.done) / secs
	l := progressJSON{BytesConverted: p.done, TotalBytes: p.tot, BytesPerSecond: rate, Percent: 100}
	if p.tot > 0 {
		l.Percent = 100 * float64(p.done) / float64(p.tot)
	}
	if rate > 0 {
		l.ETASeconds = float64(p.tot-p.done) / rate
	}
	b, _ := json.Marshal(l)
	p.w.Write(append(b, '\n'))
}

// finish completes the display.
func (p *progressReporter) finish() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
	}
}

// stderrIsTerminal reports whether the progress bar has a terminal to
// draw on.
func stderrIsTerminal() bool {
	if stderr != os.Stderr {
		return false
	}
	return isTerminal(os.Stderr)
}

// progressFlags registers --progress and qemu-img's short form -p as
// booleans, for the verbs whose progress is only a bar on stderr.
func progressFlags(fs *flag.FlagSet) *bool {
	p := fs.Bool("progress", false, "show a progress bar on stderr (default: when stderr is a terminal)")
	fs.BoolVar(p, "p", false, "short for --progress")
	return p
}

// bar is a progress bar on stderr, shown when asked for or when stderr is
// a terminal; its methods do nothing otherwise, or on a nil bar.
type bar struct {
	mu    sync.Mutex
	line  *progressReporter
	total int64
	done  int64
}

// newBar returns the bar of a task of total bytes, described by what.
func newBar(asked bool, total int64, what string) *bar {
	if !asked && !stderrIsTerminal() {
		return &bar{}
	}
	return &bar{line: newProgress("bar", stderr, total, what), total: total}
}

// set shows done of total bytes: the progress callback of convert,
// manifest and bundle.
func (b *bar) set(done, total int64) {
	if b.line == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done, b.total = done, total
	b.line.update(done, total)
}

func (b *bar) finish() {
	if b.line != nil {
		b.line.finish()
	}
}

func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd()))
}
