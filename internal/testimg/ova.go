package testimg

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

// An OVAMember is a file of a test OVA.
type OVAMember struct {
	Name string
	Data []byte
}

// A OVADisk is a disk of a test OVA's descriptor.
type OVADisk struct {
	ID, File, Format string // Format: the ovf:format URI
	Capacity         string
	Units            string // capacityAllocationUnits ("" for none)
	Gzip             bool
	Ctl, Addr        int // hardware item: controller index, address
}

// The ovf:format URIs ovftool and VirtualBox write (URIRaw is made up: no
// standard URI names RAW).
const (
	URIStreamOptimized = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
	URIVHD             = "http://go.microsoft.com/fwlink/?LinkId=137171"
	URIRaw             = "http://diskport.test/raw"
)

// ovfXML writes a descriptor as ovftool (version 1, OVF 1.0 namespace, a
// SCSI controller) or VirtualBox (version 2, OVF 2.0, IDE then SATA
// controllers) lay it out. Each disk has a file in References (sizes from
// sizes) and a disk-drive item on controller ctl at address addr.
func ovfXML(version int, disks []OVADisk, sizes map[string]int) string {
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
		if d.Gzip {
			comp = ` ovf:compression="gzip"`
		}
		fmt.Fprintf(&b, "    <File ovf:id=\"file%d\" ovf:href=\"%s\" ovf:size=\"%d\"%s/>\n", i+1, d.File, sizes[d.File], comp)
	}
	b.WriteString("  </References>\n  <DiskSection>\n    <Info>Virtual disk information</Info>\n")
	for i, d := range disks {
		units := ""
		if d.Units != "" {
			units = fmt.Sprintf(` ovf:capacityAllocationUnits="%s"`, d.Units)
		}
		fmt.Fprintf(&b, "    <Disk ovf:capacity=\"%s\"%s ovf:diskId=\"%s\" ovf:fileRef=\"file%d\" ovf:format=\"%s\"/>\n", d.Capacity, units, d.ID, i+1, d.Format)
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
			d.Addr, i+1, d.ID, 10+i, 3+d.Ctl)
	}
	b.WriteString("    </VirtualHardwareSection>\n  </VirtualSystem>\n</Envelope>\n")
	return b.String()
}

// OVFDescriptor is the descriptor ovfXML writes, for builders outside the
// tests (bench/compare's OVA row) that stream their own tar: version 1
// lays it out as ovftool does, 2 as VirtualBox does; sizes are the disk
// members' sizes by file name.
func OVFDescriptor(version int, disks []OVADisk, sizes map[string]int) string {
	return ovfXML(version, disks, sizes)
}

// ovaManifest writes an .mf as ovftool (alg "SHA256") or older VirtualBox ("SHA1")
// do: `SHA256(name)= hex` per member.
func ovaManifest(alg string, ms []OVAMember) []byte {
	var b bytes.Buffer
	for _, m := range ms {
		var sum []byte
		if alg == "SHA1" {
			s := sha1.Sum(m.Data)
			sum = s[:]
		} else {
			s := sha256.Sum256(m.Data)
			sum = s[:]
		}
		fmt.Fprintf(&b, "%s(%s)= %x\n", alg, m.Name, sum)
	}
	return b.Bytes()
}

// tarOf lays the members out in a tar of the given format.
func tarOf(t testing.TB, ms []OVAMember, format tar.Format) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range ms {
		if err := tw.WriteHeader(&tar.Header{Name: m.Name, Mode: 0o644, Size: int64(len(m.Data)), Format: format, Uname: "someone", Gname: "someone"}); err != nil {
			t.Fatal(err)
		}
		tw.Write(m.Data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// An OVASpec says how to build a test OVA.
type OVASpec struct {
	Version  int    // OVF 1 (ovftool) or 2 (VirtualBox)
	Alg      string // .mf algorithm; "" for no .mf
	MFLast   bool   // the .mf after the disks (VirtualBox) instead of second (ovftool)
	OVFLast  bool   // the descriptor after the disks (members in any order)
	Format   tar.Format
	Disks    []OVADisk
	Files    map[string]string // disk file name -> path of the disk image
	EditOVF  func(string) string
	EditMF   func([]byte) []byte
	Extra    []OVAMember
	NoListed string // a disk member the .mf leaves out
	// Cert, when set, makes the .cert member (after the .mf) from the
	// .mf's bytes, as ovftool signs an appliance.
	Cert func(mf []byte) []byte
}

// OVA writes the OVA an OVASpec describes, into a temporary directory,
// and returns its path.
func OVA(t testing.TB, spec OVASpec) string {
	t.Helper()
	var disks []OVAMember
	sizes := map[string]int{}
	for _, d := range spec.Disks {
		b, err := os.ReadFile(spec.Files[d.File])
		if err != nil {
			t.Fatal(err)
		}
		if d.Gzip {
			var z bytes.Buffer
			w := gzip.NewWriter(&z)
			w.Write(b)
			w.Close()
			b = z.Bytes()
		}
		sizes[d.File] = len(b)
		disks = append(disks, OVAMember{d.File, b})
	}
	ovf := ovfXML(spec.Version, spec.Disks, sizes)
	if spec.EditOVF != nil {
		ovf = spec.EditOVF(ovf)
	}
	desc := OVAMember{"appliance.ovf", []byte(ovf)}
	listed := []OVAMember{desc}
	for _, d := range disks {
		if d.Name != spec.NoListed {
			listed = append(listed, d)
		}
	}
	var ms []OVAMember
	if !spec.OVFLast {
		ms = append(ms, desc)
	}
	var man []OVAMember
	if spec.Alg != "" {
		m := ovaManifest(spec.Alg, listed)
		if spec.EditMF != nil {
			m = spec.EditMF(m)
		}
		man = []OVAMember{{"appliance.mf", m}}
		if spec.Cert != nil {
			man = append(man, OVAMember{"appliance.cert", spec.Cert(m)})
		}
	}
	if !spec.MFLast {
		ms = append(ms, man...)
	}
	ms = append(ms, disks...)
	ms = append(ms, spec.Extra...)
	if spec.MFLast {
		ms = append(ms, man...)
	}
	if spec.OVFLast {
		ms = append(ms, desc)
	}
	format := spec.Format
	if format == tar.FormatUnknown {
		format = tar.FormatUSTAR
	}
	p := filepath.Join(t.TempDir(), "appliance.ova")
	if err := os.WriteFile(p, tarOf(t, ms, format), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
