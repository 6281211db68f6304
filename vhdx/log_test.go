package vhdx

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/disk/disktest"
	"github.com/diskport/diskport/internal/testimg"
)

var testLogGUID = GUID{0x10, 0x20, 0x30, 0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

// dirtyPair returns a clean image and a dirty one whose log, replayed,
// turns it into the clean one: the dirty file has an older BAT sector
// (blocks 2 and 3 not present), garbage in a 4 KiB sector of block 1 and
// different bytes in a sector of block 4. The log's first entry zeroes the
// BAT sector and the block-1 sector; the second (its tail the first)
// writes the BAT sector and the block-4 sector.
func dirtyPair() (clean, dirty []byte) {
	const bs = 1 << 20
	d1 := pattern(21, bs)
	clear(d1[8192 : 8192+logSector])
	sp := spec{size: 6 * bs, blocks: map[int]specBlock{
		0: {state: stateFullyPresent, data: pattern(20, bs)},
		1: {state: stateFullyPresent, data: d1},
		2: {state: stateFullyPresent, data: pattern(22, bs)},
		3: {state: stateFullyPresent, data: pattern(23, bs)},
		4: {state: stateFullyPresent, data: pattern(24, bs)},
		5: {state: stateZero},
	}}
	clean = buildVHDX(sp)
	dirty = bytes.Clone(clean)
	batSector := bytes.Clone(clean[bBATAt : bBATAt+logSector])
	le.PutUint64(dirty[bBATAt+16:], stateNotPresent)
	le.PutUint64(dirty[bBATAt+24:], stateNotPresent)
	blk := func(i int) int { return int(le.Uint64(clean[bBATAt+8*i:]) & entryOffsetMask) }
	copy(dirty[blk(1)+8192:], pattern(99, logSector))
	b4 := blk(4) + 3*logSector
	copy(dirty[b4:], pattern(98, logSector))
	sp.logGUID = testLogGUID
	sp.log = []specEntry{
		{seq: 41, tail: 0, writes: []logWrite{{off: bBATAt, n: logSector}, {off: int64(blk(1) + 8192), n: logSector}}},
		{seq: 42, tail: 0, writes: []logWrite{{off: bBATAt, n: logSector, data: batSector}, {off: int64(b4), n: logSector, data: bytes.Clone(clean[b4 : b4+logSector])}}},
	}
	withLog := buildVHDX(sp)
	copy(dirty[:headerSection], withLog[:headerSection]) // headers naming the log
	copy(dirty[bLogAt:bLogAt+bLogLen], withLog[bLogAt:bLogAt+bLogLen])
	return clean, dirty
}

// TestLogReplay opens a dirty image: the log is replayed in memory, the
// image reads as the clean one, the runs the log rewrote come from the
// replayed file, and the file is untouched. qemu-img reads a repaired copy
// (`qemu-img check -r all`) the same way.
func TestLogReplay(t *testing.T) {
	clean, dirty := dirtyPair()
	path := filepath.Join(t.TempDir(), "dirty.vhdx")
	if err := os.WriteFile(path, dirty, 0o644); err != nil {
		t.Fatal(err)
	}
	before := sha256File(t, path)
	s := openFile(t, path)
	m, err := Open(s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !m.LogReplayed() || !strings.Contains(m.Info().Specific["log"].(string), "2 entries (sequence 41 to 42), 2 data sectors, 8192 bytes zeroed") {
		t.Fatalf("log: %v", m.Info().Specific["log"])
	}
	cm := mustOpen(t, "clean", clean, Options{})
	want := make([]byte, cm.Size())
	if _, err := cm.ReadAt(want, 0); err != nil {
		t.Fatal(err)
	}
	disktest.Check(t, m, bytes.NewReader(want))
	var fromOverlay int
	for _, e := range disktest.CheckExtents(t, m) {
		if e.Stored == disk.Storage(m.ov) {
			fromOverlay++
			if e.Offset != 1<<20 && e.Offset != 4<<20 {
				t.Errorf("extent %+v stored in the replayed file, want only blocks 1 and 4", e)
			}
		}
	}
	if fromOverlay != 2 {
		t.Errorf("%d extents from the replayed file, want 2 (blocks 1 and 4)", fromOverlay)
	}
	if after := sha256File(t, path); after != before {
		t.Fatal("opening and reading changed the file")
	}

	// qemu-img refuses the file read-only, and reads a repaired copy as we
	// read the original.
	if out, err := exec.Command(testimg.QemuImg(t), "convert", "-f", "vhdx", "-O", "raw", path, filepath.Join(t.TempDir(), "x.raw")).CombinedOutput(); err == nil || !strings.Contains(string(out), "log that needs to be replayed") {
		t.Errorf("qemu-img convert of the dirty file: %v: %s (want a refusal)", err, out)
	}
	cp := filepath.Join(t.TempDir(), "copy.vhdx")
	if err := os.WriteFile(cp, dirty, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testimg.QemuImg(t), "check", "-r", "all", "-f", "vhdx", cp).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check -r all: %v: %s", err, out)
	}
	qraw, err := os.ReadFile(testimg.QemuRaw(t, cp, "-f", "vhdx"))
	if err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(qraw, want); i >= 0 {
		t.Fatalf("qemu's output of the repaired copy differs from ours at byte %d", i)
	}
}

// TestLogSequences: the active sequence is the newest valid, complete one;
// invalid entries and incomplete sequences are not replayed.
func TestLogSequences(t *testing.T) {
	clean, dirty := dirtyPair()
	entryLen := func(b []byte, pos int) int { return int(le.Uint32(b[bLogAt+pos+8:])) }
	first := entryLen(dirty, 0)
	for _, c := range []struct {
		name     string
		edit     func(b []byte)
		replayed bool
		same     bool // reads as the clean image
	}{
		{"valid", func(b []byte) {}, true, true},
		{"bad checksum in the head", func(b []byte) { b[bLogAt+first+100]++ }, true, false}, // only entry 41 replays
		{"wrong log GUID in the header", func(b []byte) {
			for _, at := range []int{header1At, header2At} {
				b[at+48]++
				fixHeader(b, at)
			}
		}, false, false},
		{"tail outside the sequence", func(b []byte) {
			for _, pos := range []int{0, first} {
				le.PutUint32(b[bLogAt+pos+12:], 4096*200)
				le.PutUint32(b[bLogAt+pos+4:], 0)
				le.PutUint32(b[bLogAt+pos+4:], checksum(b[bLogAt+pos:bLogAt+pos+entryLen(b, pos)], 4))
			}
		}, false, false},
		{"data sector sequence mismatch", func(b []byte) {
			ds := bLogAt + first + logSector // entry 42's first data sector
			le.PutUint32(b[ds+logSector-4:], 7)
			le.PutUint32(b[bLogAt+first+4:], checksum(b[bLogAt+first:bLogAt+first+entryLen(b, first)], 4))
		}, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(dirty)
			c.edit(b)
			m := mustOpen(t, "x.vhdx", b, Options{})
			if m.LogReplayed() != c.replayed {
				t.Fatalf("replayed %v, want %v (%v)", m.LogReplayed(), c.replayed, m.Info().Specific["log"])
			}
			got := make([]byte, m.Size())
			if _, err := m.ReadAt(got, 0); err != nil {
				t.Fatal(err)
			}
			cm := mustOpen(t, "clean", clean, Options{})
			want := make([]byte, cm.Size())
			if _, err := cm.ReadAt(want, 0); err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(got, want) != c.same {
				t.Errorf("reads as the clean image: %v, want %v", !c.same, c.same)
			}
		})
	}
}

