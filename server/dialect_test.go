package server

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest"
)

// awsManifest writes m the way ec2-upload-disk-image did (ec2.md §1.2):
// standalone declaration, 4-space indent, end before start, no checksums.
// endIsSize writes a single part's end as the size, as AWS's own second
// sample and two single-part tools do.
func awsManifest(m *manifest.Manifest, endIsSize bool) []byte {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<manifest>\n    <version>2010-11-15</version>\n")
	fmt.Fprintf(&b, "    <file-format>%s</file-format>\n    <importer>\n        <name>ec2-upload-disk-image</name>\n        <version>1.0.0</version>\n        <release>2010-11-15</release>\n    </importer>\n", m.FileFormat)
	b.WriteString("    <self-destruct-url>https://s3.example/m?AWSAccessKeyId=AK&amp;Expires=1&amp;Signature=S</self-destruct-url>\n")
	fmt.Fprintf(&b, "    <import>\n        <size>%d</size>\n        <volume-size>1</volume-size>\n        <parts count=\"%d\">\n", m.Size, len(m.Parts))
	for _, p := range m.Parts {
		end := p.Offset + p.Length - 1
		if endIsSize {
			end++
		}
		fmt.Fprintf(&b, "            <part index=\"%d\">\n                <byte-range end=\"%d\" start=\"%d\"/>\n                <key>%s</key>\n", p.Index, end, p.Offset, p.Key)
		fmt.Fprintf(&b, "                <head-url>%s</head-url>\n                <get-url>%s</get-url>\n                <delete-url>%s</delete-url>\n            </part>\n", p.GetURL, p.GetURL, p.GetURL)
	}
	b.WriteString("        </parts>\n    </import>\n</manifest>\n")
	return []byte(b.String())
}

// eucaManifest writes m the way euca2ools does (ec2.md §1.3): single-quoted
// declaration, 2-space indent, start before end, and for a VMDK the
// virtual size as <size>.
func eucaManifest(m *manifest.Manifest, size int64) []byte {
	var b strings.Builder
	b.WriteString("<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\n<manifest>\n  <version>2010-11-15</version>\n")
	fmt.Fprintf(&b, "  <file-format>%s</file-format>\n  <importer>\n    <name>euca2ools</name>\n    <version>3.4.1</version>\n    <release>0</release>\n  </importer>\n", m.FileFormat)
	fmt.Fprintf(&b, "  <import>\n    <size>%d</size>\n    <volume-size>1</volume-size>\n    <parts count=\"%d\">\n", size, len(m.Parts))
	for _, p := range m.Parts {
		fmt.Fprintf(&b, "      <part index=\"%d\">\n        <byte-range start=\"%d\" end=\"%d\"/>\n        <key>%s</key>\n", p.Index, p.Offset, p.Offset+p.Length-1, p.Key)
		fmt.Fprintf(&b, "        <head-url>%s</head-url>\n        <get-url>%s</get-url>\n        <delete-url>%s</delete-url>\n      </part>\n", p.GetURL, p.GetURL, p.GetURL)
	}
	b.WriteString("    </parts>\n  </import>\n</manifest>\n")
	return []byte(b.String())
}

// TestManifestDialects imports from manifests written as the AWS tools
// and euca2ools wrote them (no checksums), each volume identical to
// qemu-img's conversion.
func TestManifestDialects(t *testing.T) {
	t.Parallel()
	golden := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 4096, Seed: 15})
	stream := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	vhd := testimg.Make(t, golden, "vpc", "subformat=dynamic")
	type dialect struct {
		name, image, format string
		single              bool // one part holding the whole file
		xml                 func(m *manifest.Manifest) ([]byte, int64)
	}
	cases := []dialect{
		{"aws streamOptimized", stream, "VMDK", false, func(m *manifest.Manifest) ([]byte, int64) { return awsManifest(m, false), m.Size }},
		{"aws dynamic VHD", vhd, "VHD", false, func(m *manifest.Manifest) ([]byte, int64) { return awsManifest(m, false), m.Size }},
		{"single part, end == size", golden, "RAW", true, func(m *manifest.Manifest) ([]byte, int64) { return awsManifest(m, true), m.Size }},
		{"euca2ools streamOptimized (virtual size)", stream, "VMDK", false, func(m *manifest.Manifest) ([]byte, int64) {
			return eucaManifest(m, int64(len(readFile(t, testimg.QemuRaw(t, stream))))), int64(len(readFile(t, testimg.QemuRaw(t, stream))))
		}},
		{"euca2ools raw", golden, "RAW", false, func(m *manifest.Manifest) ([]byte, int64) { return eucaManifest(m, m.Size), m.Size }},
	}
	var servers []*partsServer
	var allow []string
	for _, c := range cases {
		part := int64(1 << 20)
		ps := newPartsServerSized(t, c.image, part, c.single)
		var bytes int64
		ps.xml, bytes = c.xml(ps.m)
		ps.m.Size = bytes
		servers = append(servers, ps)
		allow = append(allow, ps.Listener.Addr().String())
	}
	ts := startServer(t, "", allow...)
	c := ts.sdk(testKey, testSecret)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := servers[i]
			task, vol := importVolume(t, c, tc.format, ps.m.Size, ps.manifestURL(), 1)
			if state, msg := waitTask(t, c, task, time.Minute); state != "completed" {
				t.Fatalf("task ended %s: %s\n%s", state, msg, ps.xml)
			}
			sameVolume(t, ts.VolumePath(vol), testimg.QemuRaw(t, tc.image), 1<<30)
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
