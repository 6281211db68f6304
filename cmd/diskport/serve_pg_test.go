//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/internal/pgtest"
	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/internal/testwait"
	"github.com/diskport/diskport/server/store"
)

const (
	pgKey    = "AKIASERVEPGTEST00001"
	pgSecret = "serve-pg-test-secret"
)

// cluster is several serve processes on one PostgreSQL and one MinIO.
type cluster struct {
	t     *testing.T
	bin   string
	pg    *pgtest.Server
	s3    *s3test.Server
	s3url string // MinIO, or a throttling proxy in front of it
	procs []*serveProc
	args  [][]string
	st    *store.DB
}

func newCluster(t *testing.T, rate int64) *cluster {
	c := &cluster{t: t, bin: buildCLI(t), pg: pgtest.Start(t), s3: s3test.Shared(t)}
	c.s3url = c.s3.Endpoint
	if rate > 0 {
		target, _ := url.Parse(c.s3.Endpoint)
		proxy := httptest.NewServer(throttle(httputil.NewSingleHostReverseProxy(target), rate))
		t.Cleanup(proxy.Close)
		c.s3url = proxy.URL
	}
	return c
}

// start starts n servers named s0, s1, …; with shared set they share one
// volume directory.
func (c *cluster) start(n int, shared bool, extra ...string) {
	t := c.t
	vols := filepath.Join(t.TempDir(), "volumes")
	for i := range n {
		args := []string{"--data", filepath.Join(t.TempDir(), "data"), "--s3-endpoint", c.s3url, "--store", c.pg.URL,
			"--server-id", fmt.Sprintf("s%d", i)}
		if shared {
			args = append(args, "--volumes", vols)
		}
		args = append(args, extra...)
		c.args = append(c.args, args)
		c.procs = append(c.procs, startServeArgs(t, c.bin, args, "DISKPORT_ACCESS_KEY_ID="+pgKey, "DISKPORT_SECRET_ACCESS_KEY="+pgSecret))
	}
	st, err := store.OpenPostgres(context.Background(), c.pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c.st = st
}

func (c *cluster) client(i int) *ec2.Client {
	return ec2.NewFromConfig(aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(c.procs[i].url), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider(pgKey, pgSecret, "")})
}

// volumeDir is server i's volume directory.
func (c *cluster) volumeDir(i int) string {
	a := c.args[i]
	for j := range a {
		if a[j] == "--volumes" {
			return a[j+1]
		}
	}
	return filepath.Join(a[1], "volumes")
}

func (c *cluster) account() string {
	k, err := c.st.AccessKey(context.Background(), pgKey)
	if err != nil {
		c.t.Fatal(err)
	}
	return k.AccountID
}

