package ova_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/ova"
)

// signer returns a .cert maker as ovftool writes one: the signature line
// over the .mf, then the PEM certificate of a fresh key.
func signer(t *testing.T, key crypto.Signer, tamper bool) func([]byte) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "appliance signer"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return func(mf []byte) []byte {
		d := sha256.Sum256(mf)
		sig, err := key.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if tamper {
			sig[len(sig)/2] ^= 1
		}
		return fmt.Appendf(nil, "SHA256(appliance.mf)= %x\n%s", sig, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
}

// A .cert's signature over the .mf is checked (RSA and ECDSA); a bad one
// refuses the appliance. Small files the .mf lists besides the disks are
// checked on open.
func TestCertAndOtherMembers(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(p, make([]byte, 8192), 0o644)
	spec := func(cert func([]byte) []byte, extra []testimg.OVAMember) testimg.OVASpec {
		return testimg.OVASpec{Version: 1, Alg: "SHA256", Files: map[string]string{"disk.img": p}, Cert: cert, Extra: extra,
			Disks: []testimg.OVADisk{{ID: "d", File: "disk.img", Format: testimg.URIRaw, Capacity: "8192"}}}
	}
	for name, key := range map[string]crypto.Signer{"rsa": rsaKey, "ecdsa": ecKey} {
		a, err := ova.OpenFile(testimg.OVA(t, spec(signer(t, key, false), nil)), ova.Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if a.Signature == nil || !a.Signature.Verified || !strings.Contains(a.Signature.Subject, "appliance signer") {
			t.Errorf("%s: signature %+v", name, a.Signature)
		}
		a.Close()
		_, err = ova.OpenFile(testimg.OVA(t, spec(signer(t, key, true), nil)), ova.Options{})
		if !errors.Is(err, disk.ErrCorrupt) || !strings.Contains(err.Error(), "signature") {
			t.Errorf("%s tampered: %v", name, err)
		}
	}
	// An NVRAM file the .mf lists is checked; edited after signing, refused.
	nvram := []testimg.OVAMember{{Name: "appliance.nvram", Data: []byte("nvram contents")}}
	s := spec(nil, nvram)
	s.EditMF = func(m []byte) []byte {
		return fmt.Appendf(m, "SHA256(appliance.nvram)= %x\n", sha256.Sum256([]byte("other contents")))
	}
	if _, err := ova.OpenFile(testimg.OVA(t, s), ova.Options{}); !errors.Is(err, disk.ErrCorrupt) || !strings.Contains(err.Error(), "appliance.nvram") {
		t.Errorf("altered nvram: %v", err)
	}
}
