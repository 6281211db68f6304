package ova

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"github.com/diskport/diskport/disk"
)

// The OVF descriptor's elements diskport reads (DMTF DSP0243 1.x and 2.x).
// Names match by local name, so the ovf:, rasd: and sasd: prefixes and
// both versions' namespaces read alike.
type envelope struct {
	XMLName    xml.Name        `xml:"Envelope"`
	Version    string          `xml:"version,attr"`
	Files      []fileRef       `xml:"References>File"`
	Disks      []diskElem      `xml:"DiskSection>Disk"`
	Systems    []systemElem    `xml:"VirtualSystem"`
	Collection *collectionElem `xml:"VirtualSystemCollection"`
}

type collectionElem struct {
	Systems []systemElem `xml:"VirtualSystem"`
}

type fileRef struct {
	ID          string `xml:"id,attr"`
	Href        string `xml:"href,attr"`
	Size        string `xml:"size,attr"`
	Compression string `xml:"compression,attr"`
	ChunkSize   string `xml:"chunkSize,attr"`
}

type diskElem struct {
	ID        string `xml:"diskId,attr"`
	FileRef   string `xml:"fileRef,attr"`
	Capacity  string `xml:"capacity,attr"`
	Units     string `xml:"capacityAllocationUnits,attr"`
	Format    string `xml:"format,attr"`
	ParentRef string `xml:"parentRef,attr"`
}

type systemElem struct {
	ID    string     `xml:"id,attr"`
	Name  string     `xml:"Name"`
	Items []itemElem `xml:"VirtualHardwareSection>Item"`
	// OVF 2.x puts disk drives and controllers in StorageItem elements.
	StorageItems []itemElem `xml:"VirtualHardwareSection>StorageItem"`
}

type itemElem struct {
	InstanceID   string   `xml:"InstanceID"`
	ResourceType int      `xml:"ResourceType"`
	SubType      string   `xml:"ResourceSubType"`
	ElementName  string   `xml:"ElementName"`
	Parent       string   `xml:"Parent"`
	Address      string   `xml:"AddressOnParent"`
	HostResource []string `xml:"HostResource"`
}

// CIM resource types of the hardware items that matter here.
const (
	rtIDE       = 5
	rtSCSI      = 6
	rtOther     = 20 // SATA (AHCI), NVMe in VirtualBox and VMware exports
	rtDiskDrive = 17
)

// maxDescriptor bounds the .ovf; real ones are a few tens of KiB.
const maxDescriptor = 4 << 20

// maxDepth and maxTokens bound the XML walk.
const (
	maxDepth  = 64
	maxTokens = 1 << 20
)

// parseDescriptor parses an .ovf. A DOCTYPE (where entities are declared:
// encoding/xml expands none but the predefined ones, and an OVF has no
// use for one) is refused, as are deep nesting and a runaway token count.
func parseDescriptor(name string, b []byte) (*envelope, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	depth := 0
	for n := 0; ; n++ {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s: not well-formed XML: %v", name, err)
		}
		if n > maxTokens {
			return nil, disk.Errorf("ova", disk.ErrTooLarge, "%s: more than %d XML tokens", name, maxTokens)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, disk.Errorf("ova", disk.ErrUnsafe, "%s: the descriptor has a <!%.20s...> directive (a DOCTYPE can declare entities); an OVF has none", name, t)
		case xml.StartElement:
			if depth++; depth > maxDepth {
				return nil, disk.Errorf("ova", disk.ErrTooLarge, "%s: XML nested deeper than %d elements", name, maxDepth)
			}
		case xml.EndElement:
			depth--
		}
	}
	var e envelope
	if err := xml.Unmarshal(b, &e); err != nil {
		return nil, disk.Errorf("ova", disk.ErrCorrupt, "%s: not an OVF descriptor: %v", name, err)
	}
	return &e, nil
}

// parseCapacity reads ovf:capacity in ovf:capacityAllocationUnits: "byte"
// (the default), "byte * 2^30", "byte * 10^9" (spaces optional), or the
// older "KiloBytes", "MegaBytes", "GigaBytes" (powers of 1024).
func parseCapacity(capacity, units string) (int64, error) {
	c, err := strconv.ParseInt(strings.TrimSpace(capacity), 10, 64)
	if err != nil || c < 0 {
		return 0, disk.Errorf("ova", disk.ErrCorrupt, "capacity %q is not a byte count", capacity)
	}
	mult, err := parseUnits(units)
	if err != nil {
		return 0, err
	}
	hi, lo := bits.Mul64(uint64(c), mult)
	if hi != 0 || lo > math.MaxInt64 {
		return 0, disk.Errorf("ova", disk.ErrTooLarge, "capacity %s × %q overflows", capacity, units)
	}
	return int64(lo), nil
}

func parseUnits(units string) (uint64, error) {
	u := strings.ReplaceAll(strings.ToLower(units), " ", "")
	switch u {
	case "", "byte", "bytes":
		return 1, nil
	case "kilobytes":
		return 1 << 10, nil
	case "megabytes":
		return 1 << 20, nil
	case "gigabytes":
		return 1 << 30, nil
	}
	rest, ok := strings.CutPrefix(u, "byte*")
	base, exp, ok2 := strings.Cut(rest, "^")
	e, err := strconv.Atoi(exp)
	if !ok || !ok2 || err != nil || e < 0 || (base != "2" && base != "10") {
		return 0, disk.Errorf("ova", disk.ErrUnsupported, "capacity units %q: want byte, byte * 2^N or byte * 10^N", units)
	}
	b := uint64(2)
	if base == "10" {
		b = 10
	}
	m := uint64(1)
	for range e {
		if m > math.MaxInt64/b {
			return 0, disk.Errorf("ova", disk.ErrTooLarge, "capacity units %q overflow", units)
		}
		m *= b
	}
	return m, nil
}

// formatOf maps an ovf:format URI to the format it declares: the name
// diskport.ParseFormat takes, or "" when the URI names no format diskport
// knows.
func formatOf(uri string) string {
	u := strings.ToLower(uri)
	switch {
	case strings.Contains(u, "vmdk"):
		return "vmdk"
	case strings.Contains(u, "vhdx"):
		return "vhdx"
	case strings.Contains(u, "linkid=137171"), strings.Contains(u, "vhd"):
		return "vhd" // Microsoft's VHD specification link, as VirtualBox writes it
	case strings.Contains(u, "qcow"):
		return "qcow2"
	case strings.Contains(u, "raw"):
		return "raw"
	}
	return ""
}
