package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mrand "math/rand/v2"

	"github.com/diskport/diskport/internal/testimg"
)

// These tests check the bundle format against tools nobody here wrote:
// openssl, gzip and GNU tar (Debian packages openssl, gzip, tar).

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"openssl", "gzip", "tar", "split", "od"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for the cross-check (Debian packages openssl, gzip, tar, coreutils): %v", tool, err)
		}
	}
}

func sh(t *testing.T, dir, script string, env ...string) string {
	t.Helper()
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s\n%v\n%s", script, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// TestOpenSSLUnbundles decrypts a bundle diskport made with openssl, gunzip
// and tar, and gets the volume back; openssl also verifies the manifest
// signature and the tar digest.
func TestOpenSSLUnbundles(t *testing.T) {
	needTools(t)
	golden := testimg.Golden(t, testimg.Spec{Size: 3<<20 + 7*512, Seed: 11})
	work := t.TempDir()
	userKeyPEM, _ := writePEM(t, work, "user", userKey())
	ec2KeyPEM, _ := writePEM(t, work, "ec2", ec2Key())
	opt := testOptions("vol")
	opt.PartSize = 256 << 10
	dir, m := bundleToDir(t, openRaw(t, golden), opt)
	if len(m.Image.Parts.Part) < 2 {
		t.Fatalf("want several parts, got %d", len(m.Image.Parts.Part))
	}
	var parts []string
	for _, p := range m.Image.Parts.Part {
		parts = append(parts, filepath.Join(string(dir), p.Filename))
	}
	os.WriteFile(filepath.Join(work, "signed.txt"), m.SignedText(), 0o644)
	sig, _ := hex.DecodeString(m.Signature)
	os.WriteFile(filepath.Join(work, "sig.bin"), sig, 0o644)
	for i, kv := range []struct{ name, keyPEM, key, iv string }{
		{"user", userKeyPEM, m.Image.UserEncryptedKey.Hex, m.Image.UserEncryptedIV},
		{"ec2", ec2KeyPEM, m.Image.EC2EncryptedKey.Hex, m.Image.EC2EncryptedIV},
	} {
		env := []string{"KEYPEM=" + kv.keyPEM, "EKEY=" + kv.key, "EIV=" + kv.iv, "PARTS=" + strings.Join(parts, " "), "NAME=" + m.Image.Name}
		// openssl rsautl's replacement: decrypt the hex key and IV.
		for name, h := range map[string]string{"k.bin": kv.key, "iv.bin": kv.iv} {
			b, err := hex.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(work, name), b, 0o600)
		}
		keyhex := sh(t, work, `openssl pkeyutl -decrypt -inkey "$KEYPEM" -pkeyopt rsa_padding_mode:pkcs1 -in k.bin`, env...)
		ivhex := sh(t, work, `openssl pkeyutl -decrypt -inkey "$KEYPEM" -pkeyopt rsa_padding_mode:pkcs1 -in iv.bin`, env...)
		if len(keyhex) != 32 || len(ivhex) != 32 {
			t.Fatalf("%s: openssl decrypted key %q iv %q, want 32 hex digits each", kv.name, keyhex, ivhex)
		}
		env = append(env, "K="+keyhex, "IV="+ivhex)
		out := filepath.Join(work, kv.name)
		os.Mkdir(out, 0o755)
		// The ec2-bundle-image pipeline in reverse.
		tarSum := sh(t, work, `cat $PARTS | openssl enc -d -aes-128-cbc -K "$K" -iv "$IV" | gunzip > stream.tar
openssl sha1 -r < stream.tar | cut -d' ' -f1
tar -xf stream.tar -C `+kv.name, env...)
		if tarSum != m.Image.Digest.Hex {
			t.Errorf("%s: openssl SHA-1 of the tar stream %s, manifest digest %s", kv.name, tarSum, m.Image.Digest.Hex)
		}
		sameFile(t, filepath.Join(out, m.Image.Name), golden)
		if i == 0 {
			pub := sh(t, work, `openssl rsa -in "$KEYPEM" -pubout -out pub.pem 2>/dev/null && openssl dgst -sha1 -verify pub.pem -signature sig.bin signed.txt`, env...)
			if pub != "Verified OK" {
				t.Errorf("openssl dgst -verify of the manifest signature: %q", pub)
			}
		}
	}
	// gzip itself accepts the parallel gzip stream.
	sh(t, work, `gzip -t < <(cat $PARTS | openssl enc -d -aes-128-cbc -K "$K" -iv "$IV")`,
		"PARTS="+strings.Join(parts, " "), "K="+hexKey(t, m), "IV="+hexIV(t, m))
}

