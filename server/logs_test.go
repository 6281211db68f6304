package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/diskport/diskport/internal/testimg"
)

// logLines parses a JSON log into its lines.
func logLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestRequestLogLevels: the Describe calls a client polls with are logged
// at DEBUG when they succeed, at INFO when refused; other calls at INFO.
func TestRequestLogLevels(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	ts := startServerWith(t, "", func(c *Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	c := ts.sdk(testKey, testSecret)
	ctx := context.Background()
	if _, err := c.DescribeConversionTasks(ctx, &ec2.DescribeConversionTasksInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DescribeConversionTasks(ctx, &ec2.DescribeConversionTasksInput{ConversionTaskIds: []string{"import-vol-ffffffff"}}); err == nil {
		t.Fatal("an unknown task was described")
	}
	if _, err := c.CancelConversionTask(ctx, &ec2.CancelConversionTaskInput{ConversionTaskId: aws.String("import-vol-ffffffff")}); err == nil {
		t.Fatal("an unknown task was cancelled")
	}
	want := []struct {
		action, level string
		status        float64
	}{
		{"DescribeConversionTasks", "DEBUG", 200}, {"DescribeVolumes", "DEBUG", 200},
		{"DescribeConversionTasks", "INFO", 400}, {"CancelConversionTask", "INFO", 400},
	}
	var got []map[string]any
	for _, l := range logLines(t, logs.String()) {
		if l["msg"] == "request" {
			got = append(got, l)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d request lines, want %d:\n%s", len(got), len(want), logs.String())
	}
	for i, w := range want {
		if got[i]["action"] != w.action || got[i]["level"] != w.level || got[i]["status"] != w.status {
			t.Errorf("request line %d: %v, want %s at %s (status %v)", i, got[i], w.action, w.level, w.status)
		}
	}
}

// TestFailedImportLogged: an import that fails is logged as failed, at
// WARN, with its reason, not as an INFO "cancelled"; one the client
// cancels is logged cancelled at INFO.
func TestFailedImportLogged(t *testing.T) {
	t.Parallel()
	golden := testimg.Golden(t, testimg.Spec{Size: 1 << 20, Seed: 27})
	ps := newPartsServer(t, golden, 0, nil)
	ts := startServer(t, "", ps.Listener.Addr().String())
	c := ts.sdk(testKey, testSecret)
	task, _ := importVolume(t, c, "RAW", ps.m.Size+1, ps.manifestURL(), 1)
	if state, msg := waitTask(t, c, task, time.Minute); state != "cancelled" || !strings.Contains(msg, "Image.Bytes") {
		t.Fatalf("task ended %s %q", state, msg)
	}
	ps.hidden.Store(true) // the next task waits for its manifest until cancelled
	waiting, _ := importVolume(t, c, "RAW", ps.m.Size, ps.manifestURL(), 1)
	if _, err := c.CancelConversionTask(context.Background(), &ec2.CancelConversionTaskInput{ConversionTaskId: aws.String(waiting)}); err != nil {
		t.Fatal(err)
	}
	waitTask(t, c, waiting, time.Minute)
	ended := map[string]map[string]any{}
	for _, l := range logLines(t, ts.logs.String()) {
		if l["msg"] == "task" && (l["event"] == "failed" || l["event"] == "cancelled") {
			ended[l["task"].(string)] = l
		}
	}
	if l := ended[task]; l == nil || l["event"] != "failed" || l["level"] != "WARN" || !strings.Contains(l["status_message"].(string), "Image.Bytes") {
		t.Errorf("the failed task's last line: %v\n%s", l, ts.logs.String())
	}
	if l := ended[waiting]; l == nil || l["event"] != "cancelled" || l["level"] != "INFO" {
		t.Errorf("the cancelled task's last line: %v", l)
	}
}
