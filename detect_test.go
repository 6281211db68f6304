package diskport_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport"
	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
)

func TestDetect(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 2 << 20, Seed: 9})
	desc := filepath.Join(t.TempDir(), "flat.vmdk")
	if err := os.WriteFile(desc, []byte("# Disk DescriptorFile\n\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"monolithicFlat\"\nRW 4096 FLAT \"/etc/passwd\" 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		path string
		want diskport.Format
	}{
		{"raw", g, diskport.Raw},
		{"qcow2", testimg.Make(t, g, "qcow2", ""), diskport.QCOW2},
		{"vmdk-sparse", testimg.Make(t, g, "vmdk", ""), diskport.VMDK},
		{"vmdk-stream", testimg.Make(t, g, "vmdk", "subformat=streamOptimized"), diskport.VMDK},
		{"vmdk-descriptor", desc, diskport.VMDK},
		{"vhd-dynamic", testimg.Make(t, g, "vpc", ""), diskport.VHD},
		{"vhd-fixed", testimg.Make(t, g, "vpc", "subformat=fixed"), diskport.VHD},
		{"vhdx", testimg.Make(t, g, "vhdx", ""), diskport.VHDX},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := disk.OpenHostFile(c.path)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			got, err := diskport.Detect(h)
			if err != nil || got != c.want {
				t.Fatalf("Detect = %v, %v; want %v", got, err, c.want)
			}
			// Declared RAW: anything that is not RAW is a mismatch,
			// unless the declaration is trusted.
			img, err := diskport.Open(c.path, diskport.Options{Format: "raw"})
			if c.want == diskport.Raw {
				if err != nil {
					t.Fatalf("Open as raw: %v", err)
				}
				img.Close()
				return
			}
			if !errors.Is(err, disk.ErrFormatMismatch) {
				t.Fatalf("Open(declared RAW) of %s = %v, want a format mismatch", c.want, err)
			}
			img, err = diskport.Open(c.path, diskport.Options{Format: "RAW", TrustFormat: true})
			if err != nil {
				t.Fatalf("Open(RAW, trusted): %v", err)
			}
			st, _ := os.Stat(c.path)
			if img.Size() != (st.Size()+511)/512*512 {
				t.Fatalf("trusted RAW size %d, want the file's %d", img.Size(), st.Size())
			}
			img.Close()
		})
	}
}

func TestDeclaredFormatIsAuthoritative(t *testing.T) {
	g := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 10})
	// A RAW disk declared VMDK or VHD is not parsed as either.
	for _, f := range []string{"VMDK", "vhd"} {
		if _, err := diskport.Open(g, diskport.Options{Format: f}); !errors.Is(err, disk.ErrFormatMismatch) {
			t.Errorf("RAW declared %s: %v, want a format mismatch", f, err)
		}
	}
	if _, err := diskport.Open(g, diskport.Options{Format: "qed"}); !errors.Is(err, disk.ErrUnsupported) {
		t.Errorf("unknown format: %v, want unsupported", err)
	}
	qcow := testimg.Make(t, g, "qcow2", "")
	if _, err := diskport.Open(qcow, diskport.Options{}); !errors.Is(err, disk.ErrUnsupported) || !strings.Contains(err.Error(), "QCOW2") {
		t.Errorf("qcow2: %v, want unsupported naming QCOW2", err)
	}
}
