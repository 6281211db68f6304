package ova

import (
	"testing"

	"github.com/diskport/diskport/disk"
)

// FuzzDescriptor feeds arbitrary XML to the OVF parser and the disk and
// boot-order walk over it: an error or a description, never a panic.
func FuzzDescriptor(f *testing.F) {
	f.Add([]byte(`<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References><File ovf:id="f1" ovf:href="d.vmdk" ovf:size="4"/></References><DiskSection><Disk ovf:capacity="1" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="d1" ovf:fileRef="f1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection><VirtualSystem ovf:id="vm"><VirtualHardwareSection><Item><InstanceID>3</InstanceID><ResourceType>6</ResourceType></Item><Item><AddressOnParent>0</AddressOnParent><HostResource>ovf:/disk/d1</HostResource><InstanceID>4</InstanceID><Parent>3</Parent><ResourceType>17</ResourceType></Item></VirtualHardwareSection></VirtualSystem></Envelope>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><Envelope>&a;</Envelope>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := parseDescriptor("fuzz.ovf", b)
		if err != nil {
			return
		}
		a := &Appliance{s: disk.NewMemStorage("fuzz.ova", nil), Descriptor: "fuzz.ovf", opts: Options{MaxVirtualSize: 1 << 40, MaxDisks: 64},
			members: map[string]Member{"d.vmdk": {Name: "d.vmdk", Offset: 512, Size: 4}}, Digests: map[string]Digest{"d.vmdk": {Algorithm: "SHA1"}}}
		_ = a.describe(env)
	})
}

// FuzzManifest feeds arbitrary bytes to the .mf parser.
func FuzzManifest(f *testing.F) {
	f.Add([]byte("SHA256(a.ovf)= 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nSHA1(d.vmdk)= 0123456789abcdef0123456789abcdef01234567\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := parseManifest("fuzz.mf", b)
		for _, d := range ds {
			if digestLen[d.Algorithm] != len(d.Sum) {
				t.Fatalf("%+v", d)
			}
		}
		_ = err
	})
}
