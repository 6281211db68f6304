package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/bundle"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// serveProc is a running `diskport serve`.
type serveProc struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr bytes.Buffer
	stdout []string
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type lockedWriter struct{ p *serveProc }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

// startServe runs the binary's serve on data and waits for its
// "serving" line.
func startServe(t *testing.T, bin, data, s3 string, env ...string) *serveProc {
	t.Helper()
	return startServeArgs(t, bin, []string{"--data", data, "--s3-endpoint", s3}, env...)
}

// startServeArgs runs the binary's serve with these arguments (and
// --listen 127.0.0.1:0 --workers 1) and waits for its "serving" line.
func startServeArgs(t *testing.T, bin string, args []string, env ...string) *serveProc {
	t.Helper()
	p := &serveProc{cmd: exec.Command(bin, append(append([]string{"serve"}, args...), "--listen", "127.0.0.1:0", "--workers", "1")...)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = lockedWriter{p}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		p.stdout = append(p.stdout, line)
		if rest, ok := strings.CutPrefix(line, "serving the EC2 API on "); ok {
			p.url, _, _ = strings.Cut(rest, " ")
			go io.Copy(io.Discard, out)
			return p
		}
	}
	t.Fatalf("serve did not start: %v\n%s", p.stdout, p.log())
	return nil
}

