package vmdk

import (
	"bytes"

	"github.com/diskport/diskport/disk"
)

// probeBytes is how much of the head Probe reads for a text descriptor.
const probeBytes = 4096

// Probe tells whether s holds a VMDK, in three answers: true (KDMV or COWD
// magic at offset 0, or a text descriptor by qemu's rule: comment and
// blank lines, then version=1, 2 or 3 alone on a line); false with a nil
// error (no VMDK signature); or false with a *disk.Error of class
// disk.ErrCorrupt when s carries a VMDK signature but fails that check (a
// head that starts "# Disk DescriptorFile", or a text head with a
// createType= line, but no version line where qemu looks for one). A file
// like that is a damaged descriptor, never a RAW disk. Read errors are
// returned as they are.
func Probe(s disk.Storage) (bool, error) {
	head := make([]byte, min(s.Size(), probeBytes))
	if err := disk.ReadFull(s, formatName, "first sector", head, 0); err != nil {
		return false, err
	}
	if bytes.HasPrefix(head, []byte(magicKDMV)) || bytes.HasPrefix(head, []byte(magicCOWD)) {
		return true, nil
	}
	if looksLikeDescriptor(head) {
		return true, nil
	}
	if hasDescriptorSignature(head) {
		return false, disk.Errorf(formatName, disk.ErrCorrupt, "%s: looks like a VMDK text descriptor but has no version=1, 2 or 3 line before its first other line (a damaged descriptor)", s.Name())
	}
	return false, nil
}

// hasDescriptorSignature reports whether the head of a file is marked as
// a text descriptor: the "# Disk DescriptorFile" line writers start with,
// or text (no NUL) with a createType= line.
func hasDescriptorSignature(head []byte) bool {
	if bytes.HasPrefix(head, []byte("# Disk DescriptorFile")) {
		return true
	}
	i := bytes.Index(head, []byte("createType="))
	return i >= 0 && (i == 0 || head[i-1] == '\n') && bytes.IndexByte(head[:i], 0) < 0
}

// looksLikeDescriptor applies qemu's vmdk_probe text rule.
func looksLikeDescriptor(b []byte) bool {
	for len(b) > 0 {
		var line []byte
		i := 0
		for i < len(b) && b[i] != '\n' {
			i++
		}
		if i == len(b) {
			return false // no complete line
		}
		line, b = b[:i], b[i+1:]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) > 0 && line[0] == '#' {
			continue
		}
		blank := true
		for _, c := range line {
			blank = blank && c == ' '
		}
		if blank {
			continue
		}
		s := string(line)
		return s == "version=1" || s == "version=2" || s == "version=3"
	}
	return false
}

// IsDescriptor reports whether s holds a text descriptor (or what is
// marked as one), rather than a KDMV or COWD extent: the VMDK whose data
// lives in other files.
func IsDescriptor(s disk.Storage) bool {
	head := make([]byte, min(s.Size(), probeBytes))
	if err := disk.ReadFull(s, formatName, "first sector", head, 0); err != nil {
		return false
	}
	return looksLikeDescriptor(head) || hasDescriptorSignature(head)
}
