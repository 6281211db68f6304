//go:build linux || darwin || freebsd

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/volume"
)

// convertDone is the last line of `convert --progress=json`.
type convertDone struct {
	Done          bool   `json:"done"`
	VolumeSize    int64  `json:"volume-size"`
	ResumedBytes  int64  `json:"resumed-bytes"`
	StartedOver   string `json:"started-over-reason"`
	SHA256        string `json:"sha256"`
	VirtualSHA256 string `json:"virtual-sha256"`
}

// convertToEnd runs `diskport convert --progress=json ARGS...` to the end and
// returns its result line.
func convertToEnd(t *testing.T, bin string, args ...string) convertDone {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(bin, append([]string{"convert", "--progress=json"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("convert %v: %v: %s", args, err, errb.Bytes())
	}
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	var res convertDone
	if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil || !res.Done {
		t.Fatalf("convert %v: result %q: %v", args, lines[len(lines)-1], err)
	}
	return res
}

// sameVolume reports where the volume vol first differs from the virtual
// disk golden followed by zeros up to size bytes, or "" when it holds just
// that. The tail past the virtual disk must be a hole (SEEK_DATA finds no
// data there), as a conversion leaves it.
func sameVolume(golden, vol string, size int64) string {
	if d := testimg.Compare(vol, golden, size); d != "" {
		return d
	}
	st, err := os.Stat(golden)
	if err != nil {
		return err.Error()
	}
	h, err := disk.OpenHostFile(vol)
	if err != nil {
		return err.Error()
	}
	defer h.Close()
	if data, _, err := h.NextData(st.Size()); err != nil || data < size {
		return fmt.Sprintf("data at %d past the virtual disk (%d bytes): %v", data, st.Size(), err)
	}
	return ""
}

// killFractions are the kill points after the first milliseconds, as
// fractions of the length of a run; the last point is the run's last
// progress line (100%), just before the flush and the rename.
var killFractions = []float64{0.05, 0.15, 0.3, 0.45, 0.6, 0.75, 0.85, 0.93, 0.98}

// killConvert starts `diskport convert ARGS...` and SIGKILLs it after at,
// or, when atEnd, once it prints its 100% progress line. It returns how
// long the run lasted and whether the kill stopped it (false: it had
// finished).
func killConvert(t *testing.T, bin string, at time.Duration, atEnd bool, args ...string) (time.Duration, bool) {
	t.Helper()
	if atEnd {
		args = append([]string{"--progress=json"}, args...)
	}
	cmd := exec.Command(bin, append([]string{"convert"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if atEnd {
		dec := json.NewDecoder(stdout)
		for {
			var p progressJSON
			if dec.Decode(&p) != nil {
				break
			}
			if p.TotalBytes > 0 && p.BytesConverted == p.TotalBytes {
				break
			}
		}
		at = 0
	}
	done := make(chan error, 1)
	go func() {
		io.Copy(io.Discard, stdout)
		done <- cmd.Wait()
	}()
	select {
	case err = <-done:
	case <-time.After(at):
		cmd.Process.Signal(syscall.SIGKILL)
		err = <-done
	}
	took := time.Since(start)
	var ee *exec.ExitError
	killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()
	if err != nil && !killed {
		t.Fatalf("convert %v: %v", args, err)
	}
	return took, killed
}

// TestResumeFromAnyKillPoint SIGKILLs `diskport convert` at 13 points from
// its first milliseconds to the rename, for a streamOptimized and a
// monolithicSparse VMDK, a dynamic VHD and a RAW image, resumes each with
// --resume and checks the volume is byte-identical to a clean conversion
// (the golden disk followed by a hole up to the full 1 GiB), with the
// clean run's checksums. The points are 0, 2 and 5 ms, fractions of the
// measured length of a warm clean run (measured again whenever a run
// finishes before its kill, so a machine whose speed varies still gets
// kills spread over the run), and the moment the run prints 100%, before
// its flush and rename. A run killed before its first journal checkpoint
// must start over and say so (defect 1: it used to report success on a
// truncated volume). The RAW runs are durable (the default); the others
// use --no-sync, which changes only whether the volume is flushed before
// each checkpoint.
func TestResumeFromAnyKillPoint(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kill -9 loop over conversions of 384 MiB images")
	}
	bin := buildCLI(t)
	g := testimg.Golden(t, testimg.Spec{Size: 384 << 20, Seed: 1107})
	images := []struct {
		name, path string
		flags      []string
	}{
		{"streamOptimized", testimg.Make(t, g, "vmdk", "subformat=streamOptimized"), []string{"--no-sync"}},
		{"monolithicSparse", testimg.Make(t, g, "vmdk", "subformat=monolithicSparse"), []string{"--no-sync"}},
		{"dynamicVHD", testimg.Make(t, g, "vpc", "subformat=dynamic"), []string{"--no-sync"}},
		{"raw", g, nil},
	}
	for _, im := range images {
		t.Run(im.name, func(t *testing.T) {
			// The four loops share nothing; each re-measures its clean
			// run when a kill comes late, so running them side by side
			// shifts no kill point off its fraction.
			t.Parallel()
			dir := t.TempDir()
			flags := append([]string{"--checksum", "sha256"}, im.flags...)
			clean := filepath.Join(dir, "clean.raw")
			var want convertDone
			took := time.Duration(1 << 62)
			for range 2 { // the first run warms the page cache
				start := time.Now()
				want = convertToEnd(t, bin, append(flags, "--force", im.path, clean)...)
				took = min(took, time.Since(start))
			}
			if d := sameVolume(g, clean, 1<<30); d != "" || want.VolumeSize != 1<<30 {
				t.Fatalf("the clean conversion (%d bytes) is not the golden disk and zeros: %s", want.VolumeSize, d)
			}
			early := []time.Duration{0, 2 * time.Millisecond, 5 * time.Millisecond}
			points := len(early) + len(killFractions) + 1
			before, resumed, retries := 0, 0, 0 // kills that landed before the rename; runs that resumed work
			for k := 0; k < points; k++ {
				var at time.Duration
				switch {
				case k < len(early):
					at = early[k]
				case k < len(early)+len(killFractions):
					at = time.Duration(killFractions[k-len(early)] * float64(took))
				}
				atEnd := k == points-1
				dst := filepath.Join(dir, fmt.Sprintf("vol%d.raw", k))
				lasted, killed := killConvert(t, bin, at, atEnd, append(flags, im.path, dst)...)
				what := fmt.Sprintf("at %v", at.Round(time.Millisecond))
				if atEnd {
					what = fmt.Sprintf("at 100%% (%v)", lasted.Round(time.Millisecond))
				}
				if _, serr := os.Stat(dst); serr == nil {
					// Killed after the rename, or finished: the volume must be whole.
					if d := sameVolume(g, dst, 1<<30); d != "" {
						t.Fatalf("kill %d %s (killed %v): the volume under the final name is not whole: %s", k, what, killed, d)
					}
					os.Remove(dst)
					if !killed && !atEnd && retries < 10 {
						// Faster than measured: measure again, retry the point.
						t.Logf("kill %2d %s: the run finished first, in %v", k, what, lasted.Round(time.Millisecond))
						took, retries = lasted, retries+1
						k--
						continue
					}
					t.Logf("kill %2d %s: after the rename", k, what)
					continue
				}
				if !killed {
					t.Fatalf("kill %d %s: the run ended without a volume", k, what)
				}
				before++
				_, jerr := os.Stat(volume.JournalName(dst))
				hadJournal := jerr == nil
				res := convertToEnd(t, bin, append(flags, "--resume", im.path, dst)...)
				if d := sameVolume(g, dst, 1<<30); d != "" {
					t.Fatalf("kill %d %s (journal %v), resumed %d bytes: %s", k, what, hadJournal, res.ResumedBytes, d)
				}
				if res.SHA256 != want.SHA256 || res.VirtualSHA256 != want.VirtualSHA256 {
					t.Errorf("kill %d %s: resumed checksums %s %s, want %s %s", k, what, res.SHA256, res.VirtualSHA256, want.SHA256, want.VirtualSHA256)
				}
				if !hadJournal && !strings.HasSuffix(res.StartedOver, "starting over") {
					t.Errorf("kill %d %s: no journal, yet the resumed run does not say it started over (%q)", k, what, res.StartedOver)
				}
				if hadJournal && res.StartedOver != "" {
					t.Errorf("kill %d %s: the journal was there, yet the run started over: %q", k, what, res.StartedOver)
				}
				if res.ResumedBytes > 0 {
					resumed++
				}
				for _, p := range []string{volume.PartialName(dst), volume.JournalName(dst)} {
					if _, err := os.Stat(p); err == nil {
						t.Errorf("kill %d: %s left behind", k, p)
					}
				}
				t.Logf("kill %2d %s: journal %-5v resumed %4d MiB %s", k, what, hadJournal, res.ResumedBytes>>20, res.StartedOver)
				os.Remove(dst)
			}
			t.Logf("clean run %v; %d of %d kills landed before the rename, %d resumed finished work", took.Round(time.Millisecond), before, points, resumed)
			if before < 10 {
				t.Errorf("only %d kills landed before the rename, want at least 10", before)
			}
			if resumed < 3 {
				t.Errorf("only %d resumed runs continued finished work, want at least 3", resumed)
			}
		})
	}
}

// startConvert starts `diskport convert ARGS...` and waits until its
// partial output exists (and, when journal is set, its journal too).
func startConvert(t *testing.T, bin, dst string, journal bool, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	var errb bytes.Buffer
	cmd := exec.Command(bin, append([]string{"convert"}, args...)...)
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, perr := os.Stat(volume.PartialName(dst))
		_, jerr := os.Stat(volume.JournalName(dst))
		if perr == nil && (!journal || jerr == nil) {
			return cmd, &errb
		}
		if _, err := os.Stat(dst); err == nil || time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			_, derr := os.Stat(dst)
			t.Fatalf("convert %v: finished (%v), or no partial output after 30 s: %s", args, derr, errb.Bytes())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestResumeAfterKillBeforeCheckpoint is defect 1's regression test: a
// conversion killed after it created its partial output but before its
// first journal checkpoint, then run with --resume, must start over, say
// so, and produce the whole volume at its full size. (It used to truncate
// the file to 0 bytes, never size it again, and report success on a
// volume shorter than the one it printed.)
func TestResumeAfterKillBeforeCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kill -9 loop until a kill lands before the first checkpoint")
	}
	t.Parallel()
	bin := buildCLI(t)
	g := testimg.Golden(t, testimg.Spec{Size: 96 << 20, Seed: 1111})
	img := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	dst := filepath.Join(t.TempDir(), "vol.raw")
	for try := 0; ; try++ {
		cmd, _ := startConvert(t, bin, dst, false, "--workers", "1", img, dst)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if _, err := os.Stat(volume.JournalName(dst)); errors.Is(err, os.ErrNotExist) {
			break
		}
		if try == 10 {
			t.Fatal("every run wrote its journal before it could be killed")
		}
		os.Remove(volume.PartialName(dst))
		os.Remove(volume.JournalName(dst))
	}
	res := convertToEnd(t, bin, "--resume", img, dst)
	if res.StartedOver != "no journal: starting over" {
		t.Errorf("started_over %q, want %q", res.StartedOver, "no journal: starting over")
	}
	if d := sameVolume(g, dst, 1<<30); d != "" || res.VolumeSize != 1<<30 {
		t.Fatalf("resumed volume (reported %d bytes): %s", res.VolumeSize, d)
	}
	// The text output says it too.
	os.Remove(dst)
	cmd, _ := startConvert(t, bin, dst, false, "--workers", "1", img, dst)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	os.Remove(volume.JournalName(dst))
	out, err := exec.Command(bin, "convert", "--resume", img, dst).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("resume: no journal: starting over")) {
		t.Errorf("text output %q (%v) does not say it started over", out, err)
	}
	if d := sameVolume(g, dst, 1<<30); d != "" {
		t.Fatal(d)
	}
}

// TestSignalsStopCleanly sends SIGHUP, SIGTERM and SIGINT to running
// conversions: each stops with exit status 1 and a message. Without
// --resume the partial output and journal are removed; with --resume they
// are kept and the next --resume finishes the volume. (SIGHUP, an SSH
// session dropping, used to kill the process and leave the partial output
// behind.)
func TestSignalsStopCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("long: six throttled conversions stopped by signals, three resumed")
	}
	t.Parallel()
	bin := buildCLI(t)
	g := testimg.Golden(t, testimg.Spec{Size: 96 << 20, Seed: 1111})
	// Read through a manifest from a server throttled to 16 MiB/s, so that
	// a run lasts seconds however fast the machine converts.
	mpath := throttledManifest(t, testimg.Make(t, g, "vmdk", "subformat=streamOptimized"), 16<<20)
	dir := t.TempDir()
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT} {
		for _, resume := range []bool{false, true} {
			dst := filepath.Join(dir, fmt.Sprintf("vol-%d-%v.raw", sig, resume))
			args := []string{"--workers", "1", "--no-sync", "--manifest", mpath, dst}
			if resume {
				args = append([]string{"--resume"}, args...)
			}
			cmd, errb := startConvert(t, bin, dst, true, args...)
			cmd.Process.Signal(sig)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("%v (resume %v): %v, want exit status 1: %s", sig, resume, err, errb.Bytes())
			}
			if !strings.Contains(errb.String(), "convert stopped") {
				t.Errorf("%v (resume %v): stderr %q does not say the conversion stopped", sig, resume, errb.String())
			}
			_, perr := os.Stat(volume.PartialName(dst))
			_, jerr := os.Stat(volume.JournalName(dst))
			if _, err := os.Stat(dst); err == nil {
				t.Fatalf("%v: a stopped run left a file under the final name", sig)
			}
			if !resume {
				if perr == nil || jerr == nil {
					t.Errorf("%v without --resume: partial output (%v) or journal (%v) left behind", sig, perr, jerr)
				}
				continue
			}
			if perr != nil || jerr != nil {
				t.Fatalf("%v with --resume: partial output (%v) or journal (%v) removed", sig, perr, jerr)
			}
			res := convertToEnd(t, bin, "--resume", "--manifest", mpath, dst)
			if res.ResumedBytes == 0 || res.StartedOver != "" {
				t.Errorf("%v: the next --resume redid everything (started over: %q)", sig, res.StartedOver)
			}
			if d := sameVolume(g, dst, 1<<30); d != "" {
				t.Fatalf("%v: resumed volume: %s", sig, d)
			}
		}
	}
}

// throttledManifest splits img into 1 MiB parts served by a loopback HTTP
// server throttled to rate bytes per second, and returns the path of an
// import manifest whose parts are its URLs.
func throttledManifest(t *testing.T, img string, rate int64) string {
	t.Helper()
	parts := t.TempDir()
	m, _, err := manifest.Create(context.Background(), img, parts, manifest.SplitOptions{PartSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(throttle(http.FileServer(http.Dir(parts)), rate))
	t.Cleanup(srv.Close)
	for i := range m.Parts {
		m.Parts[i].GetURL = srv.URL + "/" + m.Parts[i].Key
	}
	mpath := filepath.Join(t.TempDir(), "image.manifest.xml")
	if err := os.WriteFile(mpath, m.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	return mpath
}
