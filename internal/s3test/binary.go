package s3test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/diskport/diskport/internal/flock"
)

var binary struct {
	once sync.Once
	path string
	err  error
}

// Dir returns the cache directory the MinIO binary is built into:
// $XDG_CACHE_HOME/diskport/minio-<MinioVersion> (~/.cache/... when
// XDG_CACHE_HOME is unset).
func Dir() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for the MinIO binary: %w", err)
	}
	return filepath.Join(cache, "diskport", "minio-"+MinioVersion), nil
}

// Binary returns the path of the MinIO server binary, building it with
// `go install github.com/minio/minio@MinioVersion` when it is not in the
// cache yet (a few minutes). Concurrent test binaries wait for one build
// through a lock file. DISKPORT_MINIO overrides the path.
func Binary() (string, error) {
	binary.once.Do(func() { binary.path, binary.err = findOrBuild() })
	return binary.path, binary.err
}

func findOrBuild() (string, error) {
	if p := os.Getenv("DISKPORT_MINIO"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("DISKPORT_MINIO: %w", err)
		}
		return p, nil
	}
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "minio")
	if isExecutable(bin) {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := flock.Lock(lock, true); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	defer flock.Unlock(lock)
	if isExecutable(bin) { // another process built it while we waited
		return bin, nil
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if os.Getenv("GOROOT") == "" || !isExecutable(goCmd) {
			return "", errNoGo
		}
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(goCmd, "install", "github.com/minio/minio@"+MinioVersion)
	cmd.Dir = tmp // outside any module
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-buildvcs=false", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building MinIO (go install github.com/minio/minio@%s): %v\n%s", MinioVersion, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "minio"), bin); err != nil {
		return "", fmt.Errorf("installing MinIO binary: %w", err)
	}
	return bin, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
