package bundle

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEuca2oolsManifest reads a manifest in euca2ools' shape (ec2.md §4.2:
// declaration with encoding='ASCII', product_codes before kernel_id, no
// user key so user_encrypted_* are empty, signature over its own
// serialization) pointing at parts diskport cut, and unbundles it with the
// EC2 key.
func TestEuca2oolsManifest(t *testing.T) {
	vol := testData(700<<10, 5)
	opt := testOptions("img.raw")
	opt.PartSize = 128 << 10
	dir, m := bundleToDir(t, memImage(t, vol), opt)
	key, iv, err := m.DecryptKey(userKey())
	if err != nil {
		t.Fatal(err)
	}
	enc := func(b []byte) string {
		//lint:ignore SA1019 the format's own padding.
		ct, err := rsa.EncryptPKCS1v15(nil, &ec2Key().PublicKey, []byte(hex.EncodeToString(b)))
		if err != nil {
			t.Fatal(err)
		}
		return hex.EncodeToString(ct)
	}
	var parts strings.Builder
	for _, p := range m.Image.Parts.Part {
		fmt.Fprintf(&parts, `<part index="%d"><filename>%s</filename><digest algorithm="SHA1">%s</digest></part>`, p.Index, p.Filename, p.Digest.Hex)
	}
	mc := `<machine_configuration><architecture>x86_64</architecture><block_device_mapping><mapping><virtual>ami</virtual><device>sda1</device></mapping><mapping><virtual>root</virtual><device>/dev/sda1</device></mapping></block_device_mapping><product_codes><product_code>PC1</product_code></product_codes><kernel_id>eki-1</kernel_id><ramdisk_id>eri-1</ramdisk_id></machine_configuration>`
	im := fmt.Sprintf(`<image><name>img.raw</name><user>123456789012</user><type>machine</type><digest algorithm="SHA1">%s</digest><size>%d</size><bundled_size>%d</bundled_size><ec2_encrypted_key algorithm="AES-128-CBC">%s</ec2_encrypted_key><user_encrypted_key algorithm="AES-128-CBC"></user_encrypted_key><ec2_encrypted_iv>%s</ec2_encrypted_iv><user_encrypted_iv></user_encrypted_iv><parts count="%d">%s</parts></image>`,
		m.Image.Digest.Hex, m.Image.Size, m.Image.BundledSize, enc(key), enc(iv), len(m.Image.Parts.Part), parts.String())
	h := sha1.Sum([]byte(mc + im))
	sig, err := rsa.SignPKCS1v15(nil, userKey(), crypto.SHA1, h[:])
	if err != nil {
		t.Fatal(err)
	}
	doc := "<?xml version='1.0' encoding='ASCII'?>\n<manifest><version>2007-10-10</version><bundler><name>euca2ools</name><version>3.4.1</version><release>0</release></bundler>" +
		mc + im + "<signature>" + hex.EncodeToString(sig) + "</signature></manifest>\n"
	if err := os.WriteFile(filepath.Join(string(dir), "euca.manifest.xml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	rm, err := ReadManifest([]byte(doc))
	if err != nil {
		t.Fatalf("ReadManifest: %v", err)
	}
	if rm.MachineConfiguration.KernelID != "eki-1" || len(rm.MachineConfiguration.ProductCodes) != 1 || rm.Image.UserEncryptedKey.Hex != "" {
		t.Errorf("read %+v", rm.MachineConfiguration)
	}
	got := unbundleToFile(t, dir, "euca.manifest.xml", ReadOptions{Key: ec2Key(), Signer: &userKey().PublicKey})
	b, _ := os.ReadFile(got)
	if string(b) != string(vol) {
		t.Fatal("euca2ools-shaped bundle restored different bytes")
	}
	// The user key finds no copy for itself and says so.
	if _, err := Open(context.Background(), dir, "euca.manifest.xml", ReadOptions{Key: userKey()}); err == nil || !strings.Contains(err.Error(), "ec2_encrypted_key does not decrypt") {
		t.Errorf("Open with the user key = %v", err)
	}
}