// TestLogHostile: logs that would write where they must not, claim a
// larger file than there is, or make the scan slow are refused.
func TestLogHostile(t *testing.T) {
	_, dirty := dirtyPair()
	rewrite := func(b []byte, fn func(ent []byte)) {
		ent := b[bLogAt:]
		fn(ent)
		n := int(le.Uint32(ent[8:]))
		le.PutUint32(ent[4:], checksum(ent[:n], 4))
	}
	for _, c := range []struct {
		name  string
		edit  func(b []byte) []byte
		class error
		msg   string
	}{
		{"zeroes the headers", func(b []byte) []byte {
			rewrite(b, func(ent []byte) { le.PutUint64(ent[64+16:], header1At) })
			return b
		}, disk.ErrCorrupt, "inside the file identifier and headers"},
		{"writes into the log", func(b []byte) []byte {
			rewrite(b, func(ent []byte) { le.PutUint64(ent[64+16:], bLogAt+8192) })
			return b
		}, disk.ErrCorrupt, "inside the log"},
		{"file truncated", func(b []byte) []byte {
			for pos := 0; pos < 2; pos++ {
				off := 0
				if pos == 1 {
					off = int(le.Uint32(b[bLogAt+8:]))
				}
				ent := b[bLogAt+off:]
				le.PutUint64(ent[48:], uint64(len(b))+mib)
				n := int(le.Uint32(ent[8:]))
				le.PutUint32(ent[4:], checksum(ent[:n], 4))
			}
			return b
		}, disk.ErrCorrupt, "(truncated)"},
		{"log of 512 MiB", func(b []byte) []byte {
			for _, at := range []int{header1At, header2At} {
				le.PutUint32(b[at+68:], 512<<20)
				fixHeader(b, at)
			}
			return b
		}, disk.ErrTooLarge, "exceeds the"},
		{"log past end of file", func(b []byte) []byte {
			for _, at := range []int{header1At, header2At} {
				le.PutUint64(b[at+72:], uint64(len(b)))
				fixHeader(b, at)
			}
			return b
		}, disk.ErrCorrupt, "past end of file"},
		{"log misaligned", func(b []byte) []byte {
			for _, at := range []int{header1At, header2At} {
				le.PutUint64(b[at+72:], bLogAt+4096)
				fixHeader(b, at)
			}
			return b
		}, disk.ErrCorrupt, "not 1 MiB-aligned"},
		{"log overlaps the BAT", func(b []byte) []byte {
			for _, at := range []int{header1At, header2At} {
				le.PutUint32(b[at+68:], 3<<20)
				le.PutUint64(b[at+72:], bMetaAt)
				fixHeader(b, at)
			}
			return b
		}, disk.ErrCorrupt, "overlaps"},
		{"every sector a long entry with a bad checksum", func(b []byte) []byte {
			log := b[bLogAt : bLogAt+bLogLen]
			for pos := 0; pos < len(log); pos += logSector {
				ent := log[pos:]
				clear(ent[:logSector])
				copy(ent, "loge")
				le.PutUint32(ent[8:], bLogLen)
				le.PutUint64(ent[16:], 1)
				copy(ent[32:], testLogGUID[:])
			}
			return b
		}, disk.ErrCorrupt, "too many entries to check"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.edit(bytes.Clone(dirty))
			start := time.Now()
			_, err := Open(disk.NewMemStorage("x.vhdx", b), Options{})
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %v, want class %v mentioning %q", err, c.class, c.msg)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			t.Log(err)
		})
	}
}

