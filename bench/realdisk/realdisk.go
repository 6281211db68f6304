//go:build linux

// Package realdisk builds the real-content benchmark disk: a raw ext4
// filesystem made by mke2fs -d from real files found on any machine with
// Go (the Go toolchain, shared libraries, documentation, /usr/bin), the
// kind of bytes a VM import carries. Synthetic disks flatter a converter
// (random data deflates to stored blocks, repeated text to long matches);
// this one compresses as real disks do.
//
// The disk is deterministic enough to compare runs: the files are taken in
// sorted order up to a byte budget, copied into a staging directory with
// fixed modes and times, and mke2fs runs with a fixed UUID, hash seed,
// root owner and creation time (E2FSPROGS_FAKE_TIME). Two builds hold the
// same files in the same places; they may still differ in the inodes'
// change times, which mke2fs copies from the staged files and nobody can
// set (a build that crosses a second boundary differs there). It is cached under a
// key of the file list (path, size, mtime of each), the sizes, the options
// and mke2fs's version, so it is rebuilt only when one of them changes.
package realdisk

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Spec says which disk to build.
type Spec struct {
	// Size is the filesystem's (and the raw disk's) size in bytes.
	Size int64
	// Files is how many bytes of files to copy in, at most.
	Files int64
	// Roots are the directories files are taken from, in order; nil for
	// DefaultRoots.
	Roots []string
}

// Default is the headline disk of bench/compare: 3 GiB with 1.4 GB of
// files.
var Default = Spec{Size: 3 << 30, Files: 1400 << 20}

// DefaultRoots returns the directories real files are taken from: the Go
// toolchain ($(go env GOROOT) of the go command on PATH), then /usr/lib/<multiarch>, /usr/share/doc, /usr/bin,
// and the rest of /usr/share and /usr/lib should those not fill the
// budget. Missing directories are skipped.
func DefaultRoots() []string {
	var roots []string
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		roots = append(roots, strings.TrimSpace(string(out)))
	}
	multiarch := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[runtime.GOARCH]
	if multiarch != "" {
		roots = append(roots, "/usr/lib/"+multiarch)
	}
	return append(roots, "/usr/share/doc", "/usr/bin", "/usr/share", "/usr/lib")
}

// Fixed mke2fs inputs, so two builds from the same files agree.
const (
	uuid     = "6469736b-706f-7274-2d72-65616c000001"
	hashSeed = "6469736b-706f-7274-2d72-65616c000002"
	fakeTime = "1700000000" // 2023-11-14, the creation time in the superblock
)

// fileTime is the mtime and atime every staged file and directory gets.
var fileTime = time.Unix(1700000000, 0)

// mke2fsArgs are mke2fs's options before the staging directory, the image
// and the size.
var mke2fsArgs = []string{"-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-U", uuid,
	"-E", "root_owner=0:0,hash_seed=" + hashSeed + ",lazy_itable_init=1,lazy_journal_init=1,nodiscard"}

// A file is one file picked for the disk.
type file struct {
	src  string // host path
	rel  string // path inside the filesystem
	size int64
	mode fs.FileMode
	key  string // path, size, mtime
}

// Info describes a built disk.
type Info struct {
	// Path is the raw disk.
	Path string `json:"-"`
	// Key identifies the disk's inputs.
	Key string `json:"key"`
	// Size is the disk's size; Files and Bytes count the files copied in.
	Size  int64 `json:"size"`
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Roots are the directories the files came from; Mke2fs the command
	// line (without the staging directory and the image).
	Roots  []string `json:"roots"`
	Mke2fs string   `json:"mke2fs"`
}