// upload uploads image with `diskport upload` and returns its manifest URL.
func (c *cluster) upload(image string) string {
	up := exec.Command(c.bin, "upload", "--endpoint", c.s3url, "--bucket", c.s3.Bucket(c.t), "--create-bucket", "--part-size", "1MiB", image)
	up.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+c.s3.AccessKey, "AWS_SECRET_ACCESS_KEY="+c.s3.SecretKey, "AWS_REGION="+c.s3.Region)
	out, err := up.Output()
	if err != nil {
		c.t.Fatalf("upload: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func (c *cluster) importVolume(i int, image, format string) (task, vol string) {
	iv, err := c.client(i).ImportVolume(context.Background(), &ec2.ImportVolumeInput{
		Image:  &types.DiskImageDetail{Format: types.DiskImageFormat(format), Bytes: aws.Int64(g64(c.t, image)), ImportManifestUrl: aws.String(c.upload(image))},
		Volume: &types.VolumeDetail{Size: aws.Int64(1)},
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return aws.ToString(iv.ConversionTask.ConversionTaskId), aws.ToString(iv.ConversionTask.ImportVolume.Volume.Id)
}

// sameAsQemu checks the 1 GiB volume at path against qemu-img's
// conversion of image.
func sameAsQemu(t *testing.T, path, image string) {
	t.Helper()
	testimg.SameVolume(t, path, testimg.QemuRaw(t, image), 1<<30)
}

// await polls server i until every task is completed.
func (c *cluster) await(i int, tasks []string, timeout time.Duration) {
	t := c.t
	failures := 0
	for deadline := time.Now().Add(timeout); ; {
		dt, err := c.client(i).DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{ConversionTaskIds: tasks})
		if err != nil {
			// One poll's connection dropped once under make test's load
			// (a closed connection while reading the body); a server
			// that keeps failing fails the test.
			if failures++; failures == 5 {
				t.Fatalf("%v\n%s", err, c.procs[i].log())
			}
			t.Logf("poll %d failed: %v", failures, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		failures = 0
		done := 0
		for _, ct := range dt.ConversionTasks {
			switch ct.State {
			case types.ConversionTaskStateCompleted:
				done++
			case types.ConversionTaskStateActive:
			default:
				t.Fatalf("task %s is %s: %s", aws.ToString(ct.ConversionTaskId), ct.State, aws.ToString(ct.StatusMessage))
			}
		}
		if done == len(tasks) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d tasks completed after %v\n%s", done, len(tasks), timeout, c.procs[0].log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServePostgresThreeServers: three servers on one database, thirty
// ImportVolume tasks submitted through the first and polled through the
// second: all complete, each claimed once, each volume on the server the
// store names and identical to qemu-img's conversion; DescribeVolumes
// answers the same from every server.
func TestServePostgresThreeServers(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a PostgreSQL cluster of serve processes")
	}
	t.Parallel()
	// Throttled, so that each conversion lasts long enough for the other
	// servers to claim the next tasks.
	c := newCluster(t, 4<<20)
	c.start(3, false)
	const n = 30
	var tasks, vols, images []string
	for i := range n {
		g := testimg.Golden(t, testimg.Spec{Size: 4 << 20, Seed: uint64(170 + i)})
		image := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
		task, vol := c.importVolume(0, image, "VMDK")
		tasks, vols, images = append(tasks, task), append(vols, vol), append(images, image)
	}
	c.await(1, tasks, 3*time.Minute)
	ctx := context.Background()
	acct := c.account()
	ran := map[string]int{}
	for i, id := range tasks {
		cl, err := c.st.Claims(ctx, id)
		if err != nil || len(cl) != 1 {
			t.Fatalf("task %s's claims: %+v, %v; want one", id, cl, err)
		}
		vs, err := c.st.Volumes(ctx, acct, []string{vols[i]})
		if err != nil || vs[0].Server != cl[0].Server {
			t.Fatalf("volume %s is held by %q, the task ran on %q (%v)", vols[i], vs[0].Server, cl[0].Server, err)
		}
		ran[cl[0].Server]++
		var srv int
		fmt.Sscanf(cl[0].Server, "s%d", &srv)
		sameAsQemu(t, filepath.Join(c.volumeDir(srv), vols[i]+".raw"), images[i])
		for j := range 3 {
			if j != srv {
				if _, err := os.Stat(filepath.Join(c.volumeDir(j), vols[i]+".raw")); err == nil {
					t.Errorf("volume %s also on server s%d", vols[i], j)
				}
			}
		}
	}
	t.Logf("tasks run per server: %v", ran)
	if len(ran) < 2 {
		t.Errorf("all the tasks ran on one server: %v", ran)
	}
	// DeleteVolume through a server that does not hold the volume: its
	// holder removes the file.
	var holder int
	fmt.Sscanf(func() string { cl, _ := c.st.Claims(ctx, tasks[0]); return cl[0].Server }(), "s%d", &holder)
	if _, err := c.client((holder+1)%3).DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(vols[0])}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(filepath.Join(c.volumeDir(holder), vols[0]+".raw")); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("s%d never removed the volume deleted through s%d", holder, (holder+1)%3)
		}
		time.Sleep(100 * time.Millisecond)
	}
	vols = vols[1:]
	for j := range 3 {
		dv, err := c.client(j).DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: vols})
		if err != nil || len(dv.Volumes) != n-1 {
			t.Fatalf("DescribeVolumes on s%d: %v, %v", j, dv, err)
		}
		for _, v := range dv.Volumes {
			if v.State != types.VolumeStateAvailable {
				t.Fatalf("s%d: volume %s is %s", j, aws.ToString(v.VolumeId), v.State)
			}
		}
	}
}

