package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/internal/testwait"
	"github.com/diskport/diskport/manifest"
)

// partsServer serves an image's manifest and 1 MiB parts over loopback
// HTTP, at rate bytes per second when rate > 0, counting the part bytes
// it sends.
type partsServer struct {
	*httptest.Server
	m    *manifest.Manifest
	dir  string
	sent atomic.Int64
	// hidden makes the manifest answer 404, as before its upload.
	hidden atomic.Bool
	// xml, when set, is served as the manifest instead of m.
	xml []byte
}

func newPartsServer(t testing.TB, image string, rate int64, edit func(m *manifest.Manifest, dir string)) *partsServer {
	t.Helper()
	return newPartsServerOpts(t, image, 1<<20, rate, edit)
}

// newPartsServerSized serves image in parts of partSize bytes, or in one
// part when single.
func newPartsServerSized(t *testing.T, image string, partSize int64, single bool) *partsServer {
	t.Helper()
	if single {
		st, err := os.Stat(image)
		if err != nil {
			t.Fatal(err)
		}
		partSize = st.Size()
	}
	return newPartsServerOpts(t, image, partSize, 0, nil)
}

func newPartsServerOpts(t testing.TB, image string, partSize, rate int64, edit func(m *manifest.Manifest, dir string)) *partsServer {
	t.Helper()
	dir := t.TempDir()
	format := ""
	if strings.HasSuffix(image, ".ova") {
		format = manifest.FormatOVA // the whole appliance, for ImportInstance
	}
	m, _, err := manifest.Create(context.Background(), image, dir, manifest.SplitOptions{PartSize: partSize, Format: format})
	if err != nil {
		t.Fatal(err)
	}
	ps := &partsServer{m: m, dir: dir}
	files := http.FileServer(http.Dir(dir))
	var mu sync.Mutex
	ps.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/image.manifest.xml" {
			if ps.hidden.Load() {
				http.NotFound(w, r)
				return
			}
			if ps.xml != nil {
				w.Write(ps.xml)
				return
			}
			w.Write(ps.m.Marshal())
			return
		}
		files.ServeHTTP(&countingWriter{ResponseWriter: w, ps: ps, rate: rate, mu: &mu}, r)
	}))
	t.Cleanup(ps.Close)
	for i := range m.Parts {
		m.Parts[i].GetURL = ps.URL + "/" + m.Parts[i].Key
	}
	if edit != nil {
		edit(m, dir)
	}
	return ps
}

func (ps *partsServer) manifestURL() string { return ps.URL + "/image.manifest.xml" }

type countingWriter struct {
	http.ResponseWriter
	ps   *partsServer
	rate int64
	mu   *sync.Mutex
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), 64<<10)
		if w.rate > 0 {
			w.mu.Lock()
			time.Sleep(time.Duration(k) * time.Second / time.Duration(w.rate))
			w.mu.Unlock()
		}
		m, err := w.ResponseWriter.Write(p[:k])
		n += m
		w.ps.sent.Add(int64(m))
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

