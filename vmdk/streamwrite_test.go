package vmdk

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
)

// writeCases are the sources both writers round-trip.
func writeCases() map[string]*writeSource {
	const mib = 1 << 20
	text := textLike(3*mib, 1)
	return map[string]*writeSource{
		// Text and random data with holes between, a data run that is all
		// zeros (no grain may be stored for it) and runs that start and
		// end inside grains.
		"full": newWriteSource(8*mib,
			chunk{0, text[:mib]},
			chunk{mib + 4096, randomBytes(300000, 1)},
			chunk{3 * mib, make([]byte, 256<<10)},
			chunk{4*mib - 1000, text[mib:]},
		),
		// Every byte data: one run over the whole disk.
		"dense": newWriteSource(2*mib, chunk{0, append(textLike(mib, 2), randomBytes(mib, 2)...)}),
		// All zeros: nothing but metadata.
		"empty": newWriteSource(8 * mib),
		// Data runs reported over all-zero bytes.
		"zero-data": newWriteSource(mib, chunk{0, make([]byte, mib)}),
		// Not a multiple of 64 KiB: the last grain is partial.
		"odd-grain": newWriteSource(mib+3*512, chunk{mib - 100, textLike(100+3*512, 3)}),
		// Not a multiple of 512: rounded up to the next sector.
		"odd-sector": newWriteSource(100001, chunk{0, textLike(100001, 4)}),
		// One sector.
		"one-sector": newWriteSource(512, chunk{0, textLike(512, 5)}),
		// Data in grain tables 0 and 2 only (32 MiB each): table 1 absent.
		"groups": newWriteSource(100*mib,
			chunk{12345, textLike(70000, 6)},
			chunk{64*mib + 65536*3, randomBytes(65536, 6)},
			chunk{100*mib - 700, textLike(700, 6)},
		),
	}
}

func writeStreamFile(t *testing.T, src *writeSource, opts WriteOptions) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.vmdk")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := WriteStream(context.Background(), f, src, opts)
	if err != nil {
		t.Fatalf("WriteStream: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != n {
		t.Fatalf("WriteStream returned %d, wrote %d bytes", n, len(b))
	}
	return path, b
}

func TestWriteStreamRoundTrip(t *testing.T) {
	for name, src := range writeCases() {
		t.Run(name, func(t *testing.T) {
			path, b := writeStreamFile(t, src, WriteOptions{Name: "out.vmdk", Workers: 3})
			checkStreamLayout(t, b, src)
			checkWithOwnReader(t, path, src, "streamOptimized")
			checkWithQemu(t, path, src, "streamOptimized")
			checkWithVmdkinfo(t, path, src.size, "Stream optimized")
			// The sequential reader walks it too, to the end-of-stream marker.
			if err := checkStreamWalk(b, src); err != nil {
				t.Fatalf("StreamReader: %v", err)
			}
		})
	}
}

// checkStreamWalk reads b with WalkStream, sequentially to the verified
// end of the stream, and compares each grain with the source.
func checkStreamWalk(b []byte, src *writeSource) error {
	return WalkStream(bytes.NewReader(b), func(off int64, grain []byte) error {
		if !bytes.Equal(grain, src.bytesAt(off, int64(len(grain)))) {
			return fmt.Errorf("the grain at byte %d differs from the source", off)
		}
		return nil
	})
}