// takeoverSetup starts two servers sharing a volume directory with a 2 s
// lease, submits one slow conversion and returns once a third of it is
// converted, with the index of the server running it.
func takeoverSetup(t *testing.T) (c *cluster, image, task, vol string, owner int) {
	c = newCluster(t, 8<<20)
	c.start(2, true, "--lease-timeout", "2s")
	g := testimg.Golden(t, testimg.Spec{Size: 64 << 20, Seed: 23, ZeroPercent: 5})
	image = testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
	task, vol = c.importVolume(0, image, "VMDK")
	ctx := context.Background()
	acct := c.account()
	for deadline := time.Now().Add(time.Minute); ; {
		tk, err := c.st.Task(ctx, acct, task)
		if err != nil {
			t.Fatal(err)
		}
		if tk.State != store.TaskActive {
			t.Fatalf("task %s before the takeover: %s", tk.State, tk.StatusMessage)
		}
		if tk.Volumes[0].BytesConverted*3 >= g64(t, g) {
			fmt.Sscanf(tk.LeaseOwner, "s%d", &owner)
			return c, image, task, vol, owner
		}
		if time.Now().After(deadline) {
			t.Fatal("the conversion never got a third of the way")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitTakeover waits until the task has a second claim, by the other
// server, and returns how long that took.
func awaitTakeover(t *testing.T, c *cluster, task string, owner int, limit time.Duration) time.Duration {
	start := time.Now()
	for {
		cl, err := c.st.Claims(context.Background(), task)
		if err != nil {
			t.Fatal(err)
		}
		if len(cl) >= 2 {
			if want := fmt.Sprintf("s%d", 1-owner); cl[1].Server != want || len(cl) != 2 {
				t.Fatalf("claims after the takeover: %+v, want a second by %s", cl, want)
			}
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("no takeover within %v", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServePostgresKill9Takeover: the server running a conversion is
// killed with SIGKILL; the other takes the task over within the lease
// (2 s) plus a few seconds, resumes from the journal in the shared
// volume directory, says so in the statusMessage, and finishes a volume
// identical to qemu-img's.
func TestServePostgresKill9Takeover(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a PostgreSQL cluster of serve processes")
	}
	t.Parallel()
	c, image, task, vol, owner := takeoverSetup(t)
	p := c.procs[owner]
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
	took := awaitTakeover(t, c, task, owner, 2*time.Second+6*time.Second)
	t.Logf("taken over %v after the kill", took)
	other := 1 - owner
	sawNote := false
	for deadline := time.Now().Add(2 * time.Minute); ; {
		dt, err := c.client(other).DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{task}})
		if err != nil {
			t.Fatal(err)
		}
		ct := dt.ConversionTasks[0]
		if strings.Contains(aws.ToString(ct.StatusMessage), "taken over from s") {
			sawNote = sawNote || strings.Contains(aws.ToString(ct.StatusMessage), "resuming from its journal")
			if !sawNote {
				t.Fatalf("statusMessage after the takeover: %q", aws.ToString(ct.StatusMessage))
			}
		}
		if ct.State == types.ConversionTaskStateCompleted {
			break
		}
		if ct.State != types.ConversionTaskStateActive || time.Now().After(deadline) {
			t.Fatalf("after the takeover the task is %s: %s\n%s", ct.State, aws.ToString(ct.StatusMessage), c.procs[other].log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !sawNote {
		t.Error("the statusMessage never said the task was taken over and resumed from the journal")
	}
	sameAsQemu(t, filepath.Join(c.volumeDir(other), vol+".raw"), image)
	m := httpGet(t, c.procs[other].url+"/metrics", 200)
	for _, want := range []string{"diskport_lease_takeovers_total 1", `diskport_tasks_finished_total{state="completed"} 1`,
		`diskport_api_request_duration_seconds_count{action="DescribeConversionTasks",code="OK"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics of the new owner has no %q", want)
		}
	}
	for _, line := range strings.Split(c.procs[other].log(), "\n") {
		if strings.Contains(line, `"event":"converted"`) {
			t.Logf("the new owner: %s", line)
			if strings.Contains(line, `"resumed_bytes":0,`) {
				t.Error("the new owner converted everything again: nothing resumed from the journal")
			}
		}
	}
}

// TestServePostgresPausedWorker: the server running a conversion is
// stopped (SIGSTOP) past its lease; the other takes the task over and
// completes it; woken (SIGCONT), the old worker is fenced: the task,
// its volume's progress and the volume's bytes stay the new owner's.
func TestServePostgresPausedWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a PostgreSQL cluster of serve processes")
	}
	t.Parallel()
	c, image, task, vol, owner := takeoverSetup(t)
	p := c.procs[owner]
	p.cmd.Process.Signal(syscall.SIGSTOP)
	awaitTakeover(t, c, task, owner, 2*time.Second+6*time.Second)
	c.await(1-owner, []string{task}, 2*time.Minute)
	ctx := context.Background()
	acct := c.account()
	before, err := c.st.Task(ctx, acct, task)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGCONT)
	// The woken worker renews within a second and finds its lease gone.
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.log(), `"event":"fenced"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the woken worker never noticed its lease was gone:\n%s", p.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	after, err := c.st.Task(ctx, acct, task)
	if err != nil {
		t.Fatal(err)
	}
	if after.State != store.TaskCompleted || after.StatusMessage != before.StatusMessage ||
		after.Volumes[0].BytesConverted != before.Volumes[0].BytesConverted || after.Volumes[0].Server != fmt.Sprintf("s%d", 1-owner) {
		t.Fatalf("the woken worker changed the task: before %+v %+v, after %+v %+v", before, before.Volumes[0], after, after.Volumes[0])
	}
	sameAsQemu(t, filepath.Join(c.volumeDir(0), vol+".raw"), image)
}

// TestServePostgresRestart: PostgreSQL stops (immediate: as a crash)
// while two servers convert four volumes, and starts again a few seconds
// later; a call made while it is down is ServiceUnavailable, and every
// task still completes with a volume identical to qemu-img's.
func TestServePostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a PostgreSQL cluster of serve processes")
	}
	t.Parallel()
	c := newCluster(t, 8<<20)
	c.start(2, true, "--lease-timeout", "2s")
	var tasks, vols, images []string
	for i := range 4 {
		g := testimg.Golden(t, testimg.Spec{Size: 16 << 20, Seed: uint64(190 + i), ZeroPercent: 5})
		image := testimg.Make(t, g, "vmdk", "subformat=streamOptimized")
		task, vol := c.importVolume(i%2, image, "VMDK")
		tasks, vols, images = append(tasks, task), append(vols, vol), append(images, image)
	}
	// PostgreSQL goes down while the servers convert: wait until one has.
	ctx, acct := context.Background(), c.account()
	testwait.For(t, time.Minute, "a conversion under way", func() bool {
		for _, id := range tasks {
			tk, err := c.st.Task(ctx, acct, id)
			if err != nil {
				t.Fatal(err)
			}
			if tk.Volumes[0].BytesConverted > 0 {
				return true
			}
		}
		return false
	})
	c.pg.Stop()
	_, err := c.client(0).DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{})
	if err == nil || !strings.Contains(err.Error(), "ServiceUnavailable") {
		t.Errorf("a call while PostgreSQL is down: %v, want ServiceUnavailable", err)
	}
	httpGet(t, c.procs[1].url+"/readyz", 503)
	httpGet(t, c.procs[1].url+"/healthz", 200)
	time.Sleep(3 * time.Second)
	c.pg.Start()
	httpGet(t, c.procs[1].url+"/readyz", 200)
	c.await(1, tasks, 3*time.Minute)
	for i := range tasks {
		sameAsQemu(t, filepath.Join(c.volumeDir(0), vols[i]+".raw"), images[i])
	}
}

// httpGet GETs url, checks the status and returns the body.
func httpGet(t *testing.T, url string, status int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("GET %s: %s, want %d: %s", url, resp.Status, status, b)
	}
	return string(b)
}
