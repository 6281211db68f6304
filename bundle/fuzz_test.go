package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/diskport/diskport/disk"
)

// FuzzParsePolicy: any policy text is parsed or refused with a
// *PolicyError, never a panic; a parsed policy written back with JSON
// parses to the same expiration and conditions.
func FuzzParsePolicy(f *testing.F) {
	f.Add(eucaPolicyB64)
	f.Add(NewPolicy("mybucket", "myprefix", vectorTime).Encode())
	for _, doc := range []string{
		`{"expiration":"2014-01-01T00:00:00.000Z","conditions":[{"bucket":"b"},["starts-with","$acl",""],["starts-with","$key","p"],["content-length-range",1,"10485760"],["eq","$x-ignore-me","1"]]}`,
		`{"expiration":"2014-01-01T00:00:00Z","conditions":[["content-length-range",5,1],{"a":1},[],["eq","key","v"]]}`,
		`{"expiration":17,"conditions":{}}`,
		`[]`, `{}`, `{"expiration":"2014-01-01T00:00:00+02:00","conditions":[]} trailing`,
	} {
		f.Add(base64.StdEncoding.EncodeToString([]byte(doc)))
	}
	f.Add("not base64!")
	f.Fuzz(func(t *testing.T, b64 string) {
		g := Grant{Bucket: "mybucket", Prefix: "myprefix/x", Signature: "sig", Secret: "secret", Now: vectorTime}
		if _, err := CheckPolicy(b64, g); err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("CheckPolicy error %v is not a *PolicyError with problems", err)
			}
		}
		p, err := ParsePolicy(b64)
		if err != nil {
			return
		}
		back, err := ParsePolicy(p.Encode())
		if err != nil {
			t.Fatalf("re-encoded policy %s does not parse: %v", p.JSON(), err)
		}
		if !back.Expiration.Equal(p.Expiration.Truncate(time.Second)) || fmt.Sprint(back.Conditions) != fmt.Sprint(p.Conditions) {
			t.Fatalf("round trip changed the policy:\n%+v\n%+v", p, back)
		}
	})
}

// seedManifest is a manifest as diskport writes it, signed by userKey,
// built without bundling anything.
func seedManifest(f *testing.F) []byte {
	m := &Manifest{Version: ManifestVersion, Bundler: DefaultBundler}
	m.MachineConfiguration = MachineConfiguration{Architecture: "x86_64", BlockDeviceMapping: []Mapping{{"ami", "sda1"}}, ProductCodes: []string{"PC1"}}
	m.Image = ImageInfo{Name: "seed", User: "123456789012", Type: "machine", Size: 1536, BundledSize: 48,
		Digest:          Digest{"SHA1", strings.Repeat("ab", 20)},
		EC2EncryptedKey: EncryptedKey{"AES-128-CBC", "0a0b"}, UserEncryptedKey: EncryptedKey{"AES-128-CBC", ""},
		EC2EncryptedIV: "0c0d",
		Parts:          Parts{Count: 1, Part: []Part{{Index: 0, Filename: "seed.part.00", Digest: Digest{"SHA1", strings.Repeat("cd", 20)}}}}}
	if err := m.Sign(userKey()); err != nil {
		f.Fatal(err)
	}
	return m.Marshal()
}

