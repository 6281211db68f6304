// Package s3test runs a real MinIO server for tests that talk S3.
//
// The server binary is built from the module proxy with `go install` at a
// pinned version ([MinioVersion]) into a cache directory
// (`$XDG_CACHE_HOME/diskport/minio-<version>/minio`, i.e.
// `~/.cache/diskport/...`), once per machine; scripts/install-minio.sh does
// the same ahead of `make test`. The environment variable DISKPORT_MINIO
// names a binary to use instead.
//
// [Start] runs a server for one test and stops it in t.Cleanup. [Shared]
// runs one server per test binary; call it from tests of a package whose
// TestMain is
//
//	func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }
//
// so the shared server and its data directory go away when the tests end.
// Tests never skip for a missing server: a build or start failure fails the
// test.
package s3test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// MinioVersion is the pinned github.com/minio/minio module version.
const MinioVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// Credentials and region every server started here uses.
const (
	AccessKey = "diskport-test"
	SecretKey = "diskport-test-secret"
	Region    = "us-east-1"
)

// A Server is a running MinIO server on a loopback port.
type Server struct {
	// Endpoint is the base URL, http://127.0.0.1:PORT.
	Endpoint string
	// Host is 127.0.0.1:PORT.
	Host string
	// AccessKey and SecretKey are the root credentials.
	AccessKey, SecretKey string
	// Region is the server's region, "us-east-1".
	Region string
	// Dir is the server's data directory.
	Dir string

	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	log     *logBuffer
	stopped sync.Once
}

var bucketSeq atomic.Int64

// Bucket returns a fresh bucket name, unique within the test binary; the
// bucket is not created.
func (s *Server) Bucket(t testing.TB) string {
	name := strings.ToLower(t.Name())
	var b strings.Builder
	for _, r := range name {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	base := strings.Trim(b.String(), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	return strings.Trim(fmt.Sprintf("t-%s-%d-%d", base, os.Getpid()%100000, bucketSeq.Add(1)), "-")
}

// Start builds MinIO if needed, starts it with a temporary data directory
// and waits until it answers; the server stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start(t.TempDir())
	if err != nil {
		t.Fatalf("s3test: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

var shared struct {
	sync.Mutex
	s   *Server
	dir string
	err error
}

// Shared returns the test binary's shared server, starting it on first use.
// It is stopped by [Main]; without Main it dies with the test process (the
// child is started with a parent-death signal) and leaves its data
// directory in the temporary directory.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.s == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "diskport-minio-")
		if err != nil {
			shared.err = err
		} else {
			shared.dir = dir
			shared.s, shared.err = start(dir)
		}
	}
	if shared.err != nil {
		t.Fatalf("s3test: %v", shared.err)
	}
	select {
	case <-shared.s.done:
		t.Fatalf("s3test: shared MinIO server exited early:\n%s", shared.s.log)
	default:
	}
	return shared.s
}

// Main runs the tests and then stops the shared server, if one was started,
// and removes its data directory. It returns m.Run's exit code.
func Main(m *testing.M) int {
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.s != nil {
		shared.s.Stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	return code
}

// Stop terminates the server and waits for it to exit.
func (s *Server) Stop() {
	s.stopped.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// Log returns what the server has printed so far.
func (s *Server) Log() string { return s.log.String() }

func start(dir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := launch(bin, dir)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func launch(bin, dir string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  "http://" + host,
		Host:      host,
		AccessKey: AccessKey,
		SecretKey: SecretKey,
		Region:    Region,
		Dir:       data,
		done:      make(chan struct{}),
		log:       &logBuffer{},
	}
	cmd := exec.Command(bin, "server", "--quiet", "--address", host, data)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_REGION="+Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() { _ = cmd.Wait(); close(s.done) }()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/minio/health/ready", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("MinIO exited before it was ready (%v):\n%s", cmd.ProcessState, s.log)
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("MinIO at %s not ready after 60s:\n%s", host, s.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logBuffer collects the server's output, keeping the last 64 KiB.
type logBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if len(l.b) > 64<<10 {
		l.b = append([]byte(nil), l.b[len(l.b)-64<<10:]...)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

var errNoGo = errors.New("the go command is not on PATH (needed to build MinIO)")
