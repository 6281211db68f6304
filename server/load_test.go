package server

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/diskport/diskport/internal/testimg"
)

// BenchmarkLoad runs 20 concurrent ImportVolume tasks of a small
// streamOptimized VMDK with 4 workers while 8 clients poll
// DescribeConversionTasks, and reports the API latency percentiles seen
// during the conversions: the API must stay responsive while workers
// keep both cores busy.
func BenchmarkLoad(b *testing.B) {
	golden := testimg.Golden(b, testimg.Spec{Size: 8 << 20, Seed: 16})
	image := testimg.Make(b, golden, "vmdk", "subformat=streamOptimized")
	ps := newPartsServer(b, image, 0, nil)
	for range b.N {
		ts := startServerWith(b, "", func(c *Config) { c.Workers = 4 }, ps.Listener.Addr().String())
		c := ts.sdk(testKey, testSecret)
		var tasks []string
		for range 20 {
			task, _ := importVolume(b, c, "VMDK", ps.m.Size, ps.manifestURL(), 1)
			tasks = append(tasks, task)
		}
		var mu sync.Mutex
		var lat []time.Duration
		done := make(chan struct{})
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					start := time.Now()
					_, err := c.DescribeConversionTasks(context.Background(), &ec2.DescribeConversionTasksInput{ConversionTaskIds: tasks})
					d := time.Since(start)
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			}()
		}
		for _, task := range tasks {
			if state, msg := waitTask(b, c, task, 5*time.Minute); state != "completed" {
				b.Fatalf("task %s ended %s: %s", task, state, msg)
			}
		}
		close(done)
		wg.Wait()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		if len(lat) > 0 {
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(len(lat)), "describes")
		}
	}
}
