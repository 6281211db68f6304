package bundle

import (
	"bytes"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/diskport/diskport/disk"
)

// ManifestVersion is the AMI bundle manifest version diskport writes and
// reads.
const ManifestVersion = "2007-10-10"

// MaxManifestSize bounds the manifest a reader accepts (about 100,000
// parts, a 1 TiB volume of incompressible data).
const MaxManifestSize = 16 << 20

// Unsigned is the signature of a manifest written without a signing key,
// as euca2ools writes it.
const Unsigned = "UNSIGNED"

// manifestDecl is the XML declaration ec2-bundle-image (REXML) and
// go_ami_tools write.
const manifestDecl = "<?xml version='1.0'?>"

// A Manifest is PREFIX.manifest.xml: what the bundle holds and how to put it
// back together. Field order follows ec2-ami-tools' ManifestV20071010.
type Manifest struct {
	XMLName              xml.Name             `xml:"manifest"`
	Version              string               `xml:"version"`
	Bundler              Bundler              `xml:"bundler"`
	MachineConfiguration MachineConfiguration `xml:"machine_configuration"`
	Image                ImageInfo            `xml:"image"`
	Signature            string               `xml:"signature"`

	// signed is the text the signature covers, as read: the
	// machine_configuration element followed by the image element.
	signed []byte
}

// Bundler names the program that made the bundle.
type Bundler struct {
	Name    string `xml:"name"`
	Version string `xml:"version"`
	Release string `xml:"release"`
}

// MachineConfiguration is the instance configuration the image boots with.
type MachineConfiguration struct {
	Architecture       string    `xml:"architecture"`
	BlockDeviceMapping []Mapping `xml:"block_device_mapping>mapping,omitempty"`
	KernelID           string    `xml:"kernel_id,omitempty"`
	RamdiskID          string    `xml:"ramdisk_id,omitempty"`
	ProductCodes       []string  `xml:"product_codes>product_code,omitempty"`
}

// A Mapping maps a virtual device name ("ami", "root", "ephemeral0") to a
// device.
type Mapping struct {
	Virtual string `xml:"virtual"`
	Device  string `xml:"device"`
}

// ImageInfo is the manifest's image element.
type ImageInfo struct {
	// Name is the image name (the bundle prefix); User the account ID
	// without dashes; Type "machine", "kernel" or "ramdisk".
	Name string `xml:"name"`
	User string `xml:"user"`
	Type string `xml:"type"`
	// Digest is the SHA-1 of the tar stream (before gzip).
	Digest Digest `xml:"digest"`
	// Size is the volume's size in bytes; BundledSize the sum of the
	// parts' sizes.
	Size        int64 `xml:"size"`
	BundledSize int64 `xml:"bundled_size"`
	// The AES key and IV, each a 32-hex-digit string RSA-encrypted (PKCS#1
	// v1.5) and hex-encoded, for the EC2 certificate and the user's.
	EC2EncryptedKey  EncryptedKey `xml:"ec2_encrypted_key"`
	UserEncryptedKey EncryptedKey `xml:"user_encrypted_key"`
	EC2EncryptedIV   string       `xml:"ec2_encrypted_iv"`
	UserEncryptedIV  string       `xml:"user_encrypted_iv"`
	Parts            Parts        `xml:"parts"`
}

// A Digest is a hex digest and its algorithm ("SHA1").
type Digest struct {
	Algorithm string `xml:"algorithm,attr"`
	Hex       string `xml:",chardata"`
}

// An EncryptedKey is a hex RSA ciphertext and the cipher of the key it
// holds ("AES-128-CBC").
type EncryptedKey struct {
	Algorithm string `xml:"algorithm,attr"`
	Hex       string `xml:",chardata"`
}

// Parts lists the bundle's parts in order.
type Parts struct {
	Count int    `xml:"count,attr"`
	Part  []Part `xml:"part"`
}

// A Part is one PREFIX.part.NN object and the SHA-1 of its bytes.
type Part struct {
	Index    int    `xml:"index,attr"`
	Filename string `xml:"filename"`
	Digest   Digest `xml:"digest"`
}

// SignedText returns what the manifest's signature covers: the compact
// machine_configuration element followed by the image element, exactly as
// they appear in the manifest.
func (m *Manifest) SignedText() []byte {
	if m.signed == nil {
		mc, _ := xml.Marshal(&m.MachineConfiguration) // plain strings and ints always marshal
		im, _ := xml.Marshal(&m.Image)
		m.signed = append(rename(mc, "MachineConfiguration", "machine_configuration"), rename(im, "ImageInfo", "image")...)
	}
	return m.signed
}

// rename replaces the outer element name encoding/xml gives a struct
// marshalled on its own.
func rename(b []byte, from, to string) []byte {
	b = bytes.Replace(b, []byte("<"+from+">"), []byte("<"+to+">"), 1)
	if i := bytes.LastIndex(b, []byte("</"+from+">")); i >= 0 {
		b = append(b[:i:i], []byte("</"+to+">")...)
	}
	return b
}

// Marshal returns the manifest document: the declaration, then the whole
// manifest on one line, so its machine_configuration and image elements are
// byte for byte the signed text.
func (m *Manifest) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(manifestDecl)
	b.WriteString("<manifest><version>")
	xml.EscapeText(&b, []byte(m.Version))
	b.WriteString("</version>")
	bu, _ := xml.Marshal(&m.Bundler)
	b.Write(rename(bu, "Bundler", "bundler"))
	b.Write(m.SignedText())
	b.WriteString("<signature>")
	xml.EscapeText(&b, []byte(m.Signature))
	b.WriteString("</signature></manifest>\n")
	return b.Bytes()
}

