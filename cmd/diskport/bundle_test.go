package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
)

func TestPolicyVerbs(t *testing.T) {
	t.Setenv(secretEnv, "secret")
	code, out, errOut := call(t, "policy", "create", "--bucket", "mybucket", "--prefix", "myprefix", "--expires", "2h")
	if code != 0 {
		t.Fatalf("policy create: exit %d: %s", code, errOut)
	}
	var created struct {
		Policy    string `json:"upload_policy"`
		Signature string `json:"upload_policy_signature"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Policy == "" || created.Signature == "" {
		t.Fatalf("policy create printed %q (%v)", out, err)
	}
	doc, _ := base64.StdEncoding.DecodeString(created.Policy)
	if !strings.Contains(string(doc), `{"bucket": "mybucket"},{"acl": "ec2-bundle-read"},["starts-with", "$key", "myprefix"]`) {
		t.Errorf("policy %s", doc)
	}
	if code, out, _ := call(t, "policy", "sign", created.Policy); code != 0 || strings.TrimSpace(out) != created.Signature {
		t.Errorf("policy sign: exit %d, %q, want %q", code, out, created.Signature)
	}
	if code, out, errOut := call(t, "policy", "check", "--bucket", "mybucket", "--prefix", "myprefix/img", "--signature", created.Signature, created.Policy); code != 0 {
		t.Errorf("policy check: exit %d, %s %s", code, out, errOut)
	}
	// Every failed condition is reported, exit 1.
	code, _, errOut = call(t, "policy", "check", "--bucket", "other", "--prefix", "elsewhere", "--signature", "bad", created.Policy)
	if code != 1 {
		t.Errorf("failing policy check: exit %d", code)
	}
	for _, want := range []string{"signature", `not "other"`, "does not cover"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("failing policy check does not mention %q:\n%s", want, errOut)
		}
	}
	// The euca2ools test vector (ec2.md §3.2) signs the same.
	const euca = "eyJjb25kaXRpb25zIjogW3siYWNsIjogImVjMi1idW5kbGUtcmVhZCJ9LCB7ImJ1Y2tldCI6ICJteWJ1Y2tldCJ9LCBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAibXlwcmVmaXgiXV0sICJleHBpcmF0aW9uIjogIjIwMTQtMDEtMDFUMDA6MDA6MDBaIn0="
	if _, out, _ := call(t, "policy", "sign", euca); strings.TrimSpace(out) != "KlAJ25heByDBH+4oGbcCAW/nm3A=" {
		t.Errorf("policy sign of the euca2ools vector = %q", out)
	}
	if code, _, errOut := call(t, "policy", "check", "--bucket", "mybucket", "--prefix", "myprefix", "--signature", "KlAJ25heByDBH+4oGbcCAW/nm3A=", euca); code != 1 || !strings.Contains(errOut, "expired at 2014-01-01T00:00:00Z") {
		t.Errorf("expired euca2ools policy: exit %d, %s", code, errOut)
	}
	t.Setenv(secretEnv, "")
	if code, _, _ := call(t, "policy", "sign", euca); code != 1 {
		t.Errorf("policy sign without a secret: exit %d", code)
	}
	for _, args := range [][]string{{"policy"}, {"policy", "frob"}, {"policy", "create"}, {"policy", "check", "x"}, {"policy", "sign"}} {
		if code, _, _ := call(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// keyFiles writes the bundle package's test keys and self-signed
// certificates for them into dir.
func keyFiles(t *testing.T, dir string) (ec2Cert, userCert, userKey, ec2Key string) {
	t.Helper()
	certFor := func(keyPath, name string) string {
		b, err := os.ReadFile(keyPath)
		if err != nil {
			t.Fatal(err)
		}
		k, err := bundle.ParsePrivateKeyPEM(b)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name+".crt")
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
		return p
	}
	ec2Key, userKey = "../../bundle/testdata/ec2-key.pem", "../../bundle/testdata/user-key.pem"
	return certFor(ec2Key, "ec2"), certFor(userKey, "user"), userKey, ec2Key
}

func TestBundleVerbsDir(t *testing.T) {
	work := t.TempDir()
	ec2Cert, userCert, userKey, ec2Key := keyFiles(t, work)
	golden := testimg.Golden(t, testimg.Spec{Size: 2<<20 + 512, Seed: 4})
	vmdk := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	out := filepath.Join(work, "out")
	code, stdoutText, errOut := call(t, "bundle", "--format", "vmdk", "--prefix", "img", "--ec2-cert", ec2Cert,
		"--user-cert", userCert, "--user-key", userKey, "--out", out, "--part-size", "1MiB", "--task-xml", vmdk)
	if code != 0 {
		t.Fatalf("bundle: exit %d: %s", code, errOut)
	}
	if !strings.Contains(stdoutText, "<state>complete</state>") || !strings.Contains(stdoutText, "<progress>100%</progress>") {
		t.Errorf("task XML:\n%s", stdoutText)
	}
	// --progress draws a bar on stderr; the summary goes to stdout.
	code, stdoutText, errOut = call(t, "bundle", "--format", "vmdk", "--prefix", "img2", "--ec2-cert", ec2Cert,
		"--out", out, "--progress", vmdk)
	if code != 0 || !strings.Contains(errOut, "bundling") || !strings.Contains(errOut, "100%") ||
		!strings.Contains(stdoutText, "into "+out+"/img2.manifest.xml") {
		t.Errorf("bundle --progress: exit %d, stdout %q, stderr %q", code, stdoutText, errOut)
	}
	want := testimg.QemuRaw(t, vmdk, "-f", "vmdk")
	for _, key := range []string{userKey, ec2Key} {
		dst := filepath.Join(work, filepath.Base(key)+".raw")
		args := []string{"unbundle", "--private-key", key, "--dir", out, "--manifest", "img.manifest.xml", dst}
		if key == ec2Key {
			args = append(args[:len(args)-1], "--user-cert", userCert, dst)
		}
		if code, _, errOut := call(t, args...); code != 0 {
			t.Fatalf("unbundle with %s: exit %d: %s", key, code, errOut)
		}
		sameBytes(t, dst, want)
	}
	// An existing destination is not overwritten without --force.
	dst := filepath.Join(work, filepath.Base(userKey)+".raw")
	if code, _, _ := call(t, "unbundle", "--private-key", userKey, "--dir", out, "--manifest", "img.manifest.xml", dst); code != 1 {
		t.Errorf("unbundle over an existing file: exit %d", code)
	}
	// A tampered part: exit 1, no destination left behind.
	part := filepath.Join(out, "img.part.00")
	b, _ := os.ReadFile(part)
	b[len(b)/2] ^= 0x80
	os.WriteFile(part, b, 0o644)
	bad := filepath.Join(work, "bad.raw")
	if code, _, errOut := call(t, "unbundle", "--private-key", userKey, "--dir", out, "--manifest", "img.manifest.xml", bad); code != 1 || !strings.Contains(errOut, "SHA-1") {
		t.Errorf("tampered bundle: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(bad); err == nil {
		t.Errorf("a failed unbundle left %s", bad)
	}
	for _, args := range [][]string{
		{"bundle", "--prefix", "p", "--out", out, golden},                                               // no --ec2-cert
		{"bundle", "--ec2-cert", ec2Cert, "--out", out, golden},                                         // no --prefix
		{"bundle", "--ec2-cert", ec2Cert, "--prefix", "p", golden},                                      // no S3 flags, no --out
		{"bundle", "--ec2-cert", ec2Cert, "--prefix", "p", "--user-key", userKey, "--out", out, golden}, // key without cert
		{"unbundle", "--private-key", userKey, "--manifest", "m", "x"},                                  // no source
		{"unbundle", "--private-key", userKey, "--dir", out, "--endpoint", "http://x", "--manifest", "m", "x"},
	} {
		if code, _, _ := call(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

func sameBytes(t *testing.T, got, want string) {
	t.Helper()
	a, err1 := os.ReadFile(got)
	b, err2 := os.ReadFile(want)
	if err1 != nil || err2 != nil || string(a) != string(b) {
		t.Fatalf("%s (%d bytes) differs from %s (%d bytes) %v %v", got, len(a), want, len(b), err1, err2)
	}
}

// TestBundleVerbsS3 runs the CLI against MinIO: a policy made by `policy
// create` stores the bundle with POST uploads, `unbundle --endpoint`
// restores it, and a wrong signature is refused before anything is sent.
func TestBundleVerbsS3(t *testing.T) {
	srv := s3test.Shared(t)
	c, err := bundle.NewS3(srv.Endpoint, srv.Bucket(t), srv.AccessKey, srv.SecretKey, srv.Region)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Client(t).MakeBucket(context.Background(), c.Bucket, minio.MakeBucketOptions{Region: srv.Region}); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	ec2Cert, userCert, userKey, _ := keyFiles(t, work)
	golden := testimg.Golden(t, testimg.Spec{Size: 2<<20 + 512, Seed: 8})
	vhd := testimg.Make(t, golden, "vpc", "")
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv(secretEnv, srv.SecretKey)
	_, out, _ := call(t, "policy", "create", "--bucket", c.Bucket, "--prefix", "win/ami")
	var p struct {
		Policy    string `json:"upload_policy"`
		Signature string `json:"upload_policy_signature"`
	}
	json.Unmarshal([]byte(out), &p)
	s3args := func(sig string) []string {
		return []string{"bundle", "--format", "vhd", "--endpoint", srv.Endpoint, "--bucket", c.Bucket, "--prefix", "win/ami",
			"--access-key-id", srv.AccessKey, "--upload-policy", p.Policy, "--upload-policy-signature", sig,
			"--ec2-cert", ec2Cert, "--user-cert", userCert, "--user-key", userKey, vhd}
	}
	if code, _, errOut := call(t, s3args("AAAAAAAAAAAAAAAAAAAAAAAAAAA=")...); code != 1 || !strings.Contains(errOut, "signature") {
		t.Errorf("bundle with a wrong signature: exit %d: %s", code, errOut)
	}
	if n := len(objects(t, srv, c)); n != 0 {
		t.Fatalf("refused bundle stored %d objects", n)
	}
	if code, _, errOut := call(t, s3args(p.Signature)...); code != 0 {
		t.Fatalf("bundle to MinIO: exit %d: %s", code, errOut)
	}
	dst := filepath.Join(work, "restored.raw")
	if code, _, errOut := call(t, "unbundle", "--private-key", userKey, "--endpoint", srv.Endpoint, "--bucket", c.Bucket, "--manifest", "win/ami.manifest.xml", dst); code != 0 {
		t.Fatalf("unbundle from MinIO: exit %d: %s", code, errOut)
	}
	sameBytes(t, dst, testimg.QemuRaw(t, vhd, "-f", "vpc"))
}

func objects(t *testing.T, srv *s3test.Server, c *bundle.S3) []string {
	var names []string
	for o := range srv.Client(t).ListObjects(context.Background(), c.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		names = append(names, o.Key)
	}
	return names
}