// TestServeBinaryKill9 runs the built binary: the first account's key
// pair comes from the environment, `serve accounts add` prints a working
// key pair as its last line, and an ImportVolume whose server is killed
// with SIGKILL mid-conversion completes after a restart with a volume
// identical to qemu-img's conversion. The manifest is made by `diskport
// upload` into MinIO, reached through a throttled proxy so that the
// conversion lasts long enough to be killed.
func TestServeBinaryKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kill -9 of the serve binary mid-conversion through MinIO")
	}
	bin := buildCLI(t)
	s3 := s3test.Shared(t)
	target, _ := url.Parse(s3.Endpoint)
	proxy := httptest.NewServer(throttle(httputil.NewSingleHostReverseProxy(target), 24<<20))
	defer proxy.Close()
	g := testimg.Golden(t, testimg.Spec{Size: 64 << 20, Seed: 21, ZeroPercent: 5})
	image := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	up := exec.Command(bin, "upload", "--create-bucket", "--endpoint", proxy.URL, "--bucket", s3.Bucket(t), "--part-size", "1MiB", image)
	up.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3.SecretKey, "AWS_REGION="+s3.Region)
	murl, err := up.Output()
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	st, _ := os.Stat(image)

	data := filepath.Join(t.TempDir(), "data")
	env := []string{"DISKPORT_ACCESS_KEY_ID=AKIASERVETEST0000001", "DISKPORT_SECRET_ACCESS_KEY=serve-test-secret"}
	p := startServe(t, bin, data, proxy.URL, env...)
	client := func(url, key, secret string) *ec2.Client {
		return ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider(key, secret, "")})
	}
	c := client(p.url, "AKIASERVETEST0000001", "serve-test-secret")
	ctx := context.Background()

	add := exec.Command(bin, "serve", "accounts", "add", "--data", data, "bob")
	out, err := add.Output()
	if err != nil {
		t.Fatalf("accounts add: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	kp := strings.Fields(lines[len(lines)-1])
	if len(kp) != 2 || !strings.HasPrefix(kp[0], "AKIA") {
		t.Fatalf("accounts add printed %q", out)
	}
	if dt, err := client(p.url, kp[0], kp[1]).DescribeConversionTasks(ctx, &ec2.DescribeConversionTasksInput{}); err != nil || len(dt.ConversionTasks) != 0 {
		t.Fatalf("bob's key: %v %v", dt, err)
	}

	iv, err := c.ImportVolume(ctx, &ec2.ImportVolumeInput{
		Image:  &types.DiskImageDetail{Format: types.DiskImageFormatVmdk, Bytes: aws.Int64(st.Size()), ImportManifestUrl: aws.String(strings.TrimSpace(string(murl)))},
		Volume: &types.VolumeDetail{Size: aws.Int64(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	task, vol := aws.ToString(iv.ConversionTask.ConversionTaskId), aws.ToString(iv.ConversionTask.ImportVolume.Volume.Id)
	// Kill once a third is converted.
	deadline := time.Now().Add(time.Minute)
	for {
		dt, err := c.DescribeConversionTasks(ctx, &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{task}})
		if err != nil {
			t.Fatal(err)
		}
		ct := dt.ConversionTasks[0]
		if ct.State != types.ConversionTaskStateActive {
			t.Fatalf("task %s before the kill: %s", ct.State, aws.ToString(ct.StatusMessage))
		}
		if aws.ToInt64(ct.ImportVolume.BytesConverted)*3 >= g64(t, g) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the conversion never got a third of the way")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	final := filepath.Join(data, "volumes", vol+".raw")
	if _, err := os.Stat(final); err == nil {
		t.Fatal("a killed server left a volume under its final name")
	}

	p = startServe(t, bin, data, proxy.URL, env...)
	c = client(p.url, "AKIASERVETEST0000001", "serve-test-secret")
	for deadline = time.Now().Add(2 * time.Minute); ; {
		dt, err := c.DescribeConversionTasks(ctx, &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{task}})
		if err != nil {
			t.Fatal(err)
		}
		ct := dt.ConversionTasks[0]
		if ct.State == types.ConversionTaskStateCompleted {
			break
		}
		if ct.State != types.ConversionTaskStateActive || time.Now().After(deadline) {
			t.Fatalf("after the restart the task is %s: %s\n%s", ct.State, aws.ToString(ct.StatusMessage), p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := testimg.QemuRaw(t, image)
	testimg.SameVolume(t, final, want, 1<<30)
	for _, line := range strings.Split(p.log(), "\n") {
		var e struct {
			Event   string `json:"event"`
			Resumed int64  `json:"resumed_bytes"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Event == "converted" {
			t.Logf("the restarted server resumed %d bytes of %s", e.Resumed, want)
		}
	}
	for _, secret := range []string{"serve-test-secret", kp[1], s3.SecretKey, "X-Amz-Signature", "Signature="} {
		if strings.Contains(p.log(), secret) {
			t.Errorf("the server's log holds %q", secret)
		}
	}
}

func g64(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestServeTLS serves HTTPS with --tls-cert and --tls-key: the SDK,
// trusting the certificate, gets answers; plain HTTP does not.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	p := &serveProc{cmd: exec.Command(bin, "serve", "--data", filepath.Join(dir, "data"), "--s3-endpoint", "http://127.0.0.1:9",
		"--listen", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile)}
	p.cmd.Env = append(os.Environ(), "DISKPORT_ACCESS_KEY_ID=AKIATLSTEST000000001", "DISKPORT_SECRET_ACCESS_KEY=tls-test-secret")
	p.cmd.Stderr = lockedWriter{p}
	out, _ := p.cmd.StdoutPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { p.cmd.Process.Kill(); p.cmd.Wait() }()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "serving the EC2 API on "); ok {
			p.url, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	if !strings.HasPrefix(p.url, "https://") {
		t.Fatalf("serve said %q\n%s", p.url, p.log())
	}
	pool := x509.NewCertPool()
	pool.AddCert(mustParse(t, der))
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	c := ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(p.url), RetryMaxAttempts: 1, HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider("AKIATLSTEST000000001", "tls-test-secret", "")})
	if dt, err := c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{}); err != nil || len(dt.ConversionTasks) != 0 {
		t.Fatalf("over TLS: %v %v", dt, err)
	}
	resp, err := http.Get("http://" + strings.TrimPrefix(p.url, "https://") + "/")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on the TLS port")
		}
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServeBinaryBundleKill9 kills the serve binary with SIGKILL while it
// stores the parts of an imported instance's bundle; after a restart the
// bundle task runs again to complete, the parts stored before the kill are
// not POSTed again (counted by a proxy in front of MinIO), and the stored
// bundle unbundles to the volume's bytes.
func TestServeBinaryBundleKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("long: kill -9 of the serve binary mid-bundle through MinIO")
	}
	bin := buildCLI(t)
	s3 := s3test.Shared(t)
	target, _ := url.Parse(s3.Endpoint)
	posts := &postCounter{h: httputil.NewSingleHostReverseProxy(target), delay: time.Second}
	proxy := httptest.NewServer(posts)
	defer proxy.Close()
	ctx := context.Background()
	g := testimg.Golden(t, testimg.Spec{Size: 64 << 20, Seed: 22, ZeroPercent: 5})
	up := exec.Command(bin, "upload", "--create-bucket", "--endpoint", proxy.URL, "--bucket", s3.Bucket(t), g)
	up.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3.SecretKey, "AWS_REGION="+s3.Region)
	murl, err := up.Output()
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	data := filepath.Join(t.TempDir(), "data")
	env := []string{"DISKPORT_ACCESS_KEY_ID=AKIASERVETEST0000002", "DISKPORT_SECRET_ACCESS_KEY=serve-test-secret-2"}
	p := startServe(t, bin, data, proxy.URL, env...)
	client := func(url string) *ec2.Client {
		return ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider("AKIASERVETEST0000002", "serve-test-secret-2", "")})
	}
	c := client(p.url)
	ii, err := c.ImportInstance(ctx, &ec2.ImportInstanceInput{Platform: types.PlatformValuesWindows, DiskImages: []types.DiskImage{{
		Image:  &types.DiskImageDetail{Format: types.DiskImageFormatRaw, Bytes: aws.Int64(g64(t, g)), ImportManifestUrl: aws.String(strings.TrimSpace(string(murl)))},
		Volume: &types.VolumeDetail{Size: aws.Int64(1)}}}})
	if err != nil {
		t.Fatal(err)
	}
	task, inst := aws.ToString(ii.ConversionTask.ConversionTaskId), aws.ToString(ii.ConversionTask.ImportInstance.InstanceId)
	vol := aws.ToString(ii.ConversionTask.ImportInstance.Volumes[0].Volume.Id)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		dt, err := c.DescribeConversionTasks(ctx, &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{task}})
		if err != nil {
			t.Fatal(err)
		}
		if dt.ConversionTasks[0].State == types.ConversionTaskStateCompleted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("import: %s %s", dt.ConversionTasks[0].State, aws.ToString(dt.ConversionTasks[0].StatusMessage))
		}
	}
	mc, err := minio.New(s3.Host, &minio.Options{Creds: miniocreds.NewStaticV4(s3.AccessKey, s3.SecretKey, ""), Region: s3.Region})
	if err != nil {
		t.Fatal(err)
	}
	bucket := s3.Bucket(t)
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s3.Region}); err != nil {
		t.Fatal(err)
	}
	policy := bundle.NewPolicy(bucket, "kill/image", time.Now().Add(time.Hour)).Encode()
	raw, _ := base64.StdEncoding.DecodeString(policy)
	bi, err := c.BundleInstance(ctx, &ec2.BundleInstanceInput{InstanceId: aws.String(inst), Storage: &types.Storage{S3: &types.S3Storage{
		Bucket: aws.String(bucket), Prefix: aws.String("kill/image"), AWSAccessKeyId: aws.String(s3.AccessKey),
		UploadPolicy: raw, UploadPolicySignature: aws.String(bundle.SignPolicy(s3.SecretKey, policy))}}})
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(bi.BundleTask.BundleId)
	// Kill once two parts are stored, a while after (so that the server
	// has recorded them): each POST is held a second.
	var before []string
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
		bt, err := c.DescribeBundleTasks(ctx, &ec2.DescribeBundleTasksInput{BundleIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		if st := bt.BundleTasks[0].State; st != types.BundleTaskStatePending && st != types.BundleTaskStateBundling && st != types.BundleTaskStateStoring {
			t.Fatalf("the bundle is %s before the kill", st)
		}
		if before = posts.stored(); len(before) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d parts stored before the deadline", len(before))
		}
	}
	time.Sleep(300 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	if slices.Contains(posts.stored(), bundle.ManifestName("kill/image")) {
		t.Fatal("the bundle was complete before the kill")
	}
	posts.reset()

	p = startServe(t, bin, data, proxy.URL, env...)
	c = client(p.url)
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		bt, err := c.DescribeBundleTasks(ctx, &ec2.DescribeBundleTasksInput{BundleIds: []string{id}})
		if err != nil {
			t.Fatal(err)
		}
		st := bt.BundleTasks[0].State
		if st == types.BundleTaskStateComplete {
			break
		}
		if st == types.BundleTaskStateFailed || time.Now().After(deadline) {
			t.Fatalf("after the restart the bundle is %s: %+v\n%s", st, bt.BundleTasks[0].BundleTaskError, p.log())
		}
	}
	key, err := bundle.ParsePrivateKeyPEM(mustRead(t, filepath.Join(data, "bundle.key")))
	if err != nil {
		t.Fatal(err)
	}
	src, err := bundle.NewS3(s3.Endpoint, bucket, s3.AccessKey, s3.SecretKey, s3.Region)
	if err != nil {
		t.Fatal(err)
	}
	r, err := bundle.Open(ctx, src, bundle.ManifestName("kill/image"), bundle.ReadOptions{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "unbundled.raw")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Extract(ctx, f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !bytes.Equal(mustRead(t, out), mustRead(t, filepath.Join(data, "volumes", vol+".raw"))) {
		t.Fatal("the bundle does not unbundle to the volume")
	}
	after := posts.posted()
	for _, name := range before {
		if slices.Contains(after, name) {
			t.Errorf("%s, stored before the kill, was POSTed again after the restart", name)
		}
	}
	if len(after) >= len(r.Manifest.Image.Parts.Part)+1 {
		t.Errorf("after the restart every object was POSTed again: %v", after)
	}
	t.Logf("stored before the kill: %v; POSTed after the restart: %v", before, after)
}

// postCounter passes requests to h, holding each POST for delay, and
// remembers the object key of every POST (form field "key") and of those
// answered 2xx.
type postCounter struct {
	h     http.Handler
	delay time.Duration

	mu      sync.Mutex
	all, ok []string
}

func (c *postCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		c.h.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	key := ""
	if _, params, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && params["boundary"] != "" {
		mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
		for {
			part, err := mr.NextPart()
			if err != nil {
				break
			}
			if part.FormName() == "key" {
				v, _ := io.ReadAll(part)
				key = string(v)
				break
			}
		}
	}
	c.mu.Lock()
	c.all = append(c.all, key)
	c.mu.Unlock()
	time.Sleep(c.delay)
	rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
	c.h.ServeHTTP(rec, r)
	if rec.code/100 == 2 {
		c.mu.Lock()
		c.ok = append(c.ok, key)
		c.mu.Unlock()
	}
}

// stored returns the keys POSTed with a 2xx answer.
func (c *postCounter) stored() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ok)
}

// posted returns the keys of every POST.
func (c *postCounter) posted() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.all)
}

func (c *postCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all, c.ok = nil, nil
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