func hexKey(t *testing.T, m *Manifest) string {
	k, _, err := m.DecryptKey(userKey())
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(k)
}

func hexIV(t *testing.T, m *Manifest) string {
	_, iv, err := m.DecryptKey(userKey())
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(iv)
}

// shellBundle is ec2-bundle-image's pipeline (ec2.md §4.1) and a manifest
// written by hand with openssl doing the RSA work: nothing of diskport's.
const shellBundle = `
K=$(openssl rand -hex 16); IV=$(openssl rand -hex 16)
tohex() { od -An -v -tx1 | tr -d ' \n'; }
mkfifo digest-pipe
openssl sha1 -r < digest-pipe | cut -d' ' -f1 > tar.sha1 &
tar -c -h -S --owner 0 --group 0 -C src "$NAME" | tee digest-pipe | gzip -9 | openssl enc -e -aes-128-cbc -K "$K" -iv "$IV" > "$NAME.tar.gz.enc"
wait
split -b 10485760 -d -a 2 "$NAME.tar.gz.enc" out/"$NAME.part."
enc() { printf '%s' "$1" | openssl pkeyutl -encrypt -certin -inkey "$2" -pkeyopt rsa_padding_mode:pkcs1 | tohex; }
PARTS=""; N=0
for p in out/"$NAME".part.*; do
  PARTS="$PARTS<part index=\"$N\"><filename>$(basename "$p")</filename><digest algorithm=\"SHA1\">$(openssl sha1 -r < "$p" | cut -d' ' -f1)</digest></part>"
  N=$((N+1))
done
MC="<machine_configuration><architecture>x86_64</architecture><block_device_mapping><mapping><virtual>ami</virtual><device>sda1</device></mapping></block_device_mapping></machine_configuration>"
IMG="<image><name>$NAME</name><user>123456789012</user><type>machine</type><digest algorithm=\"SHA1\">$(cat tar.sha1)</digest><size>$(stat -c %s src/"$NAME")</size><bundled_size>$(stat -c %s "$NAME.tar.gz.enc")</bundled_size><ec2_encrypted_key algorithm=\"AES-128-CBC\">$(enc "$K" "$EC2CERT")</ec2_encrypted_key><user_encrypted_key algorithm=\"AES-128-CBC\">$(enc "$K" "$USERCERT")</user_encrypted_key><ec2_encrypted_iv>$(enc "$IV" "$EC2CERT")</ec2_encrypted_iv><user_encrypted_iv>$(enc "$IV" "$USERCERT")</user_encrypted_iv><parts count=\"$N\">$PARTS</parts></image>"
SIG=$(printf '%s' "$MC$IMG" | openssl dgst -sha1 -sign "$USERKEY" | tohex)
printf "<?xml version='1.0'?><manifest><version>2007-10-10</version><bundler><name>ec2-ami-tools</name><version>1.5</version><release>7</release></bundler>%s%s<signature>%s</signature></manifest>" "$MC" "$IMG" "$SIG" > out/"$NAME".manifest.xml
`

