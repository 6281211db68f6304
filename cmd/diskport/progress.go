package main

import (
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/sys/unix"
)

// progressMode is the value of --progress: "" (off), "bar" or "json".
// A bare --progress means "bar".
type progressMode string

func (m *progressMode) String() string   { return string(*m) }
func (m *progressMode) IsBoolFlag() bool { return true }
func (m *progressMode) Set(s string) error {
	switch s {
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

// progressJSON is one line of --progress=json.
type progressJSON struct {
	BytesConverted int64   `json:"bytes_converted"`
	TotalBytes     int64   `json:"total_bytes"`
	Percent        float64 `json:"percent"`
	BytesPerSecond float64 `json:"bytes_per_second"`
	ETASeconds     float64 `json:"eta_seconds"`
}

func newProgress(mode progressMode, w io.Writer, total int64, what string) *progressReporter {
	p := &progressReporter{mode: mode, w: w, start: time.Now(), tot: total}
	if mode == "bar" {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowBytes(true),
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

// progressLine is a terminal progress bar whose total is given with each
// update (the manifest and upload verbs use it).
type progressLine = progressReporter

// newProgressLine returns a progress bar drawn on w.
func newProgressLine(w io.Writer) *progressLine {
	return newProgress("bar", w, 0, "")
}

// stderrIsTerminal reports whether the progress bar has a terminal to
// draw on.
func stderrIsTerminal() bool {
	if stderr != os.Stderr {
		return false
	}
	st, err := os.Stderr.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// bar is a progress line shown on stderr when asked for or when stderr is
// a terminal; its methods do nothing otherwise.
type bar struct {
	mu    sync.Mutex
	line  *progressLine
	total int64
	done  int64
}

func newBar(asked bool, total int64) *bar {
	if !asked && !isTerminal(os.Stderr) {
		return &bar{}
	}
	return &bar{line: newProgressLine(stderr), total: total}
}

func (b *bar) add(n int64) {
	if b.line == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.line.update(b.done, b.total)
}

func (b *bar) finish() {
	if b.line != nil {
		b.line.finish()
	}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
