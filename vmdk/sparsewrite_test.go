package vmdk

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
)

func writeSparseFile(t *testing.T, src *writeSource, opts WriteOptions) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.vmdk")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := WriteSparse(context.Background(), f, src, opts)
	if err != nil {
		t.Fatalf("WriteSparse: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != n {
		t.Fatalf("WriteSparse returned %d, wrote %d bytes", n, len(b))
	}
	return path, b
}

func TestWriteSparseRoundTrip(t *testing.T) {
	for name, src := range writeCases() {
		t.Run(name, func(t *testing.T) {
			path, b := writeSparseFile(t, src, WriteOptions{Workers: 3, AdapterType: "ide"})
			checkSparseLayout(t, b, src)
			checkWithOwnReader(t, path, src, "monolithicSparse")
			checkWithQemu(t, path, src, "monolithicSparse")
			checkWithVmdkinfo(t, path, src.size, "Monolithic sparse")
		})
	}
}

// checkSparseLayout checks the header and the tables of a monolithicSparse
// file: qemu-img's layout, both directories agreeing entry by entry (as
// VirtualBox requires), identical table copies, grains stored only for
// data, in ascending order right after the metadata.
func checkSparseLayout(t *testing.T, b []byte, src *writeSource) {
	t.Helper()
	le := binary.LittleEndian
	h := parseSparseHeader(b)
	capacity := uint64(src.size+disk.SectorSize-1) / disk.SectorSize
	if string(b[:4]) != magicKDMV || h.Version != 1 || h.Flags != 3 || h.Capacity != capacity || h.GrainSize != 128 ||
		h.DescriptorOffset != 1 || h.DescriptorSize != 20 || h.NumGTEsPerGT != 512 || h.RGDOffset != 21 ||
		h.GDOffset <= h.RGDOffset || h.OverHead%128 != 0 || h.OverHead < h.GDOffset || h.UncleanShutdown ||
		h.NewlineBytes != [4]byte{'\n', ' ', '\r', '\n'} || h.CompressAlgorithm != 0 {
		t.Fatalf("header %+v", h)
	}
	desc := string(bytes.TrimRight(b[512:21*512], "\x00"))
	for _, line := range []string{`createType="monolithicSparse" `, `RW ` + fmt.Sprint(capacity) + ` SPARSE "disk.vmdk"`, `ddb.adapterType = "ide"`, `ddb.geometry.heads = "16"`} {
		if !strings.Contains(desc, "\n"+line+"\n") {
			t.Fatalf("descriptor lacks %q:\n%s", line, desc)
		}
	}
	entries := h.gdEntries()
	next := h.OverHead
	for g := range entries {
		gte := le.Uint32(b[h.GDOffset*512+4*g:])
		rgte := le.Uint32(b[h.RGDOffset*512+4*g:])
		if (gte == 0) != (rgte == 0) || (gte != 0 && gte == rgte) {
			t.Fatalf("directory entry %d: %d, redundant %d", g, gte, rgte)
		}
		if gte == 0 {
			continue
		}
		gt := b[uint64(gte)*512 : uint64(gte)*512+2048]
		if !bytes.Equal(gt, b[uint64(rgte)*512:uint64(rgte)*512+2048]) || uint64(gte)+4 > h.OverHead || uint64(rgte)+4 > h.OverHead {
			t.Fatalf("grain table %d: copies differ or lie past the metadata", g)
		}
		for i := range uint64(512) {
			gi := g*512 + i
			if gi*128 >= capacity {
				break
			}
			e := uint64(le.Uint32(gt[4*i:]))
			off := int64(gi) * writeGrainBytes
			n := min(writeGrainBytes, int64(capacity*512)-off)
			data := src.hasData(off, n)
			switch {
			case data && e != next:
				t.Fatalf("grain %d at sector %d, want %d", gi, e, next)
			case !data && e != 0:
				t.Fatalf("all-zero grain %d stored at sector %d", gi, e)
			}
			if data {
				next += 128
			}
		}
	}
	if next*512 != uint64(len(b)) {
		t.Fatalf("file of %d bytes, grains end at %d", len(b), next*512)
	}
}