func corrupt(format string, args ...any) error {
	return disk.Errorf("bundle", disk.ErrCorrupt, format, args...)
}

// ReadManifest parses and validates a manifest: version 2007-10-10, SHA-1
// digests of 40 hex digits, hex key ciphertexts, a parts list whose count
// matches and whose indexes run 0..count-1, part file names that are plain
// names (no directories), sizes that are not negative. It does not check
// the signature (see Manifest.Verify).
func ReadManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, disk.Errorf("bundle", disk.ErrTooLarge, "manifest is %d bytes, over the %d-byte limit", len(data), MaxManifestSize)
	}
	signed, err := signedText(data)
	if err != nil {
		return nil, err
	}
	m := &Manifest{}
	if err := newXMLDecoder(data).Decode(m); err != nil {
		return nil, corrupt("manifest is not valid XML: %v", err)
	}
	m.signed = signed
	if m.Version != ManifestVersion {
		return nil, disk.Errorf("bundle", disk.ErrUnsupported, "manifest version %q, want %q", truncate(m.Version, 40), ManifestVersion)
	}
	im := &m.Image
	if err := checkDigest("image digest", im.Digest); err != nil {
		return nil, err
	}
	if im.Size < 0 || im.BundledSize < 0 {
		return nil, corrupt("manifest image size %d or bundled_size %d is negative", im.Size, im.BundledSize)
	}
	for _, f := range []struct{ name, v string }{
		{"ec2_encrypted_key", im.EC2EncryptedKey.Hex}, {"user_encrypted_key", im.UserEncryptedKey.Hex},
		{"ec2_encrypted_iv", im.EC2EncryptedIV}, {"user_encrypted_iv", im.UserEncryptedIV},
	} {
		if _, err := hex.DecodeString(strings.TrimSpace(f.v)); err != nil {
			return nil, corrupt("manifest %s is not hex: %v", f.name, err)
		}
	}
	parts := im.Parts.Part
	if len(parts) == 0 {
		return nil, corrupt("manifest lists no parts")
	}
	if im.Parts.Count != len(parts) {
		return nil, corrupt("manifest parts count=%d but lists %d parts", im.Parts.Count, len(parts))
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].Index < parts[j].Index })
	for i, p := range parts {
		if p.Index != i {
			return nil, corrupt("manifest part indexes are not 0..%d: part %d has index %d", len(parts)-1, i, p.Index)
		}
		if err := checkPartName(p.Filename); err != nil {
			return nil, err
		}
		if err := checkDigest(fmt.Sprintf("part %d digest", i), p.Digest); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func checkDigest(what string, d Digest) error {
	if !strings.EqualFold(d.Algorithm, "SHA1") {
		return disk.Errorf("bundle", disk.ErrUnsupported, "manifest %s algorithm %q, want SHA1", what, truncate(d.Algorithm, 20))
	}
	h := strings.TrimSpace(d.Hex)
	if len(h) != 40 {
		return corrupt("manifest %s %q is not 40 hex digits", what, truncate(h, 50))
	}
	if _, err := hex.DecodeString(h); err != nil {
		return corrupt("manifest %s %q is not hex", what, h)
	}
	return nil
}

// checkPartName refuses part names that are not plain file names: a
// hostile manifest must not make the reader open ../../etc/passwd.
func checkPartName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || len(name) > 1024 {
		return disk.Errorf("bundle", disk.ErrUnsafe, "manifest part file name %q is not a plain file name", truncate(name, 80))
	}
	return nil
}

// signedText returns the raw bytes of the manifest's top-level
// machine_configuration and image elements, concatenated.
func signedText(data []byte) ([]byte, error) {
	d := newXMLDecoder(data)
	var mc, im []byte
	depth := 0
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, corrupt("manifest is not valid XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 && t.Name.Local != "manifest" {
				return nil, corrupt("manifest root element is <%s>, want <manifest>", truncate(t.Name.Local, 40))
			}
			if depth == 1 && (t.Name.Local == "machine_configuration" || t.Name.Local == "image") {
				if err := d.Skip(); err != nil {
					return nil, corrupt("manifest is not valid XML: %v", err)
				}
				raw := data[start:d.InputOffset()]
				if t.Name.Local == "image" {
					if im != nil {
						return nil, corrupt("manifest has two image elements")
					}
					im = raw
				} else {
					if mc != nil {
						return nil, corrupt("manifest has two machine_configuration elements")
					}
					mc = raw
				}
				continue
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
	if mc == nil || im == nil {
		return nil, corrupt("manifest lacks its machine_configuration or image element")
	}
	return append(append([]byte(nil), mc...), im...), nil
}

// newXMLDecoder returns a decoder for a manifest. euca2ools declares
// encoding='ASCII', which encoding/xml refuses without a CharsetReader;
// ASCII is a subset of UTF-8 and Latin-1 maps byte for byte to runes.
func newXMLDecoder(data []byte) *xml.Decoder {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		switch strings.ToLower(label) {
		case "ascii", "us-ascii", "utf8":
			return r, nil
		case "iso-8859-1", "latin1", "latin-1":
			b, err := io.ReadAll(r)
			if err != nil {
				return nil, err
			}
			u := make([]rune, len(b))
			for i, c := range b {
				u[i] = rune(c)
			}
			return strings.NewReader(string(u)), nil
		}
		return nil, fmt.Errorf("unsupported encoding %q", truncate(label, 20))
	}
	return d
}
