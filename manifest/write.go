package manifest

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
)

// Marshal returns the manifest as the AWS tools write it: an XML
// declaration with standalone="yes", four-space indentation, Unix line
// ends, elements in the schema's order, byte-range end before start. The
// checksum extension, when present, is declared on the root element with
// the prefix "dp" and written last in each part and in import.
func (m *Manifest) Marshal() []byte {
	var b bytes.Buffer
	m.WriteTo(&b)
	return b.Bytes()
}

// WriteTo writes the manifest as [Manifest.Marshal] does.
func (m *Manifest) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriter(cw)
	e := xmlWriter{w: bw}
	e.raw("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n")
	if m.hasAnyChecksum() {
		e.raw("<manifest xmlns:dp=\"" + Namespace + "\">\n")
	} else {
		e.raw("<manifest>\n")
	}
	version := m.Version
	if version == "" {
		version = Version
	}
	e.elem(1, "version", version)
	e.elem(1, "file-format", m.FileFormat)
	e.open(1, "importer")
	e.elem(2, "name", m.Importer.Name)
	e.elem(2, "version", m.Importer.Version)
	e.elem(2, "release", m.Importer.Release)
	e.close(1, "importer")
	if m.SelfDestructURL != "" {
		e.elem(1, "self-destruct-url", m.SelfDestructURL)
	}
	e.open(1, "import")
	e.elem(2, "size", strconv.FormatInt(m.Size, 10))
	e.elem(2, "volume-size", strconv.FormatInt(m.VolumeSize, 10))
	e.raw("        <parts count=\"" + strconv.Itoa(len(m.Parts)) + "\">\n")
	for i := range m.Parts {
		p := &m.Parts[i]
		e.raw("            <part index=\"" + strconv.Itoa(p.Index) + "\">\n")
		e.raw("                <byte-range end=\"" + strconv.FormatInt(p.End()-1, 10) +
			"\" start=\"" + strconv.FormatInt(p.Offset, 10) + "\"/>\n")
		e.elem(4, "key", p.Key)
		e.elem(4, "head-url", p.HeadURL)
		e.elem(4, "get-url", p.GetURL)
		if p.DeleteURL != "" {
			e.elem(4, "delete-url", p.DeleteURL)
		}
		if p.SHA256 != "" {
			e.elem(4, "dp:sha256", p.SHA256)
		}
		e.close(3, "part")
	}
	e.close(2, "parts")
	if m.SHA256 != "" {
		e.elem(2, "dp:sha256", m.SHA256)
	}
	e.close(1, "import")
	e.raw("</manifest>\n")
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

func (m *Manifest) hasAnyChecksum() bool {
	if m.SHA256 != "" {
		return true
	}
	for i := range m.Parts {
		if m.Parts[i].SHA256 != "" {
			return true
		}
	}
	return false
}

type xmlWriter struct{ w *bufio.Writer }

const indent = "                    "

func (e xmlWriter) raw(s string) { e.w.WriteString(s) }

func (e xmlWriter) open(depth int, name string) {
	e.w.WriteString(indent[:4*depth] + "<" + name + ">\n")
}

func (e xmlWriter) close(depth int, name string) {
	e.w.WriteString(indent[:4*depth] + "</" + name + ">\n")
}

func (e xmlWriter) elem(depth int, name, text string) {
	e.w.WriteString(indent[:4*depth] + "<" + name + ">")
	xml.EscapeText(e.w, []byte(text))
	e.w.WriteString("</" + name + ">\n")
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
