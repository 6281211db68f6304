package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// buildCLI builds the diskport binary, once per test run, for tests that
// run it as a child process.
func buildCLI(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "diskport-cli-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "diskport")
		if out, err := exec.Command("go", "build", "-o", cliPath, ".").CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return cliPath
}

// throttle serves h's responses at rate bytes per second in total, however
// many requests are in flight.
func throttle(h http.Handler, rate int64) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(slowWriter{w, &mu, rate}, r)
	})
}

type slowWriter struct {
	http.ResponseWriter
	mu   *sync.Mutex
	rate int64
}

func (w slowWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), 256<<10)
		w.mu.Lock()
		m, err := w.ResponseWriter.Write(p[:k])
		time.Sleep(time.Duration(k) * time.Second / time.Duration(w.rate))
		w.mu.Unlock()
		n += m
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// TestResumeAfterKill kills a real conversion with SIGKILL at a random
// point, then resumes it: the result is the volume an uninterrupted run
// writes, and the work finished before the kill is not done again. The
// source is a streamOptimized VMDK read through an import manifest from a
// loopback HTTP server throttled to 64 MiB/s, so that the run lasts a few
// seconds however fast the machine converts, and the kill lands after
// the journal's first checkpoint and before the end.
func TestResumeAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kills a conversion of a 256 MiB image and resumes it")
	}
	t.Parallel()
	bin := buildCLI(t)
	g := testimg.Golden(t, testimg.Spec{Size: 256 << 20, Seed: 42})
	img := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	parts := t.TempDir()
	m, _, err := manifest.Create(context.Background(), img, parts, manifest.SplitOptions{PartSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(throttle(http.FileServer(http.Dir(parts)), 64<<20))
	defer srv.Close()
	for i := range m.Parts {
		m.Parts[i].GetURL = srv.URL + "/" + m.Parts[i].Key
	}
	dir := t.TempDir()
	mpath := filepath.Join(dir, "image.manifest.xml")
	if err := os.WriteFile(mpath, m.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "vol.raw")

	journal := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".diskport-journal")
	frac := 0.2 + 0.4*rand.Float64()
	start := time.Now()
	cmd := exec.Command(bin, "convert", "--workers", "1", "--checksum", "sha256", "--progress=json", "--manifest", mpath, dst)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed, killedAt := false, time.Duration(0)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var p progressJSON
		if json.Unmarshal(sc.Bytes(), &p) != nil || p.TotalBytes == 0 {
			continue
		}
		// Kill past the chosen point once the journal records some work.
		if _, err := os.Stat(journal); err == nil && float64(p.BytesConverted) >= frac*float64(p.TotalBytes) {
			cmd.Process.Signal(syscall.SIGKILL)
			killed, killedAt = true, time.Since(start)
			break
		}
	}
	io.Copy(io.Discard, stdout)
	cmd.Wait()
	if !killed {
		t.Fatalf("the conversion finished in %v, before it could be killed at %.0f%%", time.Since(start), frac*100)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Fatal("a killed run left a file under the final name")
	}
	out, err := exec.Command(bin, "convert", "--resume", "--checksum", "sha256", "--progress=json", "--manifest", mpath, dst).Output()
	if err != nil {
		t.Fatalf("resume: %v: %s", err, out)
	}
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	var res struct {
		Done          bool   `json:"done"`
		ResumedBytes  int64  `json:"resumed-bytes"`
		VirtualSHA256 string `json:"virtual-sha256"`
	}
	if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil || !res.Done {
		t.Fatalf("resume output %q: %v", lines[len(lines)-1], err)
	}
	if res.ResumedBytes == 0 {
		t.Errorf("the resumed run redid everything (killed at %.0f%%)", frac*100)
	}
	want, _ := os.ReadFile(g)
	sum := sha256.Sum256(want)
	if res.VirtualSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("virtual sha256 %s, want %x", res.VirtualSHA256, sum)
	}
	if d := testimg.Compare(dst, g, -1); d != "" {
		t.Fatalf("the resumed volume differs from the image: %s", d)
	}
	t.Logf("killed at %.0f%% after %v, resumed %d of %d bytes", frac*100, killedAt, res.ResumedBytes, len(want))
}

// TestMemoryBound converts a 4 TiB sparse RAW image and a streamOptimized
// VMDK in a child process and checks its peak resident memory.
func TestMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("long: large images (a 4 TiB sparse RAW, a 256 MiB VMDK) in a child process")
	}
	t.Parallel()
	bin := buildCLI(t)
	dir := t.TempDir()
	big := filepath.Join(dir, "big.img")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("data at the start"), 0)
	f.WriteAt([]byte("data at the end"), 4<<40-4096)
	f.Truncate(4 << 40)
	f.Close()
	g := testimg.Golden(t, testimg.Spec{Size: 256 << 20, Seed: 42})
	stream := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	for _, src := range []string{big, stream} {
		dst := filepath.Join(dir, "vol")
		cmd := exec.Command(bin, "convert", "--no-sync", "--force", "--checksum", "sha256", "--exact-size", src, dst)
		if src == big {
			cmd = exec.Command(bin, "convert", "--no-sync", "--force", src, dst)
		}
		rss, out, err := peakRSS(cmd)
		if err != nil {
			t.Fatalf("%s: %v: %s", src, err, out)
		}
		t.Logf("%s: peak anonymous memory %d MiB", filepath.Base(src), rss>>20)
		if rss > 128<<20 {
			t.Errorf("%s: peak anonymous memory %d MiB, want under 128 MiB", filepath.Base(src), rss>>20)
		}
		os.Remove(dst)
	}
}

// peakRSS runs cmd and returns the peak anonymous resident memory of the
// process (RssAnon: heap, stacks, buffers; not the page cache of the
// memory-mapped image), polled from /proc while it runs. (The child's
// rusage is no use here: it counts the memory of the test binary the child
// was forked from.)
func peakRSS(cmd *exec.Cmd) (int64, []byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	for {
		select {
		case err := <-done:
			return peak, out.Bytes(), err
		case <-time.After(10 * time.Millisecond):
		}
		b, err := os.ReadFile(status)
		if err != nil {
			continue
		}
		for line := range bytes.Lines(b) {
			if v, ok := bytes.CutPrefix(line, []byte("RssAnon:")); ok {
				var kb int64
				fmt.Sscan(string(v), &kb)
				peak = max(peak, kb<<10)
			}
		}
	}
}
