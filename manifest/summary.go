package manifest

import (
	"github.com/diskport/diskport/internal/logtext"
	"github.com/diskport/diskport/manifest/parts"
)

// Summary is a manifest as `diskport manifest show --output=json` prints
// it: its fields, with every presigned URL's query (its signature) dropped.
type Summary struct {
	Version    string `json:"version"`
	FileFormat string `json:"file-format"`
	Importer   struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Release string `json:"release"`
	} `json:"importer"`
	// Size is the manifest's import/size; FileSize what the parts hold
	// (they differ for VMDK manifests euca2ools writes).
	Size            int64         `json:"size"`
	FileSize        int64         `json:"file-size"`
	VolumeSizeGiB   int64         `json:"volume-size-gib"`
	SHA256          string        `json:"sha256,omitempty"`
	SelfDestructURL string        `json:"self-destruct-url,omitempty"`
	Parts           []PartSummary `json:"parts"`
}

// PartSummary is one part in a [Summary].
type PartSummary struct {
	Index  int    `json:"index"`
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Key    string `json:"key"`
	SHA256 string `json:"sha256,omitempty"`
	// From is where the part is read from ([parts.Store.Where]): a path, an
	// s3:// name or a URL without its query.
	From string `json:"from"`
}

// Summarize returns m's [Summary], its parts located in store.
func (m *Manifest) Summarize(store parts.Store) Summary {
	s := Summary{
		Version: m.Version, FileFormat: m.FileFormat,
		Size: m.Size, FileSize: m.FileSize(), VolumeSizeGiB: m.VolumeSize,
		SHA256: m.SHA256, SelfDestructURL: logtext.RedactURL(m.SelfDestructURL),
		Parts: make([]PartSummary, len(m.Parts)),
	}
	s.Importer.Name, s.Importer.Version, s.Importer.Release = m.Importer.Name, m.Importer.Version, m.Importer.Release
	for i := range m.Parts {
		p := &m.Parts[i]
		s.Parts[i] = PartSummary{Index: p.Index, Offset: p.Offset, Length: p.Length, Key: p.Key, SHA256: p.SHA256, From: store.Where(p)}
	}
	return s
}
