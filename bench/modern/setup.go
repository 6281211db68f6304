//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/diskport/diskport/bench/realdisk"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// The API key pair of the server's first account.
const (
	apiKey    = "AKIABENCHMODERN00001"
	apiSecret = "bench-modern-secret"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// firstLine runs a command and returns the first line of its output.
func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// cacheKey hashes parts into a short name, as bench/compare does, so
// that the image it cached is found here.
func cacheKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s;", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// streamImage returns the real-content disk and its streamOptimized VMDK
// (qemu-img's), building and caching them where bench/compare does.
func streamImage(o options) (realdisk.Info, string, error) {
	info, err := realdisk.Build(o.cache, realdisk.Spec{Size: o.realSize, Files: o.realFiles}, logf)
	if err != nil {
		return info, "", err
	}
	version := firstLine("qemu-img", "--version")
	dir := filepath.Join(o.cache, fmt.Sprintf("real-streamOptimized-%d-%s", info.Size, cacheKey(info.Key, version)))
	path := filepath.Join(dir, "image.vmdk")
	if _, err := os.Stat(path); err == nil {
		return info, path, nil
	}
	logf("making the streamOptimized image with qemu-img")
	tmp, err := os.MkdirTemp(o.cache, ".build-")
	if err != nil {
		return info, "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("qemu-img", "convert", "-q", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", info.Path, filepath.Join(tmp, "image.vmdk"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return info, "", fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, out)
	}
	return info, path, os.Rename(tmp, dir)
}

// buildDiskport builds the CLI into dir.
func buildDiskport(dir string) (string, error) {
	bin := filepath.Join(dir, "diskport")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/diskport")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return bin, cmd.Run()
}

// freePort returns a loopback port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// minioServer is a running MinIO.
type minioServer struct {
	endpoint, host string
	cmd            *exec.Cmd
}

// startMinio runs the MinIO binary internal/s3test installs on data.
func startMinio(data string) (*minioServer, error) {
	bin, err := s3test.Binary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "server", "--quiet", "--address", host, data)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+s3test.AccessKey, "MINIO_ROOT_PASSWORD="+s3test.SecretKey,
		"MINIO_REGION="+s3test.Region, "MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	m := &minioServer{endpoint: "http://" + host, host: host, cmd: cmd}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(m.endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m, nil
			}
		}
	}
	m.stop()
	return nil, fmt.Errorf("MinIO at %s not ready after a minute", host)
}

func (m *minioServer) stop() {
	m.cmd.Process.Kill()
	m.cmd.Wait()
}

func (m *minioServer) client() (*minio.Client, error) {
	return minio.New(m.host, &minio.Options{Creds: miniocreds.NewStaticV4(s3test.AccessKey, s3test.SecretKey, ""), Region: s3test.Region})
}

// serveProc is a running `diskport serve`.
type serveProc struct {
	url, data string
	cmd       *exec.Cmd
}

// startServe runs `diskport serve` with a SQLite store in data, reading
// and writing MinIO with its root credentials.
// With logPath, the server logs every request (debug) there.
func startServe(bin, data, s3 string, workers int, env []string, logPath string) (*serveProc, error) {
	level := "warn"
	if logPath != "" {
		level = "debug"
	}
	cmd := exec.Command(bin, "serve", "--data", data, "--s3-endpoint", s3, "--listen", "127.0.0.1:0",
		"--workers", fmt.Sprint(workers), "--log-level", level)
	cmd.Env = append(os.Environ(), "DISKPORT_ACCESS_KEY_ID="+apiKey, "DISKPORT_SECRET_ACCESS_KEY="+apiSecret,
		"AWS_ACCESS_KEY_ID="+s3test.AccessKey, "AWS_SECRET_ACCESS_KEY="+s3test.SecretKey, "AWS_REGION="+s3test.Region)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child has its own descriptor
		cmd.Stderr = f
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "serving the EC2 API on "); ok {
			go io.Copy(io.Discard, out)
			u, _, _ := strings.Cut(rest, " ")
			return &serveProc{url: u, data: data, cmd: cmd}, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("serve did not start")
}

func (p *serveProc) stop() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// cpu returns the serve process's CPU time so far (user + system).
func (p *serveProc) cpu() time.Duration { return procCPU(p.cmd.Process.Pid) }

// procCPU reads a process's user and system time from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var utime, stime int64
	fmt.Sscan(fields[11], &utime) // field 14 of the whole line
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * (time.Second / 100) // USER_HZ
}

// ec2Client is an aws-sdk-go-v2 client of the server.
func (p *serveProc) ec2Client() *ec2.Client {
	return ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(p.url), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(apiKey, apiSecret, "")})
}

// uploadImage makes bucket and stores the image at path as key.
func uploadImage(ctx context.Context, mc *minio.Client, bucket, key, path string) error {
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: s3test.Region}); err != nil {
		return err
	}
	_, err := mc.FPutObject(ctx, bucket, key, path, minio.PutObjectOptions{})
	return err
}
