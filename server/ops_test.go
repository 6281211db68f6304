package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func get(t *testing.T, method, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOpsBesideAPI: without a metrics listener, the API's address answers
// GET /healthz, /readyz and /metrics, and only those exact requests: any
// other goes to the API.
func TestOpsBesideAPI(t *testing.T) {
	ts := startServer(t, "", "127.0.0.1:9")
	if ts.MetricsAddr() != nil {
		t.Fatalf("MetricsAddr() = %v without MetricsListen", ts.MetricsAddr())
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if status, body := get(t, "GET", ts.URL+p); status != 200 || body != "ok\n" {
			t.Errorf("GET %s: %d %q", p, status, body)
		}
	}
	if status, body := get(t, "GET", ts.URL+"/metrics"); status != 200 || !strings.Contains(body, "diskport_tasks_running") {
		t.Errorf("GET /metrics: %d %.200s", status, body)
	}
	for _, r := range []struct{ method, path string }{{"POST", "/healthz"}, {"HEAD", "/healthz"}, {"GET", "//healthz"}, {"GET", "/healthz/"}} {
		status, body := get(t, r.method, ts.URL+r.path)
		if status == 200 || r.method != "HEAD" && !strings.Contains(body, "<Errors>") {
			t.Errorf("%s %s: %d %q, want the API's refusal", r.method, r.path, status, body)
		}
	}
}

// TestOpsListener: with Config.MetricsListen, the operational endpoints
// are served on their own address, and the API's address answers them
// as API requests.
func TestOpsListener(t *testing.T) {
	ts := startServerWith(t, "", func(c *Config) { c.MetricsListen = "127.0.0.1:0" }, "127.0.0.1:9")
	addr := ts.MetricsAddr()
	if addr == nil {
		t.Fatal("no metrics address")
	}
	ops := "http://" + addr.String()
	for _, p := range []string{"/healthz", "/readyz"} {
		if status, body := get(t, "GET", ops+p); status != 200 || body != "ok\n" {
			t.Errorf("GET %s on the metrics listener: %d %q", p, status, body)
		}
	}
	if status, body := get(t, "GET", ops+"/metrics"); status != 200 || !strings.Contains(body, "diskport_api_request_duration_seconds") && !strings.Contains(body, "diskport_tasks_running") {
		t.Errorf("GET /metrics on the metrics listener: %d %.200s", status, body)
	}
	if status, _ := get(t, "GET", ops+"/"); status != http.StatusNotFound {
		t.Errorf("GET / on the metrics listener: %d, want 404 (no API there)", status)
	}
	for _, p := range []string{"/healthz", "/metrics"} {
		if status, body := get(t, "GET", ts.URL+p); status == 200 || !strings.Contains(body, "<Errors>") {
			t.Errorf("GET %s on the API's address: %d %.200s, want the API's refusal", p, status, body)
		}
	}
	ts.Close()
	if _, err := http.Get(ops + "/healthz"); err == nil {
		t.Error("the metrics listener still answers after Close")
	}
}
