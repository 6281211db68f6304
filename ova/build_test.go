package ova_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A member is a file of a test OVA.
type member struct {
	name string
	data []byte
}

// A testDisk is a disk of a test OVA's descriptor.
type testDisk struct {
	id, file, format string // format: the ovf:format URI
	capacity         string
	units            string // capacityAllocationUnits ("" for none)
	gzip             bool
	ctl, addr        int // hardware item: controller index, address
}

// The ovf:format URIs ovftool and VirtualBox write.
const (
	uriStream = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
	uriVHD    = "http://go.microsoft.com/fwlink/?LinkId=137171"
	uriRaw    = "http://diskport.test/raw"
)

// ovfXML writes a descriptor as ovftool (version 1, OVF 1.0 namespace, a
// SCSI controller) or VirtualBox (version 2, OVF 2.0, IDE then SATA
// controllers) lay it out. Each disk has a file in References (sizes from
// sizes) and a disk-drive item on controller ctl at address addr.
func ovfXML(version int, disks []testDisk, sizes map[string]int) string {
	ns := "http://schemas.dmtf.org/ovf/envelope/1"
	ver := "1.0"
	if version == 2 {
		ns, ver = "http://schemas.dmtf.org/ovf/envelope/2", "2.0"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<Envelope ovf:version="%s" xmlns="%s" xmlns:ovf="%s" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>
`, ver, ns, ns)
	for i, d := range disks {
		comp := ""
		if d.gzip {
			comp = ` ovf:compression="gzip"`
		}
		fmt.Fprintf(&b, "    <File ovf:id=\"file%d\" ovf:href=\"%s\" ovf:size=\"%d\"%s/>\n", i+1, d.file, sizes[d.file], comp)
	}
	b.WriteString("  </References>\n  <DiskSection>\n    <Info>Virtual disk information</Info>\n")
	for i, d := range disks {
		units := ""
		if d.units != "" {
			units = fmt.Sprintf(` ovf:capacityAllocationUnits="%s"`, d.units)
		}
		fmt.Fprintf(&b, "    <Disk ovf:capacity=\"%s\"%s ovf:diskId=\"%s\" ovf:fileRef=\"file%d\" ovf:format=\"%s\"/>\n", d.capacity, units, d.id, i+1, d.format)
	}
	b.WriteString(`  </DiskSection>
  <VirtualSystem ovf:id="appliance-vm">
    <Info>A virtual machine</Info>
    <Name>appliance-vm</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <Item><rasd:ElementName>2 virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
`)
	ctls := []string{`<Item><rasd:Address>0</rasd:Address><rasd:ElementName>SCSI Controller 0</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>`,
		`<Item><rasd:Address>1</rasd:Address><rasd:ElementName>SCSI Controller 1</rasd:ElementName><rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>`}
	if version == 2 {
		ctls = []string{`<Item><rasd:Address>0</rasd:Address><rasd:ElementName>ideController0</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>PIIX4</rasd:ResourceSubType><rasd:ResourceType>5</rasd:ResourceType></Item>`,
			`<Item><rasd:Address>0</rasd:Address><rasd:ElementName>sataController0</rasd:ElementName><rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceSubType>AHCI</rasd:ResourceSubType><rasd:ResourceType>20</rasd:ResourceType></Item>`}
	}
	for _, c := range ctls {
		b.WriteString("      " + c + "\n")
	}
	// The drives are listed last disk first, so that the boot order comes
	// from the controllers and addresses, not the listing.
	for i := len(disks) - 1; i >= 0; i-- {
		d := disks[i]
		fmt.Fprintf(&b, "      <Item><rasd:AddressOnParent>%d</rasd:AddressOnParent><rasd:ElementName>disk%d</rasd:ElementName><rasd:HostResource>ovf:/disk/%s</rasd:HostResource><rasd:InstanceID>%d</rasd:InstanceID><rasd:Parent>%d</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>\n",
			d.addr, i+1, d.id, 10+i, 3+d.ctl)
	}
	b.WriteString("    </VirtualHardwareSection>\n  </VirtualSystem>\n</Envelope>\n")
	return b.String()
}

// mf writes an .mf as ovftool (alg "SHA256") or older VirtualBox ("SHA1")
// do: `SHA256(name)= hex` per member.
func mf(alg string, ms []member) []byte {
	var b bytes.Buffer
	for _, m := range ms {
		var sum []byte
		if alg == "SHA1" {
			s := sha1.Sum(m.data)
			sum = s[:]
		} else {
			s := sha256.Sum256(m.data)
			sum = s[:]
		}
		fmt.Fprintf(&b, "%s(%s)= %x\n", alg, m.name, sum)
	}
	return b.Bytes()
}

// tarOf lays the members out in a tar of the given format.
func tarOf(t testing.TB, ms []member, format tar.Format) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range ms {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Format: format, Uname: "someone", Gname: "someone"}); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// An applianceSpec says how to build a test OVA.
type applianceSpec struct {
	version  int    // OVF 1 (ovftool) or 2 (VirtualBox)
	alg      string // .mf algorithm; "" for no .mf
	mfLast   bool   // the .mf after the disks (VirtualBox) instead of second (ovftool)
	ovfLast  bool   // the descriptor after the disks (members in any order)
	format   tar.Format
	disks    []testDisk
	files    map[string]string // disk file name -> path of the disk image
	editOVF  func(string) string
	editMF   func([]byte) []byte
	extra    []member
	noListed string // a disk member the .mf leaves out
}

// build writes the OVA and returns its path.
func build(t testing.TB, spec applianceSpec) string {
	t.Helper()
	var disks []member
	sizes := map[string]int{}
	for _, d := range spec.disks {
		b, err := os.ReadFile(spec.files[d.file])
		if err != nil {
			t.Fatal(err)
		}
		if d.gzip {
			var z bytes.Buffer
			w := gzip.NewWriter(&z)
			w.Write(b)
			w.Close()
			b = z.Bytes()
		}
		sizes[d.file] = len(b)
		disks = append(disks, member{d.file, b})
	}
	ovf := ovfXML(spec.version, spec.disks, sizes)
	if spec.editOVF != nil {
		ovf = spec.editOVF(ovf)
	}
	desc := member{"appliance.ovf", []byte(ovf)}
	listed := []member{desc}
	for _, d := range disks {
		if d.name != spec.noListed {
			listed = append(listed, d)
		}
	}
	var ms []member
	if !spec.ovfLast {
		ms = append(ms, desc)
	}
	var man []member
	if spec.alg != "" {
		m := mf(spec.alg, listed)
		if spec.editMF != nil {
			m = spec.editMF(m)
		}
		man = []member{{"appliance.mf", m}}
	}
	if !spec.mfLast {
		ms = append(ms, man...)
	}
	ms = append(ms, disks...)
	ms = append(ms, spec.extra...)
	if spec.mfLast {
		ms = append(ms, man...)
	}
	if spec.ovfLast {
		ms = append(ms, desc)
	}
	format := spec.format
	if format == tar.FormatUnknown {
		format = tar.FormatUSTAR
	}
	p := filepath.Join(t.TempDir(), "appliance.ova")
	if err := os.WriteFile(p, tarOf(t, ms, format), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
