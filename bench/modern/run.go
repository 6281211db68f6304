//go:build linux

package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/diskport/diskport/manifest"
	"github.com/diskport/diskport/manifest/parts"
	"github.com/minio/minio-go/v7"
)

// A sample is one timed run.
type sample struct{ wall, cpu time.Duration }

// A pairRow is the rounds of one comparison: server[i] and convert[i]
// ran in round i.
type pairRow struct {
	name            string
	server, convert []sample
	steps           []string // the server's StatusMessage steps seen, in order
}

// bench holds what the rounds share.
type bench struct {
	o       options
	bin     string
	work    string
	mc      *minio.Client
	srv     *serveProc
	c       *ec2.Client
	bucket  string
	key     string
	out     string // the export bucket
	size    int64  // the image object's size
	started time.Time
}

const pollEvery = 50 * time.Millisecond

func run() error {
	o := parseFlags()
	ctx := context.Background()
	info, image, err := streamImage(o)
	if err != nil {
		return err
	}
	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp(o.cache, "modern-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	bin, err := buildDiskport(work)
	if err != nil {
		return fmt.Errorf("building diskport: %v", err)
	}
	ms, err := startMinio(filepath.Join(work, "minio"))
	if err != nil {
		return err
	}
	defer ms.stop()
	mc, err := ms.client()
	if err != nil {
		return err
	}
	b := &bench{o: o, bin: bin, work: work, mc: mc, bucket: "bench", key: "disk.vmdk", out: "bench-out", started: time.Now()}
	logf("uploading %s", image)
	if err := uploadImage(ctx, mc, b.bucket, b.key, image); err != nil {
		return err
	}
	if err := mc.MakeBucket(ctx, b.out, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		return err
	}
	st, _ := os.Stat(image)
	b.size = st.Size()
	if b.srv, err = startServe(bin, filepath.Join(work, "data"), ms.endpoint, o.workers, o.serveEnv, o.serveLog); err != nil {
		return err
	}
	defer b.srv.stop()
	b.c = b.srv.ec2Client()
	loadBefore := loadAverage()

	var rows []pairRow
	var snap, ami string
	if o.pairs {
		imp, keep, err := b.importRounds(ctx)
		if err != nil {
			return err
		}
		if ami, err = b.register(ctx, keep); err != nil {
			return err
		}
		rows, snap = []pairRow{imp}, keep
		if o.exports {
			exp, err := b.exportRounds(ctx, keep, ami)
			if err != nil {
				return err
			}
			rows = append(rows, exp)
		}
	} else if snap, _, err = b.importOnce(ctx); err != nil {
		return err
	} else if ami, err = b.register(ctx, snap); err != nil {
		return err
	}
	var lat *latencyResult
	if o.latency {
		if lat, err = b.latency(ctx, ami); err != nil {
			return err
		}
	}
	rep := report(b, info, rows, lat, loadBefore, loadAverage())
	fmt.Print(rep)
	if o.out != "" {
		f, err := os.OpenFile(o.out, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteString("\n" + rep)
		return err
	}
	return nil
}

// quiesce removes what the last runs left and flushes the page cache's
// dirty pages, untimed.
func quiesce(paths ...string) {
	for _, p := range paths {
		os.Remove(p)
	}
	exec.Command("sync").Run()
}

// timeCommand runs the diskport binary and returns its wall and CPU time.
func (b *bench) timeCommand(args ...string) (sample, error) {
	cmd := exec.Command(b.bin, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return sample{}, fmt.Errorf("diskport %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return sample{wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}, nil
}

// manifestFile writes a one-part import manifest of the image object
// whose URLs are presigned, for `diskport convert --manifest`.
func (b *bench) manifestFile(ctx context.Context) (string, error) {
	get, err := b.mc.PresignedGetObject(ctx, b.bucket, b.key, 6*time.Hour, nil)
	if err != nil {
		return "", err
	}
	head, err := b.mc.PresignedHeadObject(ctx, b.bucket, b.key, 6*time.Hour, nil)
	if err != nil {
		return "", err
	}
	m := &manifest.Manifest{Version: manifest.Version, FileFormat: "VMDK", Size: b.size,
		VolumeSize: int64(math.Ceil(float64(b.o.realSize) / (1 << 30))),
		Parts:      []parts.Part{{Key: b.key, Length: b.size, GetURL: get.String(), HeadURL: head.String()}}}
	path := filepath.Join(b.work, "disk-manifest.xml")
	return path, os.WriteFile(path, m.Marshal(), 0o644)
}

// importRounds alternates ImportSnapshot with convert of the same object;
// it returns the row and a snapshot id kept for the exports.
func (b *bench) importRounds(ctx context.Context) (pairRow, string, error) {
	row := pairRow{name: "import"}
	man, err := b.manifestFile(ctx)
	if err != nil {
		return row, "", err
	}
	out := filepath.Join(b.work, "convert.raw")
	// An untimed run of each warms the page cache and MinIO.
	if _, err := b.timeCommand("convert", "--manifest", man, out); err != nil {
		return row, "", err
	}
	keep, _, err := b.importOnce(ctx)
	if err != nil {
		return row, "", err
	}
	for r := 0; r < b.o.runs; r++ {
		var s, c sample
		var snap string
		var steps []string
		serverRun := func() error {
			quiesce()
			s, snap, steps, err = b.timedImport(ctx)
			return err
		}
		convertRun := func() error {
			quiesce(out)
			c, err = b.timeCommand("convert", "--manifest", man, out)
			return err
		}
		if err := inOrder(r, serverRun, convertRun); err != nil {
			return row, "", err
		}
		row.server, row.convert, row.steps = append(row.server, s), append(row.convert, c), steps
		logf("import round %d: server %.2fs (cpu %.2fs), convert %.2fs (cpu %.2fs)", r, s.wall.Seconds(), s.cpu.Seconds(), c.wall.Seconds(), c.cpu.Seconds())
		if _, err := b.c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(snap)}); err != nil {
			return row, "", err
		}
	}
	os.Remove(out)
	return row, keep, nil
}

// inOrder runs a then b in even rounds, b then a in odd ones.
func inOrder(round int, a, b func() error) error {
	if round%2 == 1 {
		a, b = b, a
	}
	if err := a(); err != nil {
		return err
	}
	return b()
}

// importInput is the ImportSnapshot of the image object.
func (b *bench) importInput() *ec2.ImportSnapshotInput {
	return &ec2.ImportSnapshotInput{DiskContainer: &types.SnapshotDiskContainer{Format: aws.String("VMDK"),
		UserBucket: &types.UserBucket{S3Bucket: aws.String(b.bucket), S3Key: aws.String(b.key)}}}
}

// importOnce starts an ImportSnapshot of the image object.
func (b *bench) importOnce(ctx context.Context) (string, []string, error) {
	out, err := b.c.ImportSnapshot(ctx, b.importInput())
	if err != nil {
		return "", nil, err
	}
	return b.waitImport(ctx, aws.ToString(out.ImportTaskId))
}

// waitImport polls an import task until it ends and returns its snapshot
// and the status messages seen.
func (b *bench) waitImport(ctx context.Context, id string) (string, []string, error) {
	var steps []string
	for {
		out, err := b.c.DescribeImportSnapshotTasks(ctx, &ec2.DescribeImportSnapshotTasksInput{ImportTaskIds: []string{id}})
		if err != nil {
			return "", steps, err
		}
		d := out.ImportSnapshotTasks[0].SnapshotTaskDetail
		msg := aws.ToString(d.StatusMessage)
		if len(steps) == 0 || steps[len(steps)-1] != msg {
			steps = append(steps, msg)
		}
		switch aws.ToString(d.Status) {
		case "active":
		case "completed":
			return aws.ToString(d.SnapshotId), steps, nil
		default:
			return "", steps, fmt.Errorf("import %s: %s: %s", id, aws.ToString(d.Status), msg)
		}
		time.Sleep(pollEvery)
	}
}

// timedImport times an ImportSnapshot from the call to the first
// Describe that sees it completed.
func (b *bench) timedImport(ctx context.Context) (sample, string, []string, error) {
	cpu0, start := b.srv.cpu(), time.Now()
	snap, steps, err := b.importOnce(ctx)
	return sample{time.Since(start), b.srv.cpu() - cpu0}, snap, steps, err
}

// exportRounds alternates ExportImage of ami, an image over snap, with
// convert -O vmdk of the snapshot's file.
func (b *bench) exportRounds(ctx context.Context, snap, ami string) (pairRow, error) {
	row := pairRow{name: "export"}
	src := filepath.Join(b.srv.data, "snapshots", snap+".raw")
	out := filepath.Join(b.work, "convert.vmdk")
	convertArgs := []string{"convert", "-O", "vmdk", "--subformat", "streamOptimized", "--force", src, out}
	if _, err := b.timeCommand(convertArgs...); err != nil {
		return row, err
	}
	if _, _, err := b.timedExport(ctx, ami); err != nil {
		return row, err
	}
	for r := 0; r < b.o.runs; r++ {
		var s, c sample
		var steps []string
		var err error
		serverRun := func() error {
			quiesce()
			s, steps, err = b.timedExport(ctx, ami)
			return err
		}
		convertRun := func() error {
			quiesce(out)
			c, err = b.timeCommand(convertArgs...)
			return err
		}
		if err := inOrder(r, serverRun, convertRun); err != nil {
			return row, err
		}
		row.server, row.convert, row.steps = append(row.server, s), append(row.convert, c), steps
		logf("export round %d: server %.2fs (cpu %.2fs), convert %.2fs (cpu %.2fs)", r, s.wall.Seconds(), s.cpu.Seconds(), c.wall.Seconds(), c.cpu.Seconds())
	}
	os.Remove(out)
	return row, nil
}

// register makes an image whose root device is snap.
func (b *bench) register(ctx context.Context, snap string) (string, error) {
	ri, err := b.c.RegisterImage(ctx, &ec2.RegisterImageInput{Name: aws.String("bench-" + snap), RootDeviceName: aws.String("/dev/sda1"),
		BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &types.EbsBlockDevice{SnapshotId: aws.String(snap)}}}})
	if err != nil {
		return "", err
	}
	return aws.ToString(ri.ImageId), nil
}