// TestLogExtendsFile: a file whose last 256 KiB are missing, which the log
// writes back (32 data sectors and 16 zero descriptors of 8 KiB): the image
// reads whole, the block from the replayed file, as qemu reads a repaired
// copy. Then the same with only the first sector written and
// LastFileOffset saying how long the file is: MS-VHDX 2.3.3 extends the
// file to it (zeros); qemu 7.2 extends only to a LastFileOffset that is
// not a MiB multiple (which the specification forbids), so it is not
// compared there.
func TestLogExtendsFile(t *testing.T) {
	const bs = 1 << 20
	last := append(pattern(31, bs*7/8), make([]byte, bs/8)...)
	sp := spec{size: 3 * bs, blocks: map[int]specBlock{
		0: {state: stateFullyPresent, data: pattern(30, bs)},
		1: {state: stateFullyPresent, data: last},
	}}
	clean := buildVHDX(sp)
	want := make([]byte, 3*bs)
	copy(want, pattern(30, bs))
	copy(want[bs:], last)
	at := int64(len(clean) - bs) // block 1, the file's last MiB
	var writes []logWrite
	for k := int64(bs * 3 / 4); k < bs*7/8; k += logSector {
		writes = append(writes, logWrite{off: at + k, n: logSector, data: last[k : k+logSector]})
	}
	for k := int64(bs * 7 / 8); k < bs; k += 2 * logSector {
		writes = append(writes, logWrite{off: at + k, n: 2 * logSector})
	}
	sp.logGUID = testLogGUID
	sp.log = []specEntry{{seq: 3, writes: writes, flushed: uint64(at), last: uint64(len(clean))}}
	dirty := buildVHDX(sp)[:at+bs*3/4]
	m := mustOpen(t, "short.vhdx", dirty, Options{})
	if !m.LogReplayed() || m.Info().Specific["replayed_file_size"] != int64(len(clean)) {
		t.Fatalf("log %v, replayed size %v", m.Info().Specific["log"], m.Info().Specific["replayed_file_size"])
	}
	disktest.Check(t, m, bytes.NewReader(want))
	if e := disktest.CheckExtents(t, m); len(e) != 3 || e[1].Stored != disk.Storage(m.ov) {
		t.Errorf("extents %+v, want block 1 stored in the replayed file", e)
	}
	cp := filepath.Join(t.TempDir(), "copy.vhdx")
	if err := os.WriteFile(cp, dirty, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(testimg.QemuImg(t), "check", "-r", "all", "-f", "vhdx", cp).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img check -r all: %v: %s", err, out)
	}
	qraw, err := os.ReadFile(testimg.QemuRaw(t, cp, "-f", "vhdx"))
	if err != nil {
		t.Fatal(err)
	}
	if i := firstDiff(qraw, want); i >= 0 {
		t.Fatalf("qemu's output of the repaired copy differs at byte %d", i)
	}

	// Only LastFileOffset covers the rest of the block.
	sp.log = []specEntry{{seq: 3, writes: writes[:1], flushed: uint64(at), last: uint64(len(clean))}}
	want2 := bytes.Clone(want)
	clear(want2[bs+bs*3/4+logSector : 2*bs])
	m = mustOpen(t, "short.vhdx", buildVHDX(sp)[:at+bs*3/4], Options{})
	disktest.Check(t, m, bytes.NewReader(want2))
}

