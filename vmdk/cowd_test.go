package vmdk

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/diskport/diskport/disk"
)

// buildCOWD returns a COWD extent of capacity sectors with grains of
// grain sectors, data holding grain index -> bytes.
func buildCOWD(capacity, grain uint32, data map[int64][]byte) []byte {
	cover := uint32(cowdGTEs) * grain
	entries := (capacity + cover - 1) / cover
	gdSecs := (entries*4 + 511) / 512
	gtStart := 4 + gdSecs
	b := make([]byte, (gtStart+entries*32)*512)
	copy(b, magicCOWD)
	le.PutUint32(b[4:], 1)
	le.PutUint32(b[8:], 3)
	le.PutUint32(b[12:], capacity)
	le.PutUint32(b[16:], grain)
	le.PutUint32(b[20:], 4)
	le.PutUint32(b[24:], entries)
	for i := range entries {
		le.PutUint32(b[4*512+4*i:], gtStart+32*i)
	}
	for gi := int64(0); gi < int64(capacity/grain)+1; gi++ {
		d, ok := data[gi]
		if !ok {
			continue
		}
		sec := uint32(len(b) / 512)
		g := make([]byte, grain*512)
		copy(g, d)
		b = append(b, g...)
		gt := gtStart + 32*uint32(gi/int64(cowdGTEs))
		le.PutUint32(b[gt*512+4*uint32(gi%int64(cowdGTEs)):], sec)
	}
	return b
}

func TestCOWD(t *testing.T) {
	const capacity = 8200 // sectors, 3 grain tables of 4096 one-sector grains
	data := map[int64][]byte{0: pattern(512, 1), 1: pattern(512, 2), 4095: pattern(512, 3), 4096: pattern(512, 4), 8199: pattern(512, 5)}
	b := buildCOWD(capacity, 1, data)
	want := make([]byte, capacity*512)
	for gi, d := range data {
		copy(want[gi*512:], d)
	}
	img, err := openMem(b, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if img.CreateType() != "vmfsSparse" || img.Size() != capacity*512 {
		t.Fatalf("type %s size %d", img.CreateType(), img.Size())
	}
	check(t, img, bytes.NewReader(want))

	// As the delta extent of a vmfsSparse descriptor over a parent.
	parentData := map[int64][]byte{0: pattern(65536, 7), 2: pattern(65536, 8)}
	pb, _ := buildSparse(sparseSpec{capacity: capacity, desc: embeddedDesc("monolithicSparse", capacity, 0xfeedf00d, noParentCID, ""), data: parentData})
	parent, err := openMem(pb, Options{})
	if err != nil {
		t.Fatal(err)
	}
	desc := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nCID=01020304\nparentCID=feedf00d\ncreateType=\"vmfsSparse\"\nparentFileNameHint=\"base.vmdk\"\n\nRW %d VMFSSPARSE \"d-delta.vmdk\"\n", capacity)
	files := map[string][]byte{"d-delta.vmdk": b}
	_, err = openMem([]byte(desc), Options{OpenExtent: memOpener(files)})
	wantClass(t, err, disk.ErrUnsafe)
	delta, err := openMem([]byte(desc), Options{OpenExtent: memOpener(files), Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	dwant := make([]byte, capacity*512)
	for gi, d := range parentData {
		copy(dwant[gi*65536:], d)
	}
	for gi, d := range data {
		copy(dwant[gi*512:], d)
	}
	check(t, delta, bytes.NewReader(dwant))

	for name, f := range map[string]func([]byte){
		"version":      func(b []byte) { le.PutUint32(b[4:], 2) },
		"grain-zero":   func(b []byte) { le.PutUint32(b[16:], 0) },
		"grain-odd":    func(b []byte) { le.PutUint32(b[16:], 3) },
		"gd-short":     func(b []byte) { le.PutUint32(b[24:], 1) },
		"gd-past-eof":  func(b []byte) { le.PutUint32(b[20:], 1<<30) },
		"gd-on-header": func(b []byte) { le.PutUint32(b[20:], 1) },
		"gt-on-gd":     func(b []byte) { le.PutUint32(b[4*512:], 4) },
		"grain-in-header": func(b []byte) {
			gt := le.Uint32(b[4*512:])
			le.PutUint32(b[gt*512:], 2)
		},
		"grain-in-gt": func(b []byte) {
			gt := le.Uint32(b[4*512:])
			le.PutUint32(b[gt*512:], le.Uint32(b[4*512+4:])+5)
		},
		"capacity-zero": func(b []byte) { le.PutUint32(b[12:], 0) },
	} {
		t.Run(name, func(t *testing.T) {
			x := bytes.Clone(b)
			f(x)
			err := openAndRead(x, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			wantClass(t, err, classOf(err))
		})
	}
}

// classOf returns the class of a *disk.Error (nil for other errors).
func classOf(err error) error {
	for _, c := range []error{disk.ErrCorrupt, disk.ErrUnsupported, disk.ErrUnsafe, disk.ErrTooLarge, disk.ErrFormatMismatch} {
		if errors.Is(err, c) {
			return c
		}
	}
	return nil
}