// startExport starts an ExportImage of ami as a VMDK.
func (b *bench) startExport(ctx context.Context, ami string) (string, error) {
	out, err := b.c.ExportImage(ctx, &ec2.ExportImageInput{ImageId: aws.String(ami), DiskImageFormat: types.DiskImageFormatVmdk,
		S3ExportLocation: &types.ExportTaskS3LocationRequest{S3Bucket: aws.String(b.out), S3Prefix: aws.String("exports/")},
		RoleName:         aws.String("vmimport")})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.ExportImageTaskId), nil
}

// waitExport polls an export task until it ends, then removes its object.
func (b *bench) waitExport(ctx context.Context, id string) ([]string, error) {
	steps, err := b.waitExportTimed(ctx, id)
	if err != nil {
		return steps, err
	}
	return steps, b.mc.RemoveObject(ctx, b.out, "exports/"+id+".vmdk", minio.RemoveObjectOptions{})
}

// timedExport times an ExportImage from the call to the first Describe
// that sees it completed.
func (b *bench) timedExport(ctx context.Context, ami string) (sample, []string, error) {
	cpu0, start := b.srv.cpu(), time.Now()
	id, err := b.startExport(ctx, ami)
	if err != nil {
		return sample{}, nil, err
	}
	wall := time.Duration(0)
	steps, err := func() ([]string, error) {
		defer func() { wall = time.Since(start) }()
		return b.waitExportTimed(ctx, id)
	}()
	if err != nil {
		return sample{}, steps, err
	}
	s := sample{wall, b.srv.cpu() - cpu0}
	return s, steps, b.mc.RemoveObject(ctx, b.out, "exports/"+id+".vmdk", minio.RemoveObjectOptions{})
}