// TestLogManyDescriptors: an entry of 300 descriptors spans three
// descriptor sectors (126, then 128 per sector): 40 data sectors and 260
// zero descriptors, some overlapping (the later wins), replayed over a
// block of data.
func TestLogManyDescriptors(t *testing.T) {
	const bs = 1 << 20
	sp := spec{size: 2 * bs, blocks: map[int]specBlock{1: {state: stateFullyPresent, data: pattern(40, bs)}}}
	clean := buildVHDX(sp)
	at := int64(len(clean) - bs)
	want := make([]byte, 2*bs)
	copy(want[bs:], pattern(40, bs))
	var writes []logWrite
	for k := range int64(260) {
		writes = append(writes, logWrite{off: at + k*logSector/2&^(logSector-1), n: logSector}) // sectors 0-129, most twice
		clear(want[bs+k*logSector/2&^(logSector-1):][:logSector])
	}
	for k := range int64(40) {
		d := pattern(uint64(100+k), logSector)
		writes = append(writes, logWrite{off: at + 3*k*logSector, n: logSector, data: d})
		copy(want[bs+3*k*logSector:], d)
	}
	sp.logGUID = testLogGUID
	sp.log = []specEntry{{seq: 9, writes: writes}}
	m := mustOpen(t, "many.vhdx", buildVHDX(sp), Options{})
	if !strings.Contains(m.Info().Specific["log"].(string), "40 data sectors") {
		t.Fatalf("log %v", m.Info().Specific["log"])
	}
	disktest.Check(t, m, bytes.NewReader(want))
}