func importVolume(t testing.TB, c *ec2.Client, format string, bytes int64, url string, gib int64) (task, vol string) {
	t.Helper()
	out, err := c.ImportVolume(context.Background(), &ec2.ImportVolumeInput{
		Image:  &types.DiskImageDetail{Format: types.DiskImageFormat(format), Bytes: aws.Int64(bytes), ImportManifestUrl: aws.String(url)},
		Volume: &types.VolumeDetail{Size: aws.Int64(gib)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ConversionTask.ConversionTaskId), aws.ToString(out.ConversionTask.ImportVolume.Volume.Id)
}

// TestConversionFailures: what the server finds wrong while converting
// fails the task, cancelled with a statusMessage saying why, and leaves no
// volume behind.
func TestConversionFailures(t *testing.T) {
	t.Parallel()
	golden := testimg.Golden(t, testimg.Spec{Size: 3 << 20, Seed: 3})
	vmdk := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	big := testimg.Create(t, "vmdk", "subformat=streamOptimized", 3<<30)
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	cases := []struct {
		name, image, format string
		edit                func(m *manifest.Manifest, dir string)
		bytesDelta, gib     int64
		want                string
	}{
		{"bytes not the declared format", vmdk, "RAW", func(m *manifest.Manifest, _ string) { m.FileFormat = "RAW" }, 0, 1, "VMDK"},
		{"Image.Format not the manifest's", vmdk, "VHD", nil, 0, 1, "file-format is VMDK"},
		{"wrong Image.Bytes", vmdk, "VMDK", nil, 1, 1, "Image.Bytes"},
		{"Volume.Size too small", big, "VMDK", nil, 0, 1, "does not fit"},
		{"a part fails its checksum", golden, "RAW", func(m *manifest.Manifest, dir string) {
			p := filepath.Join(dir, m.Parts[1].Key)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[100] ^= 1
			os.WriteFile(p, b, 0o644)
		}, 0, 1, "checksum"},
		{"a part URL off the allow list", golden, "RAW", func(m *manifest.Manifest, _ string) {
			m.Parts[0].GetURL = other.URL + "/x"
		}, 0, 1, "allow list"},
	}
	var servers []*partsServer
	var allow []string
	for _, c := range cases {
		ps := newPartsServer(t, c.image, 0, c.edit)
		servers = append(servers, ps)
		allow = append(allow, ps.Listener.Addr().String())
	}
	// One more that redirects the manifest to a host off the list.
	redirect := httptest.NewServer(http.RedirectHandler(other.URL+"/image.manifest.xml", http.StatusFound))
	defer redirect.Close()
	allow = append(allow, redirect.Listener.Addr().String())
	ts := startServer(t, "", allow...)
	c := ts.sdk(testKey, testSecret)
	check := func(t *testing.T, task, vol, want string) {
		state, msg := waitTask(t, c, task, time.Minute)
		if state != "cancelled" || !strings.HasPrefix(msg, "Failed: ") || !strings.Contains(msg, want) {
			t.Fatalf("task ended %s %q, want cancelled with a message about %q", state, msg, want)
		}
		t.Logf("statusMessage: %s", msg)
		noVolumeFiles(t, ts.dir, vol)
		if out, err := c.DescribeVolumes(context.Background(), &ec2.DescribeVolumesInput{}); err != nil || len(out.Volumes) != 0 {
			t.Fatalf("DescribeVolumes after a failure: %v %v", out, err)
		}
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := servers[i]
			task, vol := importVolume(t, c, tc.format, ps.m.Size+tc.bytesDelta, ps.manifestURL(), tc.gib)
			check(t, task, vol, tc.want)
		})
	}
	t.Run("manifest redirected off the allow list", func(t *testing.T) {
		task, vol := importVolume(t, c, "RAW", 512, redirect.URL+"/image.manifest.xml", 1)
		check(t, task, vol, "redirected off the allow list")
	})
}

// TestCancelMidConversion cancels a running conversion: it stops within
// a second, its partial volume is removed, and the task ends cancelled
// with the reason.
func TestCancelMidConversion(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 96 << 20, Seed: 9, ZeroPercent: 5})
	ps := newPartsServer(t, golden, 16<<20, nil)
	ts := startServer(t, "", ps.Listener.Addr().String())
	c := ts.sdk(testKey, testSecret)
	task, vol := importVolume(t, c, "RAW", ps.m.Size, ps.manifestURL(), 1)
	waitProgress(t, c, task, 1)
	start := time.Now()
	_, err := c.CancelConversionTask(context.Background(), &ec2.CancelConversionTaskInput{ConversionTaskId: aws.String(task), ReasonMessage: aws.String("changed my mind")})
	if err != nil {
		t.Fatal(err)
	}
	state, msg := waitTask(t, c, task, 10*time.Second)
	// The worker stops within a second; the bound leaves room for the
	// polling and for a race-enabled build on a busy 2-core machine (CI
	// runs two packages' tests at once).
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("cancelling took %v", took)
	}
	if state != "cancelled" || msg != "changed my mind" {
		t.Fatalf("cancelled task: %s %q", state, msg)
	}
	// Wait for the worker to let go, then nothing of the volume is left.
	testwait.Until(10*time.Second, func() bool { return volumeFilesGone(ts.dir, vol) })
	noVolumeFiles(t, ts.dir, vol)
	sent := ps.sent.Load()
	time.Sleep(500 * time.Millisecond)
	if ps.sent.Load() > sent+(2<<20) {
		t.Fatalf("parts still fetched after the cancellation")
	}
}

