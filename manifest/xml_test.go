package manifest

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/manifest/parts"
)

func TestParseDialects(t *testing.T) {
	type want struct {
		format   string
		importer string
		size     int64
		fileSize int64
		volume   int64
		parts    int
		lastKey  string
		lastLen  int64
		delete   bool
	}
	cases := map[string]want{
		"aws-sample1.xml":         {FormatVMDK, "ec2-upload-disk-image", 12595200, 12595200, 1, 2, "d6e1ca17-72f6-4ab0-b2c8-d7ba8186cb23/cirros-0.3.2-x86_64-disk.vmdk.part1", 12595200 - 10485760, true},
		"aws-sample2.xml":         {FormatVMDK, "Linux_RHEL_59_64.vmdk", 994433536, 994433536, 8, 1, "Linux_RHEL_59_64.vmdk", 994433536, true},
		"euca2ools.xml":           {FormatRAW, "euca2ools", 12595200, 12595200, 1, 2, "u/disk.img.part.1", 12595200 - 10485760, true},
		"euca2ools-vmdk.xml":      {FormatVMDK, "euca2ools", 1 << 30, 4 << 20, 1, 1, "u/disk.vmdk.part.0", 4 << 20, true},
		"bsdec2-image-upload.xml": {FormatRAW, "bsdec2-image-upload", 20971521, 20971521, 1, 3, "0123abcd/part2", 1, true},
		"bosh-light-stemcell.xml": {FormatRAW, "aws-light-stemcell-builder", 3 << 30, 3 << 30, 3, 1, "root.img", 3 << 30, true},
	}
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata/dialects", name))
			if err != nil {
				t.Fatal(err)
			}
			m, err := ParseBytes(b)
			if err != nil {
				t.Fatalf("ParseBytes: %v", err)
			}
			last := m.Parts[len(m.Parts)-1]
			got := want{m.FileFormat, m.Importer.Name, m.Size, m.FileSize(), m.VolumeSize, len(m.Parts), last.Key, last.Length, last.DeleteURL != ""}
			if got != w {
				t.Fatalf("got %+v\nwant %+v", got, w)
			}
			if m.Version != Version {
				t.Errorf("version %q", m.Version)
			}
			if strings.Contains(m.Parts[0].GetURL, "&amp;") {
				t.Errorf("get-url not unescaped: %s", m.Parts[0].GetURL)
			}
			// Writing and reading back keeps everything.
			m2, err := ParseBytes(m.Marshal())
			if err != nil {
				t.Fatalf("re-parse of our own output: %v\n%s", err, m.Marshal())
			}
			if !reflect.DeepEqual(m, m2) {
				t.Fatalf("round trip changed the manifest:\n%+v\n%+v", m, m2)
			}
		})
	}
}

func sampleManifest() *Manifest {
	m := &Manifest{
		Version:    Version,
		FileFormat: FormatRAW,
		Importer:   Importer{"diskport", "dev", "0"},
		Size:       25,
		VolumeSize: 1,
		SHA256:     strings.Repeat("ab", 32),
	}
	for i, n := range []int64{10, 10, 5} {
		m.Parts = append(m.Parts, parts.Part{Index: i, Offset: int64(i) * 10, Length: n,
			Key: "d.part" + string(rune('0'+i)), HeadURL: "h?a=1&b=2", GetURL: "g", SHA256: strings.Repeat("0"+string(rune('1'+i)), 32)})
	}
	return m
}