// TestShellBundleUnbundles unbundles with diskport a bundle made by
// openssl, gzip -9 and GNU tar -S (a sparse member).
func TestShellBundleUnbundles(t *testing.T) {
	needTools(t)
	work := t.TempDir()
	userKeyPEM, userCert := writePEM(t, work, "user", userKey())
	_, ec2Cert := writePEM(t, work, "ec2", ec2Key())
	os.Mkdir(filepath.Join(work, "src"), 0o755)
	os.Mkdir(filepath.Join(work, "out"), 0o755)
	// 10.5 MiB of incompressible data (two parts) and a 3 MiB hole (sparse in tar -S).
	b := make([]byte, 21<<19)
	mrand.NewChaCha8([32]byte{5}).Read(b)
	vol := filepath.Join(work, "src", "disk.img")
	f, _ := os.Create(vol)
	f.WriteAt(b[:6<<20], 0)
	f.WriteAt(b[6<<20:], 9<<20)
	f.Close()
	sh(t, work, shellBundle, "NAME=disk.img", "EC2CERT="+ec2Cert, "USERCERT="+userCert, "USERKEY="+userKeyPEM)
	// tar -S made a GNU sparse member (type 'S') of the file with a hole.
	sh(t, work, `(tar -c -h -S --owner 0 --group 0 -C src disk.img | head -c 512 > hdr.bin) || true`)
	if hdr, _ := os.ReadFile(filepath.Join(work, "hdr.bin")); len(hdr) != 512 || hdr[156] != 'S' {
		t.Errorf("tar -S did not write a sparse member (%d-byte header)", len(hdr))
	}
	parts, _ := filepath.Glob(filepath.Join(work, "out", "disk.img.part.*"))
	if len(parts) < 2 {
		t.Fatalf("shell bundle has %d parts, want 2 or more", len(parts))
	}
	for _, key := range []struct {
		name string
		opt  ReadOptions
	}{
		{"user key", ReadOptions{Key: userKey()}},
		{"ec2 key, user cert verifies", ReadOptions{Key: ec2Key(), Signer: &userKey().PublicKey}},
	} {
		t.Run(key.name, func(t *testing.T) {
			got := unbundleToFile(t, Dir(filepath.Join(work, "out")), "disk.img.manifest.xml", key.opt)
			sameFile(t, got, vol)
		})
	}
	// The tar digest diskport checks is the shell's own.
	data, _ := os.ReadFile(filepath.Join(work, "out", "disk.img.manifest.xml"))
	m, err := ReadManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	tarSum, _ := os.ReadFile(filepath.Join(work, "tar.sha1"))
	if m.Image.Digest.Hex != strings.TrimSpace(string(tarSum)) {
		t.Errorf("manifest digest %s, shell SHA-1 %s", m.Image.Digest.Hex, tarSum)
	}
	if _, err := Open(context.Background(), Dir(filepath.Join(work, "out")), "disk.img.manifest.xml", ReadOptions{Key: ec2Key()}); err == nil {
		t.Errorf("the EC2 key verified a signature made by the user key")
	}
}

// TestLargeVolumeHeader: the tar header of a volume over 8 GiB (base-256
// size) is read back by GNU tar and by archive/tar.
func TestLargeVolumeHeader(t *testing.T) {
	needTools(t)
	const size = 9 << 30
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(volumeHeader("big.img", size, time.Unix(1700000000, 0))); err != nil {
		t.Fatal(err)
	}
	hdr, err := tar.NewReader(bytes.NewReader(b.Bytes())).Next()
	if err != nil || hdr.Size != size || hdr.Name != "big.img" {
		t.Fatalf("archive/tar read %+v, %v", hdr, err)
	}
	p := filepath.Join(t.TempDir(), "h.tar")
	os.WriteFile(p, b.Bytes(), 0o644)
	// GNU tar lists the member, then stops at the missing data.
	out, _ := exec.Command("tar", "-tvf", p).Output()
	if !strings.Contains(string(out), "root/root 9663676416 ") || !strings.Contains(string(out), "big.img") {
		t.Errorf("tar -tv: %q", out)
	}
}
