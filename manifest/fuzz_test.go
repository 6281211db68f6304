package manifest

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/manifest/parts"
)

// FuzzParse feeds the manifest reader arbitrary documents, seeded with
// every known writer's dialect and diskport's own output. A document is
// either refused with an error or read into a manifest that validates and
// survives a write/read round trip unchanged.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/dialects/*.xml")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(sampleManifest().Marshal())
	f.Add([]byte(`<manifest><file-format>RAW</file-format><import><size>0</size><parts count="1"><part index="0"><byte-range start="0" end="0"/></part></parts></import></manifest>`)) // empty: refused
	f.Add([]byte(`<manifest><file-format>raw</file-format><import><size>5</size><parts count="2"><part index="1"><byte-range start="3" end="4"/></part><part index="0"><byte-range end="2" start="0"/></part></parts></import></manifest>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		m, err := ParseBytes(doc)
		if err != nil {
			if m != nil {
				t.Fatal("manifest returned with an error")
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed manifest does not validate: %v", err)
		}
		if m.FileSize() > parts.MaxFileSize || len(m.Parts) > parts.MaxParts {
			t.Fatalf("limits exceeded: %d bytes, %d parts", m.FileSize(), len(m.Parts))
		}
		out := m.Marshal()
		m2, err := ParseBytes(out)
		if err != nil {
			t.Fatalf("our own output does not parse: %v\n%s", err, out)
		}
		if m.Version == "" {
			m.Version = Version // written as the default
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
		}
	})
}

// FuzzSniff feeds the format check arbitrary file heads and tails: it
// returns a known format and a size within limits, or an error.
func FuzzSniff(f *testing.F) {
	f.Add([]byte("KDMV\x03\x00\x00\x00\x03\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00\x00"))
	f.Add([]byte("# Disk DescriptorFile\n"))
	f.Add(append([]byte("conectix"), make([]byte, 504)...))
	f.Add([]byte("vhdxfile"))
	f.Add([]byte("QFI\xfb"))
	f.Add([]byte("plain bytes"))
	f.Fuzz(func(t *testing.T, b []byte) {
		format, virtual, err := imageFormat(disk.NewMemStorage("fuzz", b), &SplitOptions{})
		if err != nil {
			return
		}
		switch format {
		case FormatRAW, FormatVHD, FormatVMDK:
		default:
			t.Fatalf("format %q", format)
		}
		if virtual < 0 || virtual > parts.MaxFileSize {
			t.Fatalf("virtual size %d", virtual)
		}
	})
}
