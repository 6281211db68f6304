package server

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestFetchPolicy(t *testing.T) {
	t.Parallel()
	p, err := newFetchPolicy([]string{"127.0.0.1:9000", "169.254.169.254:80", "[fd00:ec2::254]:80", "s3.example:443"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		url, want string // want: "" for allowed, else part of the refusal
	}{
		{"http://127.0.0.1:9000/b/m.xml?X-Amz-Signature=x", ""},
		{"https://s3.example/b/m.xml", ""},
		{"http://s3.example/b/m.xml", "not on the server's fetch allow list"},
		{"http://127.0.0.1:9001/b/m.xml", "not on the server's fetch allow list"},
		{"file:///etc/passwd", "only http and https"},
		{"ftp://127.0.0.1:9000/x", "only http and https"},
		{"http://user:pw@127.0.0.1:9000/x", "user information"},
		{"/local/path.xml", "only http and https"},
		{"http:///path.xml", "not on the server's fetch allow list"},
	} {
		err := p.checkURL(c.url)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.url, err, c.want)
		}
	}
	// Listed or not, link-local and metadata addresses are never dialled.
	for _, u := range []string{"http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest/meta-data/"} {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", u, nil)
		_, err := p.client.Do(req)
		if err == nil || !strings.Contains(err.Error(), "refusing to connect") {
			t.Errorf("%s: %v, want a refusal to connect", u, err)
		}
	}
	if got := redact(`fetching http://h:1/b/k?X-Amz-Signature=abc&X-Amz-Credential=AK: 404`); got != "fetching http://h:1/b/k?…: 404" {
		t.Errorf("redact: %q", got)
	}
}
