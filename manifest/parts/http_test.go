package parts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/internal/testimg"
)

// partServer serves a directory of parts like S3 serves presigned GETs,
// with faults injected per object.
type partServer struct {
	*httptest.Server
	dir string

	mu       sync.Mutex
	status   map[string][]int // statuses to answer before serving
	drop     map[string]int   // times to cut the body half-way
	stall    map[string]int   // times to stop sending half-way
	requests map[string]int
	ranges   int
}

func newPartServer(t testing.TB, dir string) *partServer {
	s := &partServer{dir: dir, status: map[string][]int{}, drop: map[string]int{}, stall: map[string]int{}, requests: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *partServer) serve(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	s.mu.Lock()
	s.requests[name]++
	if r.Header.Get("Range") != "" {
		s.ranges++
	}
	var status int
	if q := s.status[name]; len(q) > 0 {
		status, s.status[name] = q[0], q[1:]
	}
	drop := s.drop[name] > 0
	if drop {
		s.drop[name]--
	}
	stall := s.stall[name] > 0
	if stall {
		s.stall[name]--
	}
	s.mu.Unlock()
	if status == http.StatusForbidden {
		w.WriteHeader(status)
		io.WriteString(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
		return
	}
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		http.Error(w, "<Error><Code>NoSuchKey</Code></Error>", http.StatusNotFound)
		return
	}
	if stall {
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	if drop {
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // cut the connection
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

func (s *partServer) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[name]
}

// served points the parts' get-urls at the server.
func served(t testing.TB, f File, dir string) (File, *partServer) {
	s := newPartServer(t, dir)
	c := f
	c.Parts = append([]Part(nil), f.Parts...)
	for i := range c.Parts {
		c.Parts[i].GetURL = s.URL + "/bkt/" + c.Parts[i].Key + "?X-Amz-Signature=secret"
	}
	return c, s
}

func fastStore() *HTTPStore { return &HTTPStore{Backoff: time.Millisecond} }

func TestStorageHTTP(t *testing.T) {
	f, dir, data := created(t, 3<<20+777, 256<<10)
	f, srv := served(t, f, dir)
	s, err := OpenStorage(context.Background(), f, fastStore(), StorageOptions{Parallel: 3, CacheChunks: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var _ disk.Storage = s
	if s.Size() != int64(len(data)) {
		t.Fatalf("Size %d", s.Size())
	}
	if !bytes.Equal(testimg.ReadAll(t, s), data) {
		t.Fatal("sequential read differs")
	}
	// Random reads, concurrently, spanning part boundaries.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 1))
			for i := 0; i < 100; i++ {
				off := rng.Int64N(int64(len(data)))
				n := rng.IntN(600 << 10)
				b := make([]byte, n)
				k, err := s.ReadAt(b, off)
				want := data[off:min(off+int64(n), int64(len(data)))]
				if k != len(want) || !bytes.Equal(b[:k], want) || (k < n) != (err == io.EOF) || (err != nil && err != io.EOF) {
					t.Errorf("ReadAt(%d, %d) = %d, %v", off, n, k, err)
					return
				}
			}
		}(uint64(g))
	}
	wg.Wait()
	if k, err := s.ReadAt(make([]byte, 1), s.Size()); k != 0 || err != io.EOF {
		t.Fatalf("read at end: %d %v", k, err)
	}
	if _, err := s.ReadAt(make([]byte, 1), -1); err == nil {
		t.Fatal("negative offset accepted")
	}
	if srv.ranges != 0 {
		t.Fatalf("%d range requests for whole parts", srv.ranges)
	}
}

// TestStorageSequentialFetchesOnce checks a sequential reader fetches each
// part once, read ahead in parallel.
func TestStorageSequentialFetchesOnce(t *testing.T) {
	f, dir, data := created(t, 4<<20, 256<<10)
	f, srv := served(t, f, dir)
	s, _ := OpenStorage(context.Background(), f, fastStore(), StorageOptions{})
	b := make([]byte, 64<<10)
	for off := int64(0); off < s.Size(); off += int64(len(b)) {
		if _, err := s.ReadAt(b, off); err != nil || !bytes.Equal(b, data[off:off+int64(len(b))]) {
			t.Fatalf("at %d: %v", off, err)
		}
	}
	for _, p := range f.Parts {
		if n := srv.count(p.Key); n != 1 {
			t.Errorf("%s fetched %d times", p.Key, n)
		}
	}
}

func TestHTTPRetries(t *testing.T) {
	f, dir, data := created(t, 1<<20, 256<<10)
	f, srv := served(t, f, dir)
	srv.drop["disk.img.part1"] = 2
	srv.status["disk.img.part2"] = []int{503, 500, 429}
	s, _ := OpenStorage(context.Background(), f, fastStore(), StorageOptions{})
	if !bytes.Equal(testimg.ReadAll(t, s), data) {
		t.Fatal("read differs")
	}
	if srv.count("disk.img.part1") != 3 || srv.ranges != 2 {
		t.Fatalf("part1 requests %d, range requests %d; want 3 and 2 (resumed after each cut)", srv.count("disk.img.part1"), srv.ranges)
	}
	if srv.count("disk.img.part2") != 4 {
		t.Fatalf("part2 requests %d", srv.count("disk.img.part2"))
	}
	if _, err := Verify(context.Background(), f, fastStore(), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPStall: a server that stops sending mid-part is abandoned after
// the idle timeout and the part fetched again from where it stopped.
func TestHTTPStall(t *testing.T) {
	f, dir, data := created(t, 512<<10, 256<<10)
	f, srv := served(t, f, dir)
	srv.stall["disk.img.part1"] = 1
	store := &HTTPStore{Backoff: time.Millisecond, IdleTimeout: time.Second}
	s, _ := OpenStorage(context.Background(), f, store, StorageOptions{})
	if !bytes.Equal(testimg.ReadAll(t, s), data) {
		t.Fatal("read differs")
	}
	// One retry resuming where the body stopped (more only if the machine
	// is so busy that the retry itself looks stalled).
	if srv.count("disk.img.part1") < 2 || srv.ranges < 1 {
		t.Fatalf("%d requests, %d ranges", srv.count("disk.img.part1"), srv.ranges)
	}
	srv.stall["disk.img.part0"] = 10
	_, err := Verify(context.Background(), f, &HTTPStore{Backoff: time.Millisecond, IdleTimeout: 100 * time.Millisecond, Retries: 1}, VerifyOptions{})
	if err == nil || !strings.Contains(err.Error(), "part 0 (bytes 0-262143)") ||
		!strings.Contains(err.Error(), "no data for 100ms") && !strings.Contains(err.Error(), "no response for 100ms") {
		t.Fatalf("err = %v", err)
	}
}

func TestHTTPErrors(t *testing.T) {
	f, dir, _ := created(t, 1<<20, 256<<10)
	f, srv := served(t, f, dir)
	ctx := context.Background()

	// An expired URL: S3's 403 body is surfaced, not retried.
	srv.status["disk.img.part2"] = []int{403}
	s, _ := OpenStorage(ctx, f, fastStore(), StorageOptions{})
	_, err := s.ReadAt(make([]byte, 10), 2*256<<10+5)
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 403 {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"manifest: part 2 (bytes 524288-786431) from " + srv.URL + "/bkt/disk.img.part2: HTTP 403 Forbidden:", "Request has expired"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("error shows the signature: %v", err)
	}
	if !strings.Contains(err.Error(), "HTTP 403 Forbidden: AccessDenied: Request has expired") || strings.Contains(err.Error(), "<") {
		t.Errorf("error does not give S3's code and message, or shows XML: %v", err)
	}
	if srv.count("disk.img.part2") != 1 {
		t.Errorf("403 retried: %d requests", srv.count("disk.img.part2"))
	}
	// The part is fetched again on the next read.
	if _, err := s.ReadAt(make([]byte, 10), 2*256<<10+5); err != nil {
		t.Fatalf("second read: %v", err)
	}

	// A server that keeps cutting the connection: retries run out. (A
	// new server each time: the storages above may still be fetching in
	// the background.)
	f, srv = served(t, f, dir)
	srv.drop["disk.img.part3"] = 100
	s, _ = OpenStorage(ctx, f, fastStore(), StorageOptions{})
	_, err = s.ReadAt(make([]byte, 10), 3*256<<10)
	if err == nil || !strings.Contains(err.Error(), "part 3 (bytes 786432-1048575)") || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("err = %v", err)
	}
	if n := srv.count("disk.img.part3"); n != 5 {
		t.Fatalf("%d requests, want 1 + 4 retries", n)
	}

	// A missing object and a truncated one.
	f, srv = served(t, f, dir)
	os.Remove(filepath.Join(dir, "disk.img.part0"))
	os.Truncate(filepath.Join(dir, "disk.img.part1"), 1000)
	_, err = Verify(ctx, f, fastStore(), VerifyOptions{})
	var ve *VerifyError
	if !errors.As(err, &ve) || len(ve.Failures) != 2 {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "part 0 (bytes 0-262143) from "+srv.URL+"/bkt/disk.img.part0: HTTP 404 Not Found") ||
		!strings.Contains(err.Error(), "part 1 (bytes 262144-524287) from "+srv.URL+"/bkt/disk.img.part1: truncated: server has 1000 bytes") {
		t.Fatalf("err = %v", err)
	}
	if srv.count("disk.img.part1") != 1 {
		t.Errorf("truncated object retried")
	}
}

func TestStorageChecksum(t *testing.T) {
	f, dir, data := created(t, 1<<20, 256<<10)
	b, _ := os.ReadFile(filepath.Join(dir, "disk.img.part1"))
	b[5] ^= 0x80
	os.WriteFile(filepath.Join(dir, "disk.img.part1"), b, 0o644)
	s, _ := OpenStorage(context.Background(), f, DirStore{dir}, StorageOptions{})
	got := make([]byte, 100)
	if _, err := s.ReadAt(got, 0); err != nil || !bytes.Equal(got, data[:100]) {
		t.Fatalf("good part: %v", err)
	}
	_, err := s.ReadAt(got, 256<<10+1000)
	if !errors.Is(err, disk.ErrCorrupt) || !strings.Contains(err.Error(), "part 1 (bytes 262144-524287)") || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("err = %v", err)
	}
	// A read spanning the good and the bad part fails too.
	if _, err := s.ReadAt(make([]byte, 2000), 256<<10-1000); err == nil {
		t.Fatal("read across the corrupt part succeeded")
	}
}

// TestStorageBigParts reads single-part manifests (whole images in one
// object) by ranges.
func TestStorageBigParts(t *testing.T) {
	defer func(v int64) { chunkLimit = v }(chunkLimit)
	chunkLimit = 100 << 10
	f, dir, data := created(t, 1<<20+3, 600<<10)
	f, srv := served(t, f, dir)
	s, _ := OpenStorage(context.Background(), f, fastStore(), StorageOptions{})
	if len(s.chunks) != 6+5 {
		t.Fatalf("%d chunks", len(s.chunks))
	}
	if !bytes.Equal(testimg.ReadAll(t, s), data) {
		t.Fatal("read differs")
	}
	if srv.ranges == 0 {
		t.Fatal("no range requests")
	}
	if _, err := Verify(context.Background(), f, fastStore(), VerifyOptions{}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "disk.img.part1"))
	b[5] ^= 1
	os.WriteFile(filepath.Join(dir, "disk.img.part1"), b, 0o644)
	if _, err := Verify(context.Background(), f, fastStore(), VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "part 1 (bytes 614400-1048578): checksum mismatch") && !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("err = %v", err)
	}
}

// TestStorageNextData walks the data runs of a storage over parts: every
// byte outside them is zero, and every 4 KiB block inside them that starts
// a run holds data.
func TestStorageNextData(t *testing.T) {
	f, dir, data := created(t, 2<<20+4097, 300<<10)
	s, _ := OpenStorage(context.Background(), f, DirStore{dir}, StorageOptions{})
	var _ disk.SparseStorage = s
	pos, runs := int64(0), 0
	for pos < s.Size() {
		start, end, err := s.NextData(pos)
		if err != nil {
			t.Fatal(err)
		}
		if start < pos || end <= start && start != s.Size() || end > s.Size() {
			t.Fatalf("NextData(%d) = %d, %d", pos, start, end)
		}
		if !allZero(data[pos:start]) {
			t.Fatalf("bytes %d-%d reported as a hole hold data", pos, start)
		}
		if start < s.Size() {
			runs++
			if allZero(data[start:min(start+zeroBlock, end)]) {
				t.Fatalf("data run at %d starts with a zero block", start)
			}
		}
		pos = max(end, start)
		if start == s.Size() {
			break
		}
	}
	if runs < 3 {
		t.Fatalf("only %d data runs in a file with zero runs", runs)
	}
	if st, en, _ := s.NextData(s.Size()); st != s.Size() || en != s.Size() {
		t.Fatalf("NextData(Size) = %d, %d", st, en)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// TestStorageSkipsZeroParts: parts whose checksum is that of zeros are
// never requested, and read as zeros; a zero part in a manifest without
// checksums is fetched as any other.
func TestStorageSkipsZeroParts(t *testing.T) {
	data := make([]byte, 5*256<<10+1000)
	for i := range data[:256<<10] {
		data[i] = byte(i*7 + 1)
	}
	copy(data[3*256<<10:], bytes.Repeat([]byte("diskport"), 1000))
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := split(t, img, dir, 256<<10)
	for _, checked := range []bool{true, false} {
		c := f
		c.Parts = append([]Part(nil), f.Parts...)
		if !checked {
			c.SHA256 = ""
			for i := range c.Parts {
				c.Parts[i].SHA256 = ""
			}
		}
		sm, srv := served(t, c, dir)
		s, err := OpenStorage(context.Background(), sm, fastStore(), StorageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(testimg.ReadAll(t, s), data) {
			t.Fatalf("checked %v: read differs", checked)
		}
		if start, end, err := s.NextData(256 << 10); err != nil || start != 3*256<<10 || end != 3*256<<10+8192 {
			t.Errorf("checked %v: NextData after part 0 = %d, %d, %v; want the text in part 3", checked, start, end, err)
		}
		s.Close()
		for i, p := range sm.Parts {
			zero := i != 0 && i != 3
			want := 1
			if zero && checked {
				want = 0
			}
			if n := srv.count(p.Key); n != want {
				t.Errorf("checked %v: %s requested %d times, want %d", checked, p.Key, n, want)
			}
		}
	}
}

// TestStorageReadAheadSkipsConsumed: a reader that goes back a few chunks
// (as a VMDK reader does for its grain tables) fetches that chunk again if
// it was evicted, but reading ahead from there does not bring back the
// chunks after it, which the pass has consumed.
func TestStorageReadAheadSkipsConsumed(t *testing.T) {
	const chunk = 256 << 10
	f, dir, data := created(t, 4<<20, chunk)
	f, srv := served(t, f, dir)
	s, _ := OpenStorage(context.Background(), f, fastStore(), StorageOptions{Parallel: 2, CacheChunks: 4})
	defer s.Close()
	b := make([]byte, 64<<10)
	read := func(off int64) {
		if _, err := s.ReadAt(b, off); err != nil || !bytes.Equal(b, data[off:off+int64(len(b))]) {
			t.Fatalf("at %d: %v", off, err)
		}
	}
	for off := int64(0); off < 8*chunk; off += int64(len(b)) {
		read(off)
	}
	read(3 * chunk) // back 4 chunks: still "moving forward" for read-ahead
	read(8 * chunk)
	for i, p := range f.Parts[:9] {
		want := 1
		if i == 3 {
			want = 2 // evicted, and read again
		}
		if n := srv.count(p.Key); n > want {
			t.Errorf("%s fetched %d times, want at most %d", p.Key, n, want)
		}
	}
}