func TestMarshalAWSStyle(t *testing.T) {
	m := sampleManifest()
	out := string(m.Marshal())
	for _, s := range []string{
		"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<manifest xmlns:dp=\"" + Namespace + "\">\n    <version>2010-11-15</version>\n    <file-format>RAW</file-format>\n    <importer>\n",
		"            <part index=\"2\">\n                <byte-range end=\"24\" start=\"20\"/>\n                <key>d.part2</key>\n",
		"<head-url>h?a=1&amp;b=2</head-url>",
		"<dp:sha256>" + strings.Repeat("03", 32) + "</dp:sha256>\n            </part>",
		"        </parts>\n        <dp:sha256>" + strings.Repeat("ab", 32) + "</dp:sha256>\n    </import>\n</manifest>\n",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "delete-url") {
		t.Errorf("empty delete-url written")
	}
	// Element order as in the AWS schema.
	order := []string{"<version>", "<file-format>", "<importer>", "<import>", "<size>", "<volume-size>", "<parts "}
	pos := -1
	for _, e := range order {
		i := strings.Index(out, e)
		if i < pos {
			t.Errorf("%s out of order", e)
		}
		pos = i
	}
	// A reader that does not know the namespace sees a plain manifest: the
	// extension elements are not named like any schema element.
	m2, err := ParseBytes([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Fatalf("round trip:\n%+v\n%+v", m, m2)
	}
}

func TestChecksumNeedsNamespace(t *testing.T) {
	// A sha256 element outside diskport's namespace is not our checksum.
	out := strings.Replace(string(sampleManifest().Marshal()), " xmlns:dp=\""+Namespace+"\"", " xmlns:dp=\"urn:other\"", 1)
	m, err := ParseBytes([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if m.SHA256 != "" || m.Parts[0].SHA256 != "" {
		t.Fatalf("foreign sha256 taken as checksum: %q %q", m.SHA256, m.Parts[0].SHA256)
	}
}

func TestParseErrors(t *testing.T) {
	base := string(sampleManifest().Marshal())
	cases := []struct {
		name, old, new string
		class          error
		msg            string
	}{
		{"overlap", `end="19" start="10"`, `end="19" start="9"`, disk.ErrCorrupt, "part 1 (bytes 9-19) overlaps the previous part, which ends at byte 9"},
		{"gap", `end="19" start="10"`, `end="19" start="11"`, disk.ErrCorrupt, "part 1 (bytes 11-19) leaves a gap: bytes 10-10 are in no part"},
		{"count lies", `count="3"`, `count="4"`, disk.ErrCorrupt, "parts count is 4 but 3 part elements are listed"},
		{"no count", `<parts count="3">`, `<parts>`, disk.ErrCorrupt, "no count attribute"},
		{"size disagrees", `<size>25</size>`, `<size>26</size>`, disk.ErrCorrupt, "size 26 disagrees with the parts, which hold 25 bytes"},
		{"size short", `<size>25</size>`, `<size>20</size>`, disk.ErrCorrupt, "size 20 disagrees with the parts, which hold 25 bytes"},
		{"duplicate index", `<part index="1">`, `<part index="0">`, disk.ErrCorrupt, "part index 0 listed twice"},
		{"index out of range", `<part index="1">`, `<part index="7">`, disk.ErrCorrupt, "part index 7 out of range (count 3)"},
		{"end before start", `end="19" start="10"`, `end="5" start="10"`, disk.ErrCorrupt, "part 1 byte-range ends at 5 before its start 10"},
		{"negative", `<size>25</size>`, `<size>-25</size>`, disk.ErrCorrupt, `size "-25" is not a non-negative integer`},
		{"bad checksum", strings.Repeat("02", 32), "xyz", disk.ErrCorrupt, `part 1 (bytes 10-19): sha256 "xyz" is not 64 hex digits`},
		{"format", `<file-format>RAW</file-format>`, `<file-format>QCOW2</file-format>`, disk.ErrUnsupported, `file-format "QCOW2"`},
		{"no format", `<file-format>RAW</file-format>`, ``, disk.ErrCorrupt, `missing file-format element`},
		{"two sizes", `<size>25</size>`, `<size>25</size><size>25</size>`, disk.ErrCorrupt, `2 size elements`},
		{"not xml", `<manifest`, `<manifest <`, disk.ErrCorrupt, `not well-formed XML`},
		{"wrong root", `<manifest xmlns`, `<other xmlns`, disk.ErrCorrupt, `not an import manifest`},
		{"huge size", `<size>25</size>`, `<size>99999999999999999999</size>`, disk.ErrCorrupt, `is not a non-negative integer`},
		{"huge part", `end="24" start="20"`, `end="9000000000000000000" start="20"`, disk.ErrTooLarge, `ends past`},
		{"entity", `<key>d.part0</key>`, `<key>&xxe;</key>`, disk.ErrCorrupt, `not well-formed XML`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			doc := strings.Replace(base, c.old, c.new, 1)
			if doc == base {
				t.Fatalf("substitution %q did not apply", c.old)
			}
			_, err := ParseBytes([]byte(doc))
			if err == nil {
				t.Fatalf("no error for\n%s", doc)
			}
			if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q (class ok %v), want %v containing %q", err, errors.Is(err, c.class), c.class, c.msg)
			}
			if !strings.HasPrefix(err.Error(), "manifest: ") {
				t.Fatalf("error %q lacks the manifest: prefix", err)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	defer func(n int64) { maxManifestSize = n }(maxManifestSize)
	doc := sampleManifest().Marshal()
	maxManifestSize = int64(len(doc))
	if _, err := Parse(bytes.NewReader(doc)); err != nil {
		t.Fatalf("document of the limit's size: %v", err)
	}
	maxManifestSize--
	if _, err := Parse(bytes.NewReader(doc)); !errors.Is(err, disk.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestEndEqualsSizeOnlyOnLastPart(t *testing.T) {
	// end == size is tolerated on the last part only; on a middle part it
	// is an overlap.
	doc := strings.Replace(string(sampleManifest().Marshal()), `end="9" start="0"`, `end="10" start="0"`, 1)
	if _, err := ParseBytes([]byte(doc)); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Fatalf("err = %v, want overlap", err)
	}
	doc = strings.Replace(string(sampleManifest().Marshal()), `end="24" start="20"`, `end="25" start="20"`, 1)
	m, err := ParseBytes([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if m.Parts[2].Length != 5 {
		t.Fatalf("last part length %d, want 5", m.Parts[2].Length)
	}
	if !bytes.Contains(m.Marshal(), []byte(`end="24" start="20"`)) {
		t.Fatal("rewrite does not use the inclusive end")
	}
}
