package diskport

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/diskport/diskport/disk"
)

// TestWriteTable: the table's writers answer what they write, which
// layouts go to a pipe, and refuse what they cannot do with
// disk.ErrUnsupported, before writing anything.
func TestWriteTable(t *testing.T) {
	if got := WriteFormats(); !slices.Equal(got, []Format{VMDK, VHD}) {
		t.Errorf("WriteFormats() = %v", got)
	}
	for _, c := range []struct {
		f      Format
		sub    string
		stream bool
	}{{VMDK, "", true}, {VMDK, "STREAMOPTIMIZED", true}, {VMDK, "monolithicSparse", false}, {VHD, "", false}, {VHD, "Fixed", true}} {
		if s, err := c.f.Stream(c.sub); err != nil || s != c.stream {
			t.Errorf("%s %q: Stream = %v, %v", c.f, c.sub, s, err)
		}
	}
	src, err := OpenStorage(disk.NewMemStorage("mem", make([]byte, 1<<20)), Options{Format: "raw"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		f   Format
		sub string
	}{{Raw, ""}, {VHDX, ""}, {QCOW2, ""}, {VMDK, "fixed"}, {VHD, "streamOptimized"}, {VHD, ""}, {VMDK, "monolithicSparse"}} {
		var b bytes.Buffer // not an io.WriterAt
		if _, err := Write(context.Background(), c.f, &b, src, WriteOptions{Subformat: c.sub}); !errors.Is(err, disk.ErrUnsupported) || b.Len() != 0 {
			t.Errorf("Write %s %q to a buffer: %v, %d bytes", c.f, c.sub, err, b.Len())
		}
	}
}
