package main

import (
	"fmt"
	"io"
	"time"
)

// progressLine draws "NN.N% (done/total)" on one terminal line, at most ten
// times a second.
type progressLine struct {
	w     io.Writer
	last  time.Time
	start time.Time
	done  int64
	total int64
}

func newProgressLine(w io.Writer) *progressLine {
	return &progressLine{w: w, start: time.Now()}
}

func (p *progressLine) update(done, total int64) {
	p.done, p.total = done, total
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw()
	}
}

func (p *progressLine) draw() {
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	rate := float64(p.done) / max(time.Since(p.start).Seconds(), 1e-3) / (1 << 20)
	fmt.Fprintf(p.w, "\r%5.1f%% (%s / %s) %.0f MiB/s ", pct, sizeString(p.done), sizeString(p.total), rate)
}

func (p *progressLine) finish() {
	p.draw()
	fmt.Fprintln(p.w)
}