// checkStreamLayout checks a stream field by field against what VMware
// writes: header, descriptor, grains in ascending order each with its
// marker, a grain table marker and table after each group with grains
// (and only then), the directory, the footer (the header but for
// gdOffset) and the end-of-stream marker, last.
func checkStreamLayout(t *testing.T, b []byte, src *writeSource) {
	t.Helper()
	le := binary.LittleEndian
	if len(b)%disk.SectorSize != 0 || len(b) < (streamOverHead+4)*disk.SectorSize {
		t.Fatalf("stream of %d bytes", len(b))
	}
	if string(b[:4]) != magicKDMV {
		t.Fatalf("magic %q", b[:4])
	}
	h := parseSparseHeader(b)
	capacity := uint64(src.size+disk.SectorSize-1) / disk.SectorSize
	want := sparseHeader{Version: 3, Flags: 0x30001, Capacity: capacity, GrainSize: 128,
		DescriptorOffset: 1, DescriptorSize: h.DescriptorSize, NumGTEsPerGT: 512,
		GDOffset: gdAtEnd, OverHead: 128, NewlineBytes: [4]byte{'\n', ' ', '\r', '\n'}, CompressAlgorithm: 1}
	if h != want {
		t.Fatalf("header\n%+v, want\n%+v", h, want)
	}
	if h.DescriptorSize < 1 || h.DescriptorSize > 2 {
		t.Fatalf("descriptor of %d sectors", h.DescriptorSize)
	}
	desc := string(bytes.TrimRight(b[512:512*(1+h.DescriptorSize)], "\x00"))
	for _, line := range []string{
		"# Disk DescriptorFile", "version=1 ", "parentCID=ffffffff ", `createType="streamOptimized" `,
		`RDONLY ` + strconv.FormatUint(capacity, 10) + ` SPARSE "out.vmdk"`, "# The Disk Data Base ", "#DDB",
		`ddb.adapterType = "lsilogic"`, `ddb.virtualHWVersion = "10"`, `ddb.toolsInstallType = "4"`,
		`ddb.toolsVersion = "2147483647"`, `ddb.geometry.heads = `, `ddb.geometry.sectors = `,
		`ddb.geometry.cylinders = `, `ddb.longContentID = "`, "CID=",
	} {
		if !strings.Contains(desc, "\n"+line) && !strings.HasPrefix(desc, line) {
			t.Fatalf("descriptor lacks %q:\n%s", line, desc)
		}
	}
	if !isZeroBytes(b[512*(1+h.DescriptorSize) : 128*512]) {
		t.Fatal("bytes between the descriptor and the first grain are not zeros")
	}

	// Walk the markers.
	gtes := map[int64]uint32{} // grain -> sector of its marker
	var gts []int64            // groups whose table was written
	gd := map[int64]uint32{}   // group -> sector of its table, from the GT markers' positions
	lastGrain, group := int64(-1), int64(-1)
	sec := uint64(128)
	var gdSec uint64
	for {
		if (sec+1)*512 > uint64(len(b)) {
			t.Fatalf("no end-of-stream marker before the end of the file (sector %d)", sec)
		}
		m := b[sec*512:]
		val, size, typ := le.Uint64(m), le.Uint32(m[8:]), le.Uint32(m[12:])
		if size > 0 {
			gi := int64(val / 128)
			if val%128 != 0 || gi <= lastGrain || val >= capacity {
				t.Fatalf("grain marker at sector %d: LBA %d after grain %d", sec, val, lastGrain)
			}
			if g := gi / 512; g != group {
				if group >= 0 {
					t.Fatalf("grain %d of group %d follows group %d without its grain table", gi, g, group)
				}
				group = g
			}
			off := gi * writeGrainBytes
			n := min(writeGrainBytes, int64(capacity*512)-off)
			if !src.hasData(off, n) {
				t.Fatalf("grain %d is all zeros and was written", gi)
			}
			got := make([]byte, writeGrainBytes)
			if k, err := Inflate(got, m[12:12+size]); err != nil || k != writeGrainBytes {
				t.Fatalf("grain %d inflates to %d bytes, %v; want a whole grain", gi, k, err)
			}
			if !bytes.Equal(got[:n], src.bytesAt(off, n)) || !isZeroBytes(got[n:]) {
				t.Fatalf("grain %d differs from the source", gi)
			}
			if !isZeroBytes(m[12+size : sectorsFor(uint64(12+size))*512]) {
				t.Fatalf("grain %d: padding not zeros", gi)
			}
			gtes[gi] = uint32(sec)
			lastGrain = gi
			sec += sectorsFor(uint64(12 + size))
			continue
		}
		if !isZeroBytes(m[16:512]) {
			t.Fatalf("metadata marker at sector %d: padding not zeros", sec)
		}
		switch typ {
		case markerGT:
			if val != 4 || group < 0 {
				t.Fatalf("grain table marker at sector %d: %d sectors, group %d", sec, val, group)
			}
			gts = append(gts, group)
			gd[group] = uint32(sec + 1)
			for i := range int64(512) {
				e := le.Uint32(b[(sec+1)*512+uint64(4*i):])
				if w := gtes[group*512+i]; e != w {
					t.Fatalf("grain table of group %d, entry %d: %d, want %d", group, i, e, w)
				}
			}
			group = -1
			sec += 5
		case markerGD:
			if group >= 0 {
				t.Fatalf("grain directory while group %d has no table", group)
			}
			entries := h.gdEntries()
			if val != sectorsFor(entries*4) {
				t.Fatalf("grain directory marker: %d sectors for %d entries", val, entries)
			}
			gdSec = sec + 1
			for i := range int64(entries) {
				if e := le.Uint32(b[gdSec*512+uint64(4*i):]); e != gd[i] {
					t.Fatalf("grain directory entry %d: %d, want %d", i, e, gd[i])
				}
			}
			sec += 1 + val
		case markerFooter:
			if val != 1 || gdSec == 0 {
				t.Fatalf("footer marker at sector %d: %d sectors, directory at %d", sec, val, gdSec)
			}
			f := parseSparseHeader(b[(sec+1)*512:])
			wantF := h
			wantF.GDOffset = gdSec
			if string(b[(sec+1)*512:(sec+1)*512+4]) != magicKDMV || f != wantF {
				t.Fatalf("footer\n%+v, want the header with gdOffset %d", f, gdSec)
			}
			if !bytes.Equal(b[(sec+1)*512+64:(sec+2)*512], b[64:512]) || !bytes.Equal(b[(sec+1)*512:(sec+1)*512+56], b[:56]) {
				t.Fatal("footer bytes differ from the header's outside gdOffset")
			}
			sec += 2
		case markerEOS:
			if val != 0 || !isZeroBytes(m[:512]) {
				t.Fatalf("end-of-stream marker at sector %d: %x", sec, m[:16])
			}
			if (sec+1)*512 != uint64(len(b)) {
				t.Fatalf("%d bytes after the end-of-stream marker", uint64(len(b))-(sec+1)*512)
			}
			for gi := range int64(capacity+127) / 128 {
				off := gi * writeGrainBytes
				n := min(writeGrainBytes, int64(capacity*512)-off)
				if _, ok := gtes[gi]; !ok && src.hasData(off, n) {
					t.Fatalf("grain %d holds data and was not written", gi)
				}
			}
			if len(gts) != len(gd) {
				t.Fatalf("grain tables %v", gts)
			}
			return
		default:
			t.Fatalf("metadata marker of type %d at sector %d", typ, sec)
		}
	}
}

func isZeroBytes(b []byte) bool { return disk.IsZero(b) }
