package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
)

// TestManifestShowJSON: `manifest show --output=json` prints the manifest's
// fields and its parts, each with where it is read from.
func TestManifestShowJSON(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	g := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 512, Seed: 22})
	dir := t.TempDir()
	if out, err := exec.Command(bin, "manifest", "create", "--part-size", "1M", "--format", "raw", g, dir).CombinedOutput(); err != nil {
		t.Fatalf("manifest create: %v: %s", err, out)
	}
	mpath := filepath.Join(dir, filepath.Base(g)+".manifest.xml")
	out, err := exec.Command(bin, "manifest", "show", "--output=json", mpath).Output()
	if err != nil {
		t.Fatalf("manifest show: %v: %s", err, out)
	}
	var s struct {
		FileFormat string `json:"file-format"`
		Size       int64  `json:"size"`
		Volume     int64  `json:"volume-size-gib"`
		SHA256     string `json:"sha256"`
		Parts      []struct {
			Index          int
			Offset, Length int64
			Key, From      string
		} `json:"parts"`
	}
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if s.FileFormat != "RAW" || s.Size != 3<<20+512 || s.Volume != 1 || len(s.SHA256) != 64 || len(s.Parts) != 4 {
		t.Fatalf("manifest show JSON: %s", out)
	}
	if p := s.Parts[3]; p.Index != 3 || p.Offset != 3<<20 || p.Length != 512 || p.From != filepath.Join(dir, p.Key) {
		t.Fatalf("part 3: %+v", p)
	}
	if c, _ := exec.Command(bin, "manifest", "show", "--output=xml", mpath).CombinedOutput(); len(c) == 0 {
		t.Fatal("--output=xml accepted silently")
	}
}