// waitProgress waits until the task's bytesConverted reaches pct percent
// of the image.
func waitProgress(t *testing.T, c *ec2.Client, task string, pct int64) int64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		out, err := c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{task}})
		if err != nil {
			t.Fatal(err)
		}
		ct := out.ConversionTasks[0]
		if ct.State != types.ConversionTaskStateActive {
			t.Fatalf("task %s is %s (%s) before reaching %d%%", task, ct.State, aws.ToString(ct.StatusMessage), pct)
		}
		iv := ct.ImportVolume
		if done := aws.ToInt64(iv.BytesConverted); done*100 >= pct*aws.ToInt64(iv.Image.Size) && done > 0 {
			if !strings.HasPrefix(aws.ToString(ct.StatusMessage), "Progress: ") {
				t.Fatalf("statusMessage while converting: %q", aws.ToString(ct.StatusMessage))
			}
			return done
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("task %s never reached %d%%", task, pct)
	return 0
}

// TestRestartResumes stops a server mid-conversion and starts another on
// the same data directory: the task carries on from the journal (the
// conversion reports bytes an earlier run converted) and the volume is
// identical to qemu-img's conversion.
func TestRestartResumes(t *testing.T) {
	t.Parallel()
	golden := testimg.Golden(t, testimg.Spec{Size: 96 << 20, Seed: 10, ZeroPercent: 5})
	image := testimg.Make(t, golden, "vmdk", "subformat=streamOptimized")
	ps := newPartsServer(t, image, 24<<20, nil)
	dir := t.TempDir()
	ts := startServer(t, dir, ps.Listener.Addr().String())
	c := ts.sdk(testKey, testSecret)
	task, vol := importVolume(t, c, "VMDK", ps.m.Size, ps.manifestURL(), 1)
	waitProgress(t, c, task, 50)
	ts.Close() // the workers stop; the task stays active
	before := ps.sent.Load()
	ts2 := startServer(t, dir, ps.Listener.Addr().String())
	c2 := ts2.sdk(testKey, testSecret)
	if state, msg := waitTask(t, c2, task, 2*time.Minute); state != "completed" {
		t.Fatalf("resumed task ended %s: %s", state, msg)
	}
	after := ps.sent.Load() - before
	t.Logf("image %d bytes; fetched %d before the restart, %d after", ps.m.FileSize(), before, after)
	if !resumed(ts2.logs.String(), vol) {
		t.Fatalf("the restarted server converted %s from zero:\n%s", vol, ts2.logs.String())
	}
	sameVolume(t, ts2.VolumePath(vol), testimg.QemuRaw(t, image), 1<<30)
}