// waitExportTimed is waitExport without the removal, so that it stays
// out of the time.
func (b *bench) waitExportTimed(ctx context.Context, id string) ([]string, error) {
	var steps []string
	for {
		out, err := b.c.DescribeExportImageTasks(ctx, &ec2.DescribeExportImageTasksInput{ExportImageTaskIds: []string{id}})
		if err != nil {
			return steps, err
		}
		t := out.ExportImageTasks[0]
		msg := aws.ToString(t.StatusMessage)
		if len(steps) == 0 || steps[len(steps)-1] != msg {
			steps = append(steps, msg)
		}
		switch aws.ToString(t.Status) {
		case "active":
		case "completed":
			return steps, nil
		default:
			return steps, fmt.Errorf("export %s: %s: %s", id, aws.ToString(t.Status), msg)
		}
		time.Sleep(pollEvery)
	}
}

// median of the wall or CPU times of samples.
func median(s []sample, cpu bool) time.Duration {
	var d []time.Duration
	for _, x := range s {
		if cpu {
			d = append(d, x.cpu)
		} else {
			d = append(d, x.wall)
		}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	if len(d) == 0 {
		return 0
	}
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

// geomeanRatio is the geometric mean over rounds of server/convert wall.
func geomeanRatio(r pairRow) float64 {
	var sum float64
	for i := range r.server {
		sum += math.Log(r.server[i].wall.Seconds() / r.convert[i].wall.Seconds())
	}
	return math.Exp(sum / float64(len(r.server)))
}
