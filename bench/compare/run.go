package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A sample is what one run of a command cost.
type sample struct {
	// Wall is the elapsed time; CPU the user plus system time.
	Wall, CPU time.Duration
	// MaxRSS is the child's peak resident set (file-backed pages of a
	// memory-mapped source included), in bytes.
	MaxRSS int64
	// PeakAnon is the highest anonymous resident memory seen while
	// polling /proc (only when asked for; 0 otherwise), in bytes.
	PeakAnon int64
}

// runChild runs args and measures it. With pollAnon it samples the
// child's RssAnon every few milliseconds, which costs a little time, so it
// is used only on untimed runs.
func runChild(args []string, pollAnon bool) (sample, error) {
	cmd := exec.Command(args[0], args[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return sample{}, err
	}
	var (
		peak int64
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	if pollAnon {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				if n := rssAnon(path); n > peak {
					peak = n
				}
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
	}
	err := cmd.Wait()
	wall := time.Since(start)
	close(done)
	wg.Wait()
	if err != nil {
		return sample{}, fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	s := sample{Wall: wall, CPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), PeakAnon: peak}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.MaxRSS = ru.Maxrss << 10 // Linux reports KiB
	}
	return s, nil
}

// rssAnon reads the RssAnon line of a /proc/PID/status file, in bytes (0
// when the process is gone).
func rssAnon(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "RssAnon:")
		if !ok {
			continue
		}
		kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		return kib << 10
	}
	return 0
}

// clean removes the outputs and flushes dirty pages, so neither freeing
// nor writing back the previous run's output lands on the next timed run.
func clean(paths ...string) error {
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return exec.Command("sync").Run()
}

// tool is one side of a comparison: how to convert src to dst.
type tool struct {
	name string
	args func(src, dst string) []string
	out  string
}

// pair is the result of timing two tools on one image.
type pair struct {
	a, b []sample
}

// timePair runs a and b runs times each on src, alternating which goes
// first, cleaning both outputs and syncing before every run.
func timePair(a, b tool, src string, runs int) (pair, error) {
	var p pair
	for i := range runs {
		order := []int{0, 1}
		if i%2 == 1 {
			order = []int{1, 0}
		}
		for _, which := range order {
			t := []tool{a, b}[which]
			if err := clean(a.out, b.out); err != nil {
				return p, err
			}
			s, err := runChild(t.args(src, t.out), false)
			if err != nil {
				return p, err
			}
			logf("  run %d %-8s %6.2fs  cpu %6.2fs  maxrss %s", i+1, t.name, s.Wall.Seconds(), s.CPU.Seconds(), mib(s.MaxRSS))
			if which == 0 {
				p.a = append(p.a, s)
			} else {
				p.b = append(p.b, s)
			}
		}
	}
	return p, clean(a.out, b.out)
}

// median returns the median of the samples' field picked by f.
func median(ss []sample, f func(sample) time.Duration) time.Duration {
	v := make([]time.Duration, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// maxRSS returns the highest peak RSS of the samples.
func maxRSS(ss []sample) int64 {
	var m int64
	for _, s := range ss {
		m = max(m, s.MaxRSS)
	}
	return m
}

func wall(s sample) time.Duration { return s.Wall }
func cpu(s sample) time.Duration  { return s.CPU }

// sameBytes reports whether the first n bytes of two files are identical
// (with cmp, which reads holes quickly), and whether both files are at
// least n bytes long.
func sameBytes(a, b string, n int64) error {
	for _, p := range []string{a, b} {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Size() < n {
			return fmt.Errorf("%s is %d bytes, shorter than the virtual size %d", p, st.Size(), n)
		}
	}
	out, err := exec.Command("cmp", "-n", strconv.FormatInt(n, 10), a, b).CombinedOutput()
	if err != nil {
		return fmt.Errorf("outputs differ: cmp: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// allocated returns the bytes of disk a file occupies.
func allocated(path string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return -1
	}
	return st.Blocks * 512
}