// resumed reports whether a server's log says the volume's conversion
// continued work an earlier run had done.
func resumed(log, vol string) bool {
	for _, line := range strings.Split(log, "\n") {
		var e struct {
			Event, Volume string
			Resumed       int64 `json:"resumed_bytes"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Event == "converted" && e.Volume == vol {
			return e.Resumed > 0
		}
	}
	return false
}

// TestQueue: with both workers busy a third task waits, "Pending: queued",
// and cancelling it (and the running ones) ends each cancelled with its
// reason.
func TestQueue(t *testing.T) {
	golden := testimg.Golden(t, testimg.Spec{Size: 32 << 20, Seed: 11, ZeroPercent: 5})
	ps := newPartsServer(t, golden, 4<<20, nil)
	ts := startServer(t, "", ps.Listener.Addr().String())
	c := ts.sdk(testKey, testSecret)
	var tasks []string
	for range 3 {
		task, _ := importVolume(t, c, "RAW", ps.m.Size, ps.manifestURL(), 1)
		tasks = append(tasks, task)
	}
	waitProgress(t, c, tasks[0], 1)
	waitProgress(t, c, tasks[1], 1)
	out, err := c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{tasks[2]}})
	if err != nil {
		t.Fatal(err)
	}
	if ct := out.ConversionTasks[0]; ct.State != types.ConversionTaskStateActive || aws.ToString(ct.StatusMessage) != statusQueued ||
		aws.ToInt64(ct.ImportVolume.BytesConverted) != 0 {
		t.Fatalf("the third task: %s %q", ct.State, aws.ToString(ct.StatusMessage))
	}
	for i := len(tasks) - 1; i >= 0; i-- {
		reason := "reason " + tasks[i]
		if _, err := c.CancelConversionTask(context.Background(), &ec2.CancelConversionTaskInput{ConversionTaskId: aws.String(tasks[i]), ReasonMessage: aws.String(reason)}); err != nil {
			t.Fatal(err)
		}
		if state, msg := waitTask(t, c, tasks[i], 5*time.Second); state != "cancelled" || msg != reason {
			t.Fatalf("task %d: %s %q", i, state, msg)
		}
	}
}

// TestLateUpload: ImportVolume comes first and the upload after it, as
// ec2-import-volume and euca2ools do. The task waits for the manifest,
// then says how many parts are there, and converts once all are.
func TestLateUpload(t *testing.T) {
	t.Parallel()
	golden := testimg.Golden(t, testimg.Spec{Size: 4 << 20, Seed: 13})
	image := testimg.Make(t, golden, "vpc", "subformat=dynamic")
	ps := newPartsServer(t, image, 0, nil)
	ps.hidden.Store(true)
	aside := t.TempDir()
	for _, p := range ps.m.Parts {
		if err := os.Rename(filepath.Join(ps.dir, p.Key), filepath.Join(aside, p.Key)); err != nil {
			t.Fatal(err)
		}
	}
	ts := startServer(t, "", ps.Listener.Addr().String())
	c := ts.sdk(testKey, testSecret)
	task, vol := importVolume(t, c, "VHD", ps.m.Size, ps.manifestURL(), 1)
	waitStatus := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{task}})
			if err != nil {
				t.Fatal(err)
			}
			ct := out.ConversionTasks[0]
			if aws.ToString(ct.StatusMessage) == want && ct.State == types.ConversionTaskStateActive {
				return
			}
			if ct.State != types.ConversionTaskStateActive || time.Now().After(deadline) {
				t.Fatalf("waiting for %q: task %s %q", want, ct.State, aws.ToString(ct.StatusMessage))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitStatus("Pending: the manifest is not uploaded yet")
	ps.hidden.Store(false)
	n := len(ps.m.Parts)
	waitStatus(fmt.Sprintf("Pending: 0 of %d parts uploaded", n))
	for i := 0; i < n-1; i++ {
		os.Rename(filepath.Join(aside, ps.m.Parts[i].Key), filepath.Join(ps.dir, ps.m.Parts[i].Key))
	}
	waitStatus(fmt.Sprintf("Pending: %d of %d parts uploaded", n-1, n))
	os.Rename(filepath.Join(aside, ps.m.Parts[n-1].Key), filepath.Join(ps.dir, ps.m.Parts[n-1].Key))
	if state, msg := waitTask(t, c, task, time.Minute); state != "completed" {
		t.Fatalf("task ended %s: %s", state, msg)
	}
	sameVolume(t, ts.VolumePath(vol), testimg.QemuRaw(t, image), 1<<30)
}

// TestUploadExpires: a task whose parts never arrive is cancelled at its
// expirationTime, with a status message saying so.
func TestUploadExpires(t *testing.T) {
	t.Parallel()
	golden := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 14})
	ps := newPartsServer(t, golden, 0, nil)
	ps.hidden.Store(true)
	ts := startServerWith(t, "", func(c *Config) { c.Expiration = 2 * time.Second }, ps.Listener.Addr().String())
	c := ts.sdk(testKey, testSecret)
	task, vol := importVolume(t, c, "RAW", ps.m.Size, ps.manifestURL(), 1)
	state, msg := waitTask(t, c, task, 10*time.Second)
	if state != "cancelled" || !strings.HasPrefix(msg, "Import task is expired") {
		t.Fatalf("task ended %s %q", state, msg)
	}
	noVolumeFiles(t, ts.dir, vol)
}
