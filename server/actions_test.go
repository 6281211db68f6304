package server

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestActionTable: every action in the table answers (with a response
// named after it, or a refusal of its parameters, never
// UnsupportedOperation), and the UnsupportedOperation message lists
// exactly the table's actions, in its order.
func TestActionTable(t *testing.T) {
	ts := startServer(t, "", "127.0.0.1:9")
	names := Actions()
	if len(names) != len(actions) || len(actionIndex) != len(actions) {
		t.Fatalf("Actions() has %d names, the index %d, the table %d rows", len(names), len(actionIndex), len(actions))
	}
	for _, name := range names {
		status, code, body := ts.rawCall(t, url.Values{"Action": {name}, "Version": {"2016-11-15"}}, testKey, testSecret, time.Now())
		switch {
		case code == "UnsupportedOperation":
			t.Errorf("%s: UnsupportedOperation: %s", name, body)
		case status == 200 && !strings.Contains(body, "<"+name+"Response "):
			t.Errorf("%s: answered 200 without a %sResponse: %s", name, name, body)
		case status != 200 && code != "MissingParameter":
			t.Errorf("%s with no parameters: %d %s, want 200 or MissingParameter", name, status, code)
		}
	}
	_, code, body := ts.rawCall(t, url.Values{"Action": {"RunInstances"}, "Version": {"2016-11-15"}}, testKey, testSecret, time.Now())
	if code != "UnsupportedOperation" {
		t.Fatalf("RunInstances: %s, want UnsupportedOperation", code)
	}
	_, list, ok := strings.Cut(body, "supported: ")
	list, _, _ = strings.Cut(list, ".</Message>")
	if got := strings.Split(list, ", "); !ok || !slices.Equal(got, names) {
		t.Errorf("UnsupportedOperation lists %q, want the table's %q", got, names)
	}
}

// TestClock: the server reads the time from Config.Clock: a task's
// expirationTime is the clock's time plus Config.Expiration, and a
// request signed at the clock's time (an hour from the real one) passes.
func TestClock(t *testing.T) {
	at := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	ts := startServerWith(t, "", func(c *Config) {
		c.Clock = func() time.Time { return at }
		c.Expiration = 48 * time.Hour
	}, "127.0.0.1:9")
	status, code, body := ts.rawCall(t, url.Values{"Action": {"ImportVolume"}, "Version": {"2016-11-15"},
		"Image.Format": {"RAW"}, "Image.Bytes": {"1024"}, "Image.ImportManifestUrl": {"http://127.0.0.1:9/b/m.xml"},
		"Volume.Size": {"1"}}, testKey, testSecret, at)
	if status != 200 {
		t.Fatalf("ImportVolume signed at the clock's time: %d %s %s", status, code, body)
	}
	want := "<expirationTime>" + at.Add(48*time.Hour).Format("2006-01-02T15:04:05Z") + "</expirationTime>"
	if !strings.Contains(body, want) {
		t.Errorf("response lacks %s: %s", want, body)
	}
	if status, code, _ := ts.rawCall(t, url.Values{"Action": {"DescribeVolumes"}, "Version": {"2016-11-15"}}, testKey, testSecret, time.Now()); status == 200 {
		t.Errorf("a request signed an hour before the server's clock passed (%s)", code)
	}
}
