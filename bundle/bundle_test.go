package bundle

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/raw"
)

// testKeys are the EC2 and user key pairs the tests bundle with
// (testdata/README.md).
var testKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var k [2]*rsa.PrivateKey
	for i, name := range []string{"testdata/ec2-key.pem", "testdata/user-key.pem"} {
		b, err := os.ReadFile(name)
		if err != nil {
			panic(err)
		}
		if k[i], err = ParsePrivateKeyPEM(b); err != nil {
			panic(err)
		}
	}
	return k
})

func ec2Key() *rsa.PrivateKey  { return testKeys()[0] }
func userKey() *rsa.PrivateKey { return testKeys()[1] }

// writePEM writes the private key (PKCS#1) and a self-signed certificate
// for it into dir, returning their paths.
func writePEM(t testing.TB, dir, name string, k *rsa.PrivateKey) (keyPath, certPath string) {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	keyPath, certPath = filepath.Join(dir, name+"-key.pem"), filepath.Join(dir, name+"-cert.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return keyPath, certPath
}

// openRaw opens a raw volume file as a disk.Image.
func openRaw(t testing.TB, path string) disk.Image {
	t.Helper()
	img, err := raw.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func memImage(t testing.TB, b []byte) disk.Image {
	t.Helper()
	img, err := raw.Open(disk.NewMemStorage("mem", b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func testOptions(prefix string) Options {
	return Options{
		Prefix: prefix, User: "1234-5678-9012", EC2Key: &ec2Key().PublicKey, UserKey: &userKey().PublicKey,
		SignKey: userKey(), ModTime: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC),
		BlockDeviceMapping: []Mapping{{"ami", "sda1"}, {"root", "/dev/sda1"}},
	}
}

// bundleToDir bundles img into a new directory and returns it and the
// manifest.
func bundleToDir(t testing.TB, img disk.Image, opt Options) (Dir, *Manifest) {
	t.Helper()
	dir := Dir(t.TempDir())
	m, err := Write(context.Background(), img, dir, opt)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return dir, m
}

// unbundleToFile restores the bundle into a new file and returns its path.
func unbundleToFile(t testing.TB, src Source, name string, opt ReadOptions) string {
	t.Helper()
	r, err := Open(context.Background(), src, name, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	out := filepath.Join(t.TempDir(), "restored.raw")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := r.Extract(context.Background(), f); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return out
}

func sameFile(t testing.TB, got, want string) {
	t.Helper()
	a, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		n := min(len(a), len(b))
		i := 0
		for i < n && a[i] == b[i] {
			i++
		}
		t.Fatalf("%s differs from %s: sizes %d and %d, first difference at byte %d", got, want, len(a), len(b), i)
	}
}

func TestRoundTripDir(t *testing.T) {
	for _, tc := range []struct {
		name     string
		size     int64
		partSize int64
		user     bool
	}{
		{"small one part", 64<<10 + 512, 0, true},
		{"several parts", 6<<20 + 3*512, 1 << 20, true},
		{"ec2 key only", 1 << 20, 256 << 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			golden := testimg.Golden(t, testimg.Spec{Size: tc.size, Seed: 7})
			opt := testOptions("vol/img")
			opt.Prefix = "img"
			opt.PartSize = tc.partSize
			if !tc.user {
				opt.UserKey = nil
			}
			dir, m := bundleToDir(t, openRaw(t, golden), opt)
			checkStoredManifest(t, dir, m, opt)
			key := userKey()
			if !tc.user {
				key = ec2Key()
			}
			got := unbundleToFile(t, dir, ManifestName("img"), ReadOptions{Key: key, Signer: &userKey().PublicKey})
			sameFile(t, got, golden)
		})
	}
}

// checkStoredManifest checks the manifest in dir against m and the part
// files against their digests and sizes.
func checkStoredManifest(t testing.TB, dir Dir, m *Manifest, opt Options) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(string(dir), ManifestName(opt.Prefix)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, m.Marshal()) {
		t.Errorf("stored manifest differs from the returned one")
	}
	rm, err := ReadManifest(data)
	if err != nil {
		t.Fatalf("ReadManifest: %v", err)
	}
	if err := rm.Verify(&userKey().PublicKey); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if rm.Image.User != "123456789012" || rm.Image.Type != "machine" || rm.Image.Name != "img" || rm.MachineConfiguration.Architecture != "x86_64" {
		t.Errorf("manifest image %+v", rm.Image)
	}
	var total int64
	for i, p := range rm.Image.Parts.Part {
		if want := PartName(opt.Prefix, i); p.Filename != want {
			t.Errorf("part %d named %q, want %q", i, p.Filename, want)
		}
		b, err := os.ReadFile(filepath.Join(string(dir), p.Filename))
		if err != nil {
			t.Fatal(err)
		}
		ps := opt.PartSize
		if ps == 0 {
			ps = DefaultPartSize
		}
		if i < len(rm.Image.Parts.Part)-1 && int64(len(b)) != ps || len(b) == 0 || int64(len(b)) > ps {
			t.Errorf("part %d is %d bytes (part size %d)", i, len(b), ps)
		}
		sum := sha1.Sum(b)
		if hex.EncodeToString(sum[:]) != p.Digest.Hex {
			t.Errorf("part %d digest %s, file SHA-1 %x", i, p.Digest.Hex, sum)
		}
		total += int64(len(b))
	}
	if total != rm.Image.BundledSize || total%16 != 0 {
		t.Errorf("parts hold %d bytes, bundled_size %d", total, rm.Image.BundledSize)
	}
	entries, _ := os.ReadDir(string(dir))
	if len(entries) != len(rm.Image.Parts.Part)+1 {
		t.Errorf("directory holds %d files, want %d parts and the manifest", len(entries), len(rm.Image.Parts.Part))
	}
}

func TestManifestShape(t *testing.T) {
	opt := testOptions("img")
	opt.KernelID, opt.RamdiskID, opt.ProductCodes = "aki-1", "ari-1", []string{"PC1"}
	_, m := bundleToDir(t, memImage(t, bytes.Repeat([]byte("bundle "), 1000)), opt)
	doc := string(m.Marshal())
	for _, want := range []string{
		"<?xml version='1.0'?><manifest><version>2007-10-10</version><bundler><name>diskport</name>",
		"<machine_configuration><architecture>x86_64</architecture><block_device_mapping><mapping><virtual>ami</virtual><device>sda1</device></mapping><mapping><virtual>root</virtual><device>/dev/sda1</device></mapping></block_device_mapping><kernel_id>aki-1</kernel_id><ramdisk_id>ari-1</ramdisk_id><product_codes><product_code>PC1</product_code></product_codes></machine_configuration>",
		"<image><name>img</name><user>123456789012</user><type>machine</type><digest algorithm=\"SHA1\">",
		"</digest><size>7168</size><bundled_size>",
		"<ec2_encrypted_key algorithm=\"AES-128-CBC\">",
		"<parts count=\"1\"><part index=\"0\"><filename>img.part.00</filename><digest algorithm=\"SHA1\">",
		"</parts></image><signature>",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("manifest lacks %q:\n%s", want, doc)
		}
	}
	if !bytes.Contains(m.Marshal(), m.SignedText()) || !bytes.HasPrefix(m.SignedText(), []byte("<machine_configuration>")) || !bytes.HasSuffix(m.SignedText(), []byte("</image>")) {
		t.Errorf("signed text is not the manifest's machine_configuration and image:\n%s", m.SignedText())
	}
}

func TestUnbundleRefuses(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 3 << 20, Seed: 3})
	opt := testOptions("img")
	opt.PartSize = 256 << 10
	dir, m := bundleToDir(t, openRaw(t, golden), opt)
	if len(m.Image.Parts.Part) < 2 {
		t.Fatalf("bundle has %d parts, want several", len(m.Image.Parts.Part))
	}
	ropt := ReadOptions{Key: userKey()}
	extract := func(d Dir, o ReadOptions) error {
		r, err := Open(context.Background(), d, ManifestName("img"), o)
		if err != nil {
			return err
		}
		var buf discardAt
		return r.Extract(context.Background(), &buf)
	}
	if err := extract(dir, ropt); err != nil {
		t.Fatalf("intact bundle: %v", err)
	}
	copyDir := func() Dir {
		d := t.TempDir()
		entries, _ := os.ReadDir(string(dir))
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(string(dir), e.Name()))
			os.WriteFile(filepath.Join(d, e.Name()), b, 0o644)
		}
		return Dir(d)
	}
	edit := func(d Dir, name string, f func([]byte) []byte) {
		p := filepath.Join(string(d), name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest := ManifestName("img")
	tests := []struct {
		name  string
		setup func(d Dir) ReadOptions
		class error
		want  string
	}{
		{"flipped byte in a part", func(d Dir) ReadOptions {
			edit(d, "img.part.01", func(b []byte) []byte { b[100] ^= 1; return b })
			return ropt
		}, disk.ErrCorrupt, "part 1 img.part.01: SHA-1"},
		{"missing part", func(d Dir) ReadOptions {
			os.Remove(filepath.Join(string(d), m.Image.Parts.Part[len(m.Image.Parts.Part)-1].Filename))
			return ropt
		}, nil, "no such file"},
		{"edited manifest", func(d Dir) ReadOptions {
			edit(d, manifest, func(b []byte) []byte {
				return bytes.Replace(b, []byte("<type>machine</type>"), []byte("<type>kernel</type>"), 1)
			})
			return ropt
		}, disk.ErrCorrupt, "signature does not verify"},
		{"wrong signer", func(d Dir) ReadOptions {
			return ReadOptions{Key: userKey(), Signer: &ec2Key().PublicKey}
		}, disk.ErrCorrupt, "signature does not verify"},
		{"unsigned", func(d Dir) ReadOptions {
			edit(d, manifest, func(b []byte) []byte {
				return append(b[:bytes.Index(b, []byte("<signature>"))], "<signature>UNSIGNED</signature></manifest>"...)
			})
			return ropt
		}, disk.ErrUnsafe, "UNSIGNED"},
		{"wrong private key", func(d Dir) ReadOptions {
			other, _ := rsa.GenerateKey(rand.Reader, 1024)
			return ReadOptions{Key: other, Signer: &userKey().PublicKey}
		}, disk.ErrUnsafe, "cannot decrypt the bundle key"},
		{"escaping part name", func(d Dir) ReadOptions {
			edit(d, manifest, func(b []byte) []byte {
				return bytes.Replace(b, []byte("<filename>img.part.00"), []byte("<filename>../img.part.00"), 1)
			})
			return ropt
		}, disk.ErrUnsafe, "not a plain file name"},
		{"digest mismatch in the manifest", func(d Dir) ReadOptions {
			m2, _ := ReadManifest(m.Marshal())
			m2.Image.Digest.Hex = strings.Repeat("0", 40)
			m2.signed = nil
			m2.Sign(userKey())
			os.WriteFile(filepath.Join(string(d), manifest), m2.Marshal(), 0o644)
			return ropt
		}, disk.ErrCorrupt, "tar stream SHA-1"},
		{"size mismatch in the manifest", func(d Dir) ReadOptions {
			m2, _ := ReadManifest(m.Marshal())
			m2.Image.Size++
			m2.signed = nil
			m2.Sign(userKey())
			os.WriteFile(filepath.Join(string(d), manifest), m2.Marshal(), 0o644)
			return ropt
		}, disk.ErrCorrupt, "manifest says"},
		{"too large", func(d Dir) ReadOptions {
			o := ropt
			o.MaxSize = 1 << 20
			return o
		}, disk.ErrTooLarge, "over the limit"},
		{"part over the part limit", func(d Dir) ReadOptions {
			o := ropt
			o.MaxPartSize = 1000
			return o
		}, disk.ErrTooLarge, "over the 1000-byte limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir()
			err := extract(d, tc.setup(d))
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.class != nil && !errors.Is(err, tc.class) {
				t.Errorf("error %v is not %v", err, tc.class)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
	// An UNSIGNED manifest is accepted when asked to.
	d := copyDir()
	opt.SignKey = nil
	if _, err := Write(context.Background(), openRaw(t, golden), d, opt); err != nil {
		t.Fatal(err)
	}
	if err := extract(d, ReadOptions{Key: userKey(), AllowUnsigned: true}); err != nil {
		t.Errorf("unsigned bundle with AllowUnsigned: %v", err)
	}
}

// discardAt is an io.WriterAt that keeps nothing.
type discardAt struct{}

func (discardAt) WriteAt(p []byte, off int64) (int, error) { return len(p), nil }

// failSink fails the Put of one part.
type failSink struct {
	Dir
	fail string
}

func (f failSink) Put(ctx context.Context, name string, data []byte) error {
	if name == f.fail {
		return errors.New("disk full")
	}
	return f.Dir.Put(ctx, name, data)
}

func TestWriteErrors(t *testing.T) {
	opt := testOptions("img")
	opt.PartSize = 64 << 10
	opt.Level = 1
	// Zeros compress to almost nothing: make the parts fill with random data.
	b := make([]byte, 4<<20)
	rand.Read(b)
	img := memImage(t, b)
	_, err := Write(context.Background(), img, failSink{Dir(t.TempDir()), "img.part.03"}, opt)
	if err == nil || !strings.Contains(err.Error(), "storing img.part.03: disk full") {
		t.Errorf("Write with a failing sink = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Write(ctx, img, Dir(t.TempDir()), opt); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled context = %v", err)
	}
	opt.EC2Key = nil
	if _, err := Write(context.Background(), img, Dir(t.TempDir()), opt); err == nil {
		t.Errorf("Write without an EC2 key succeeded")
	}
}

func TestReadManifestRefuses(t *testing.T) {
	opt := testOptions("img")
	_, m := bundleToDir(t, memImage(t, bytes.Repeat([]byte("manifest "), 500)), opt)
	good := string(m.Marshal())
	if _, err := ReadManifest([]byte(good)); err != nil {
		t.Fatal(err)
	}
	part := `<part index="0"><filename>img.part.00</filename>`
	tests := []struct {
		name, doc string
		class     error
		want      string
	}{
		{"not xml", "<manifest><version>", disk.ErrCorrupt, "not valid XML"},
		{"other root", "<import/>", disk.ErrCorrupt, "root element is <import>"},
		{"import manifest", strings.Replace(good, "2007-10-10", "2010-11-15", 1), disk.ErrUnsupported, `version "2010-11-15"`},
		{"no image", strings.Replace(strings.Replace(good, "<image>", "<img>", 1), "</image>", "</img>", 1), disk.ErrCorrupt, "lacks its machine_configuration or image"},
		{"two images", strings.Replace(good, "<signature>", "<image></image><signature>", 1), disk.ErrCorrupt, "two image elements"},
		{"count mismatch", strings.Replace(good, `count="1"`, `count="2"`, 1), disk.ErrCorrupt, "count=2 but lists 1"},
		{"no parts", good[:strings.Index(good, part)] + good[strings.Index(good, "</parts>"):], disk.ErrCorrupt, "lists no parts"},
		{"index gap", strings.Replace(good, `<part index="0">`, `<part index="1">`, 1), disk.ErrCorrupt, "indexes are not 0..0"},
		{"escaping name", strings.Replace(good, "<filename>img.part.00", "<filename>../../etc/passwd", 1), disk.ErrUnsafe, "not a plain file name"},
		{"absolute name", strings.Replace(good, "<filename>img.part.00", "<filename>/etc/passwd", 1), disk.ErrUnsafe, "not a plain file name"},
		{"md5 digest", strings.Replace(good, `<digest algorithm="SHA1">`, `<digest algorithm="MD5">`, 1), disk.ErrUnsupported, `algorithm "MD5"`},
		{"short digest", strings.Replace(good, m.Image.Digest.Hex, "abcd", 1), disk.ErrCorrupt, "not 40 hex digits"},
		{"non-hex key", strings.Replace(good, m.Image.EC2EncryptedIV, "zz"+m.Image.EC2EncryptedIV[2:], 1), disk.ErrCorrupt, "ec2_encrypted_iv is not hex"},
		{"negative size", strings.Replace(good, "<size>4608</size>", "<size>-1</size>", 1), disk.ErrCorrupt, "negative"},
		{"too large", good + strings.Repeat(" ", MaxManifestSize), disk.ErrTooLarge, "over the"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.doc == good {
				t.Fatal("the edit did not apply")
			}
			_, err := ReadManifest([]byte(tc.doc))
			if !errors.Is(err, tc.class) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadManifest = %v, want %v saying %q", err, tc.class, tc.want)
			}
		})
	}
}
