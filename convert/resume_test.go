package convert

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/raw"
	"github.com/diskport/diskport/volume"
)

func TestChecksum(t *testing.T) {
	img, want := openGolden(t, 19<<20+512, 8)
	dst := filepath.Join(t.TempDir(), "vol")
	res, err := Convert(context.Background(), img, dst, Options{Checksum: true, NoSync: true, Workers: 3, VolumeSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	vsum := sha256.Sum256(want)
	if !bytes.Equal(res.VirtualSHA256, vsum[:]) {
		t.Errorf("virtual sha256 %x, want %x", res.VirtualSHA256, vsum)
	}
	b, _ := os.ReadFile(dst)
	sum := sha256.Sum256(b)
	if !bytes.Equal(res.SHA256, sum[:]) {
		t.Errorf("volume sha256 %x, want %x", res.SHA256, sum)
	}
}

// TestResumeAfterFailure fails a resumable run part way, then resumes it:
// the finished segments are not converted again, and the volume and its
// checksum are those of an uninterrupted run.
func TestResumeAfterFailure(t *testing.T) {
	img, want := openGolden(t, 70<<20, 9)
	dir := t.TempDir()
	dst := filepath.Join(dir, "vol")
	_, err := Convert(context.Background(), failing{img, 45 << 20}, dst, Options{Resume: true, Checksum: true, Workers: 2})
	if err == nil {
		t.Fatal("the failing run succeeded")
	}
	if _, err := os.Stat(volume.PartialName(dst)); err != nil {
		t.Fatalf("resumable run removed its partial output: %v", err)
	}
	if _, err := os.Stat(volume.JournalName(dst)); err != nil {
		t.Fatalf("resumable run left no journal: %v", err)
	}
	res, err := Convert(context.Background(), img, dst, Options{Resume: true, Checksum: true, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.ResumedBytes < 16<<20 || res.ResumedBytes > 45<<20 {
		t.Errorf("resumed %d bytes, want the segments before the failure at %d", res.ResumedBytes, 45<<20)
	}
	if res.WrittenBytes > int64(len(want))-res.ResumedBytes {
		t.Errorf("resumed run wrote %d bytes, more than the %d left", res.WrittenBytes, int64(len(want))-res.ResumedBytes)
	}
	checkVolume(t, dst, want, GiB)
	vsum := sha256.Sum256(want)
	if !bytes.Equal(res.VirtualSHA256, vsum[:]) {
		t.Errorf("virtual sha256 after resume %x, want %x", res.VirtualSHA256, vsum)
	}
	for _, p := range []string{volume.PartialName(dst), volume.JournalName(dst)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

func TestResumeRefusesChanges(t *testing.T) {
	img, _ := openGolden(t, 40<<20, 10)
	dir := t.TempDir()
	dst := filepath.Join(dir, "vol")
	if _, err := Convert(context.Background(), failing{img, 30 << 20}, dst, Options{Resume: true}); err == nil {
		t.Fatal("the failing run succeeded")
	}
	other, err := raw.OpenFile(testimg.Golden(t, testimg.Spec{Size: 40 << 20, Seed: 11}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := Convert(context.Background(), other, dst, Options{Resume: true}); err == nil || !strings.Contains(err.Error(), "source image changed") {
		t.Fatalf("resume with another source: %v", err)
	}
	if _, err := Convert(context.Background(), img, dst, Options{Resume: true, VolumeSize: 2 * GiB}); err == nil || !strings.Contains(err.Error(), "volume size changed") {
		t.Fatalf("resume with another size: %v", err)
	}
	// Without Resume the partial output is simply replaced.
	if _, err := Convert(context.Background(), img, dst, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
}

// TestResumeSourceChangedSize is defect 9's regression test: resuming with
// another source whose size, and so segment count, differs too says the
// source changed (it used to say the journal "was written by another
// version of diskport").
func TestResumeSourceChangedSize(t *testing.T) {
	img, _ := openGolden(t, 40<<20, 10)
	dst := filepath.Join(t.TempDir(), "vol")
	if _, err := Convert(context.Background(), failing{img, 30 << 20}, dst, Options{Resume: true, NoSync: true}); err == nil {
		t.Fatal("the failing run succeeded")
	}
	other, want := openGolden(t, 72<<20, 12)
	_, err := Convert(context.Background(), other, dst, Options{Resume: true, NoSync: true})
	if err == nil || !strings.Contains(err.Error(), "source image changed") {
		t.Fatalf("resume with a bigger source: %v, want the source changed", err)
	}
	if _, err := Convert(context.Background(), other, dst, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	checkVolume(t, dst, want, GiB)
}

// TestResumeStartsOverWithoutJournal: a partial output without a journal
// (a run killed before its first checkpoint) is converted from zero, the
// result says so, and the volume has its full size (defect 1).
func TestResumeStartsOverWithoutJournal(t *testing.T) {
	img, want := openGolden(t, 40<<20, 13)
	dst := filepath.Join(t.TempDir(), "vol")
	if _, err := Convert(context.Background(), failing{img, 30 << 20}, dst, Options{Resume: true, NoSync: true}); err == nil {
		t.Fatal("the failing run succeeded")
	}
	if err := os.Remove(volume.JournalName(dst)); err != nil {
		t.Fatal(err)
	}
	res, err := Convert(context.Background(), img, dst, Options{Resume: true, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.StartedOver != "no journal: starting over" || res.ResumedBytes != 0 {
		t.Errorf("StartedOver %q, ResumedBytes %d", res.StartedOver, res.ResumedBytes)
	}
	checkVolume(t, dst, want, GiB)
}