// FuzzReadManifest: any manifest bytes are read or refused with a typed
// error, never a panic; an accepted manifest has contiguous part indexes,
// plain part names, and its signed text is part of the document.
func FuzzReadManifest(f *testing.F) {
	good := seedManifest(f)
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`count="1"`), []byte(`count="2"`), 1))
	f.Add(bytes.Replace(good, []byte("<filename>seed"), []byte("<filename>../seed"), 1))
	f.Add(bytes.Replace(good, []byte("2007-10-10"), []byte("2010-11-15"), 1))
	f.Add([]byte(`<manifest><version>2007-10-10</version><machine_configuration/><image><digest algorithm="SHA1">0000000000000000000000000000000000000000</digest><parts count="1"><part index="0"><filename>a</filename><digest algorithm="SHA1">0000000000000000000000000000000000000000</digest></part></parts></image></manifest>`))
	f.Add([]byte(`<manifest><image></image><image></image></manifest>`))
	f.Add([]byte(`<!DOCTYPE manifest [<!ENTITY a "aaaa">]><manifest>&a;</manifest>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadManifest(data)
		if err != nil {
			var de *disk.Error
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a *disk.Error", err)
			}
			return
		}
		for i, p := range m.Image.Parts.Part {
			if p.Index != i || checkPartName(p.Filename) != nil {
				t.Fatalf("accepted part %d: %+v", i, p)
			}
		}
		if !bytes.Contains(data, m.SignedText()[:len("<machine_configuration")]) {
			t.Fatalf("signed text %q not from the document", m.SignedText())
		}
		_ = m.Verify
	})
}

// memSource is a Source over a map.
type memSource map[string][]byte

func (s memSource) Get(ctx context.Context, name string, limit int64) ([]byte, error) {
	b, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("%s: not found", name)
	}
	if int64(len(b)) > limit {
		return nil, disk.Errorf("bundle", disk.ErrTooLarge, "%s over %d", name, limit)
	}
	return b, nil
}

// fuzzVolume is what the tar stream of FuzzExtract's seeds holds.
var fuzzVolume = bytes.Repeat([]byte("volume!\x00"), 512)

// FuzzExtract feeds arbitrary "gzip" bytes through the unbundle pipeline:
// they are encrypted with a known key into one part whose digest matches,
// so the fuzzer reaches the gunzip and tar readers. The volume written is
// bounded by the manifest's size; errors are errors, never panics.
func FuzzExtract(f *testing.F) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "v", Size: int64(len(fuzzVolume)), Mode: 0o644, Format: tar.FormatGNU})
	tw.Write(fuzzVolume)
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	good := gz.Bytes()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255})
	sum := sha1.Sum(tarBuf.Bytes())
	tarDigest := hex.EncodeToString(sum[:])
	key, iv := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	f.Fuzz(func(t *testing.T, stream []byte) {
		var ct bytes.Buffer
		w, _ := newCBCWriter(&ct, key, iv)
		w.Write(stream)
		w.Close()
		psum := sha1.Sum(ct.Bytes())
		m := &Manifest{Version: ManifestVersion}
		m.Image.Size = int64(len(fuzzVolume))
		m.Image.BundledSize = int64(ct.Len())
		m.Image.Digest = Digest{Algorithm: "SHA1", Hex: tarDigest}
		m.Image.Parts = Parts{Count: 1, Part: []Part{{Filename: "p", Digest: Digest{Algorithm: "SHA1", Hex: hex.EncodeToString(psum[:])}}}}
		r := &Reader{Manifest: m, src: memSource{"p": ct.Bytes()}, key: key, iv: iv, opt: ReadOptions{MaxPartSize: DefaultMaxPartSize}}
		out := &boundedWriter{limit: int64(len(fuzzVolume))}
		// Extract runs goroutines (fetching, decrypting and gunzipping
		// ahead): an input that wedges them must fail here, where the
		// fuzzer keeps it, not hang the worker until the run's end.
		done := make(chan error, 1)
		go func() { done <- r.Extract(context.Background(), out) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Extract of a %d-byte stream did not return in 10s", len(stream))
		}
		if bytes.Equal(stream, good) && err != nil {
			t.Fatalf("the intact stream was refused: %v", err)
		}
		if err == nil && !bytes.Equal(out.buf[:len(fuzzVolume)], fuzzVolume) {
			t.Fatalf("accepted a stream whose volume differs from the digest-checked one")
		}
		if err != nil && !errors.Is(err, disk.ErrCorrupt) && !strings.Contains(err.Error(), "gzip") && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Logf("error: %v", err)
		}
	})
}

// boundedWriter is an io.WriterAt that fails writes past limit.
type boundedWriter struct {
	limit int64
	buf   []byte
}

func (b *boundedWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > b.limit {
		return 0, fmt.Errorf("write [%d, %d) past the volume", off, off+int64(len(p)))
	}
	if need := int(off) + len(p); need > len(b.buf) {
		b.buf = append(b.buf, make([]byte, need-len(b.buf))...)
	}
	copy(b.buf[off:], p)
	return len(p), nil
}
