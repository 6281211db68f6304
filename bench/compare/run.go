//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A sample is what one run of a command cost.
type sample struct {
	// Wall is the elapsed time; CPU the user plus system time (from the
	// rusage of the children).
	Wall, CPU time.Duration
	// MaxRSS is the child's peak resident set (file-backed pages of a
	// memory-mapped source included), in bytes; for a pipeline of two
	// processes, the sum of theirs.
	MaxRSS int64
	// PeakAnon is the highest anonymous resident memory seen while
	// polling /proc (only when asked for; 0 otherwise), in bytes.
	PeakAnon int64
	// Minflt is the minor page faults of the child (from its rusage):
	// pages first touched or mapped without I/O, a cost of memory churn.
	Minflt int64
}

// add returns the cost of s and t running side by side (wall excepted).
func (s sample) add(t sample) sample {
	return sample{Wall: s.Wall, CPU: s.CPU + t.CPU, MaxRSS: s.MaxRSS + t.MaxRSS, PeakAnon: s.PeakAnon + t.PeakAnon, Minflt: s.Minflt + t.Minflt}
}

// A child is a started command being measured.
type child struct {
	cmd    *exec.Cmd
	args   []string
	stderr bytes.Buffer
	start  time.Time
	peak   int64
	done   chan struct{}
	wg     sync.WaitGroup
}

// startChild starts args. With pollAnon it samples the child's RssAnon
// every few milliseconds, which costs a little time, so it is used only on
// untimed runs. The child is killed if compare dies.
func startChild(args []string, pollAnon bool) (*child, error) {
	c := &child{args: args, done: make(chan struct{})}
	c.cmd = exec.Command(args[0], args[1:]...)
	c.cmd.Stderr = &c.stderr
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.start = time.Now()
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	if pollAnon {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			path := fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid)
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				if n := rssAnon(path); n > c.peak {
					c.peak = n
				}
				select {
				case <-c.done:
					return
				case <-tick.C:
				}
			}
		}()
	}
	return c, nil
}

// wait waits for the child and returns what it cost. With signalled, an
// exit by a signal compare sent is not an error.
func (c *child) wait(signalled bool) (sample, error) {
	err := c.cmd.Wait()
	wall := time.Since(c.start)
	close(c.done)
	c.wg.Wait()
	if err != nil && !(signalled && !c.cmd.ProcessState.Exited()) {
		return sample{}, fmt.Errorf("%s: %v: %s", strings.Join(c.args, " "), err, strings.TrimSpace(c.stderr.String()))
	}
	s := sample{Wall: wall, CPU: c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime(), PeakAnon: c.peak}
	if ru, ok := c.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.MaxRSS = ru.Maxrss << 10 // Linux reports KiB
		s.Minflt = ru.Minflt
	}
	return s, nil
}

// runChild runs args and measures it.
func runChild(args []string, pollAnon bool) (sample, error) {
	c, err := startChild(args, pollAnon)
	if err != nil {
		return sample{}, err
	}
	return c.wait(false)
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

// tool is one converter in a comparison: how to convert src to its out.
type tool struct {
	name string
	out  string
	run  func(src string, pollAnon bool) (sample, error)
}

// command is a tool that is one command, args(src, out).
func command(name, out string, args func(src, dst string) []string) tool {
	return tool{name: name, out: out, run: func(src string, poll bool) (sample, error) {
		return runChild(args(src, out), poll)
	}}
}

// nbdPipeline is the tool virt-v2v's pipeline is made of: qemu-nbd serves
// the image read-only on a unix socket, and nbdcopy copies the export into
// out. The wall time runs from starting qemu-nbd to nbdcopy's exit; the
// CPU time and memory are both processes'. qemu-nbd is stopped (SIGTERM,
// then SIGKILL after 10 s) whatever happens, and dies with compare.
func nbdPipeline(qemuNbd, nbdcopy, qemuFormat, sock, out string) tool {
	return tool{name: "qemu-nbd+nbdcopy", out: out, run: func(src string, poll bool) (sample, error) {
		os.Remove(sock)
		defer os.Remove(sock)
		srv, err := startChild([]string{qemuNbd, "--read-only", "--format=" + qemuFormat, "--persistent",
			"--shared=0", "--socket=" + sock, src}, poll)
		if err != nil {
			return sample{}, err
		}
		var (
			srvCost sample
			srvErr  error
			exited  = make(chan struct{})
		)
		go func() { srvCost, srvErr = srv.wait(true); close(exited) }()
		stop := func() {
			srv.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				srv.cmd.Process.Kill()
				<-exited
			}
		}
		if err := waitSocket(sock, exited, 30*time.Second); err != nil {
			stop()
			if srvErr != nil {
				return sample{}, srvErr
			}
			return sample{}, fmt.Errorf("%s: %v: %s", strings.Join(srv.args, " "), err, strings.TrimSpace(srv.stderr.String()))
		}
		cp, err := runChild([]string{nbdcopy, "nbd+unix:///?socket=" + sock, out}, poll)
		wall := time.Since(srv.start)
		stop()
		if err != nil && srvErr != nil {
			return sample{}, fmt.Errorf("%v; the server: %v", err, srvErr)
		}
		if err != nil {
			return sample{}, err
		}
		if srvErr != nil {
			return sample{}, srvErr
		}
		s := srvCost.add(cp)
		s.Wall = wall
		return s, nil
	}}
}

// waitSocket waits until a unix socket at path accepts connections, the
// server exits (exited is closed), or timeout passes.
func waitSocket(path string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("the server exited before listening")
		case <-time.After(2 * time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on %s after %v", path, timeout)
}

// measure runs every tool runs times on src, round i in the order
// roundOrder(len(tools), i) gives (see rotate.go), so over the rounds each
// tool takes each position, and follows each other tool, equally often;
// all outputs are deleted and `sync` is run before every run. It returns
// the samples by tool, then by round.
func measure(tools []tool, src string, runs int) ([][]sample, error) {
	out := make([][]sample, len(tools))
	var outs []string
	for _, t := range tools {
		outs = append(outs, t.out)
	}
	if c := balancedRounds(len(tools)); runs%c != 0 {
		logf("  %d rounds of %d tools: positions are balanced only over a multiple of %d rounds", runs, len(tools), c)
	}
	for i := range runs {
		for _, k := range roundOrder(len(tools), i) {
			t := tools[k]
			if err := clean(outs...); err != nil {
				return out, err
			}
			s, err := t.run(src, false)
			if err != nil {
				return out, err
			}
			logf("  run %d %-18s %6.2fs  cpu %6.2fs  minflt %7d  maxrss %s", i+1, t.name, s.Wall.Seconds(), s.CPU.Seconds(), s.Minflt, mib(s.MaxRSS))
			out[k] = append(out[k], s)
		}
	}
	return out, clean(outs...)
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

// geomeanRatio returns the geometric mean over rounds of b's field over
// a's (picked by f): the speed-up of a over b with the favoured first run
// of each pair cancelled out.
func geomeanRatio(a, b []sample, f func(sample) time.Duration) float64 {
	var sum float64
	n := 0
	for i := range min(len(a), len(b)) {
		if f(a[i]) > 0 && f(b[i]) > 0 {
			sum += math.Log(float64(f(b[i])) / float64(f(a[i])))
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return math.Exp(sum / float64(n))
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

// outPath returns the output file of a tool in work.
func outPath(work, name string) string {
	return filepath.Join(work, strings.NewReplacer("+", "-", " ", "-").Replace(name)+".raw")
}