// Build returns the disk spec describes, building it in cache unless it is
// there. logf, when not nil, reports progress.
func Build(cache string, spec Spec, logf func(format string, args ...any)) (Info, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if spec.Size <= 0 || spec.Files <= 0 || spec.Files >= spec.Size {
		return Info{}, fmt.Errorf("realdisk: files (%d bytes) must fit in the disk (%d bytes)", spec.Files, spec.Size)
	}
	roots := spec.Roots
	if roots == nil {
		roots = DefaultRoots()
	}
	mke2fs, err := findMke2fs()
	if err != nil {
		return Info{}, err
	}
	files, roots, err := pick(roots, spec.Files)
	if err != nil {
		return Info{}, err
	}
	if len(files) == 0 {
		return Info{}, fmt.Errorf("realdisk: no readable files in %s", strings.Join(roots, ", "))
	}
	h := sha256.New()
	version, _ := exec.Command(mke2fs, "-V").CombinedOutput()
	fmt.Fprintf(h, "realdisk 1\n%d %d\n%s\n%s\n", spec.Size, spec.Files, strings.Join(mke2fsArgs, " "), firstLine(string(version)))
	info := Info{Size: spec.Size, Files: len(files), Roots: roots,
		Mke2fs: "E2FSPROGS_FAKE_TIME=" + fakeTime + " mke2fs " + strings.Join(mke2fsArgs, " ") + " -d DIR IMAGE " + fmt.Sprint(spec.Size)}
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%s\x00%o\n", f.rel, f.key, f.mode)
		info.Bytes += f.size
	}
	info.Key = hex.EncodeToString(h.Sum(nil))[:16]
	info.Path = filepath.Join(cache, fmt.Sprintf("real-%d-%s.raw", spec.Size, info.Key))
	if _, err := os.Stat(info.Path); err == nil {
		return info, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Info{}, err
	}
	tmp, err := os.MkdirTemp(cache, ".realdisk-")
	if err != nil {
		return Info{}, err
	}
	defer os.RemoveAll(tmp)
	stage := filepath.Join(tmp, "root")
	logf("realdisk: copying %d files (%d MB) from %s", len(files), info.Bytes/1e6, strings.Join(roots, ", "))
	if err := stageFiles(stage, files); err != nil {
		return Info{}, err
	}
	img := filepath.Join(tmp, "disk.raw")
	logf("realdisk: mke2fs -t ext4 -d, %d MiB", spec.Size>>20)
	cmd := exec.Command(mke2fs, append(append([]string{}, mke2fsArgs...), "-d", stage, img, fmt.Sprint(spec.Size/1024)+"k")...)
	cmd.Env = append(os.Environ(), "E2FSPROGS_FAKE_TIME="+fakeTime)
	if out, err := cmd.CombinedOutput(); err != nil {
		return Info{}, fmt.Errorf("realdisk: %s: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(out)))
	}
	meta, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(strings.TrimSuffix(info.Path, ".raw")+".json", append(meta, '\n'), 0o644); err != nil {
		return Info{}, err
	}
	return info, os.Rename(img, info.Path)
}

// findMke2fs returns mke2fs's path: on PATH or in /sbin or /usr/sbin,
// which a user's PATH often lacks.
func findMke2fs() (string, error) {
	if p, err := exec.LookPath("mke2fs"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mke2fs", "/sbin/mke2fs"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("realdisk: mke2fs is needed (Debian's e2fsprogs; make deps installs it)")
}

// pick walks roots in order, each in lexical order, and returns regular
// readable files up to budget bytes (a file that would pass the budget is
// skipped), each host file once, and the roots that gave any.
func pick(roots []string, budget int64) ([]file, []string, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	seenDir := map[string]bool{}
	var files []file
	var used []string
	var total int64
	for i, root := range roots {
		root = filepath.Clean(root)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		name := fmt.Sprintf("%02d%s", i, strings.ReplaceAll(root, "/", "-"))
		n := len(files)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable: skip it
			}
			if d.IsDir() {
				if seenDir[path] {
					return filepath.SkipDir // an earlier root took it
				}
				seenDir[path] = true
				return nil
			}
			if !d.Type().IsRegular() || total >= budget {
				return nil
			}
			st, err := os.Stat(path)
			if err != nil {
				return nil
			}
			sys, ok := st.Sys().(*syscall.Stat_t)
			if !ok || seen[inode{sys.Dev, sys.Ino}] || total+st.Size() > budget {
				return nil
			}
			if f, err := os.Open(path); err != nil {
				return nil
			} else {
				f.Close()
			}
			seen[inode{sys.Dev, sys.Ino}] = true
			rel, _ := filepath.Rel(root, path)
			files = append(files, file{src: path, rel: filepath.Join(name, rel), size: st.Size(), mode: st.Mode().Perm() & 0o755,
				key: fmt.Sprintf("%s|%d|%d", path, st.Size(), st.ModTime().UnixNano())})
			total += st.Size()
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		if len(files) > n {
			used = append(used, root)
		}
		if total >= budget {
			break
		}
	}
	return files, used, nil
}

// stageFiles copies files under dir with their modes (group and other
// write bits dropped) and fixed times, directories last so their times
// stay fixed.
func stageFiles(dir string, files []file) error {
	dirs := map[string]bool{dir: true}
	for _, f := range files {
		dst := filepath.Join(dir, f.rel)
		for d := filepath.Dir(dst); !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := copyFile(dst, f.src, f.mode|0o400); err != nil {
			return fmt.Errorf("realdisk: copying %s: %v", f.src, err)
		}
		if err := os.Chtimes(dst, fileTime, fileTime); err != nil {
			return err
		}
	}
	for d := range dirs {
		if err := os.Chtimes(d, fileTime, fileTime); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies src to a new file dst with mode.
func copyFile(dst, src string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(mode); err != nil { // past the umask
		out.Close()
		return err
	}
	return out.Close()
}

// firstLine returns s up to its first newline.
func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
