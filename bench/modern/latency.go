//go:build linux

package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"golang.org/x/sync/errgroup"
)

// latencyResult is the latencies of cheap actions called while tasks ran.
type latencyResult struct {
	byAction map[string][]time.Duration
	all      []time.Duration
	idle     []time.Duration // the same calls with no task running
	wall     time.Duration   // from the first task started to the last ended
	imports  int
	exports  int
}

// cheapActions are called in turn by each prober.
var cheapActions = []struct {
	name string
	call func(ctx context.Context, c *ec2.Client, ids *taskIDs) error
}{
	{"DescribeImportSnapshotTasks", func(ctx context.Context, c *ec2.Client, ids *taskIDs) error {
		_, err := c.DescribeImportSnapshotTasks(ctx, &ec2.DescribeImportSnapshotTasksInput{ImportTaskIds: ids.imports})
		return err
	}},
	{"DescribeExportImageTasks", func(ctx context.Context, c *ec2.Client, ids *taskIDs) error {
		_, err := c.DescribeExportImageTasks(ctx, &ec2.DescribeExportImageTasksInput{ExportImageTaskIds: ids.exports})
		return err
	}},
	{"DescribeImportSnapshotTasks (all)", func(ctx context.Context, c *ec2.Client, ids *taskIDs) error {
		_, err := c.DescribeImportSnapshotTasks(ctx, &ec2.DescribeImportSnapshotTasksInput{})
		return err
	}},
	{"DescribeSnapshots", func(ctx context.Context, c *ec2.Client, ids *taskIDs) error {
		_, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
		return err
	}},
	{"DescribeImages", func(ctx context.Context, c *ec2.Client, ids *taskIDs) error {
		_, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
		return err
	}},
	{"DescribeVolumes", func(ctx context.Context, c *ec2.Client, ids *taskIDs) error {
		_, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
		return err
	}},
}

// idleProbe is how long the cheap actions are called before the tasks
// start.
const idleProbe = 15 * time.Second

type taskIDs struct{ imports, exports []string }

// latency starts 4 imports and 2 exports (of ami) at once
// and, until they end, calls cheap actions back to back from two
// clients.
func (b *bench) latency(ctx context.Context, ami string) (*latencyResult, error) {
	quiesce()
	res := &latencyResult{byAction: map[string][]time.Duration{}, imports: 4, exports: 2}
	ids := &taskIDs{}
	// The idle baseline: the machine's load without the server's tasks.
	c := b.srv.ec2Client()
	for i, end := 0, time.Now().Add(idleProbe); time.Now().Before(end); i++ {
		a := cheapActions[i%len(cheapActions)]
		t0 := time.Now()
		if err := a.call(ctx, c, ids); err != nil {
			return nil, fmt.Errorf("%s: %v", a.name, err)
		}
		res.idle = append(res.idle, time.Since(t0))
	}
	logf("latency: idle p50 %v p99 %v", percentile(res.idle, 50), percentile(res.idle, 99))
	start := time.Now()
	for range res.imports {
		out, err := b.c.ImportSnapshot(ctx, b.importInput())
		if err != nil {
			return nil, err
		}
		ids.imports = append(ids.imports, aws.ToString(out.ImportTaskId))
	}
	for range res.exports {
		id, err := b.startExport(ctx, ami)
		if err != nil {
			return nil, err
		}
		ids.exports = append(ids.exports, id)
	}
	logf("latency: %d imports and %d exports started", res.imports, res.exports)
	var done atomic.Bool
	var mu sync.Mutex
	var probes sync.WaitGroup
	probeErr := make(chan error, 2)
	for p := range 2 {
		probes.Add(1)
		go func() {
			defer probes.Done()
			c := b.srv.ec2Client()
			for i := p; !done.Load(); i++ {
				a := cheapActions[i%len(cheapActions)]
				t0 := time.Now()
				if err := a.call(ctx, c, ids); err != nil {
					probeErr <- fmt.Errorf("%s: %v", a.name, err)
					return
				}
				d := time.Since(t0)
				mu.Lock()
				res.byAction[a.name] = append(res.byAction[a.name], d)
				res.all = append(res.all, d)
				mu.Unlock()
			}
		}()
	}
	var g errgroup.Group
	var snaps []string
	var smu sync.Mutex
	for _, id := range ids.imports {
		g.Go(func() error {
			s, _, err := b.waitImport(ctx, id)
			smu.Lock()
			snaps = append(snaps, s)
			smu.Unlock()
			return err
		})
	}
	for _, id := range ids.exports {
		g.Go(func() error {
			_, err := b.waitExport(ctx, id)
			return err
		})
	}
	err := g.Wait()
	res.wall = time.Since(start)
	done.Store(true)
	probes.Wait()
	select {
	case e := <-probeErr:
		return nil, e
	default:
	}
	if err != nil {
		return nil, err
	}
	for _, s := range snaps {
		b.c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(s)})
	}
	logf("latency: %d calls in %.1fs", len(res.all), res.wall.Seconds())
	return res, nil
}

// percentile returns the p-th percentile (0 < p ≤ 100) of d, nearest rank.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(k, len(s)-1))]
}
