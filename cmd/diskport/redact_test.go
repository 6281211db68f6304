package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/diskport/diskport/internal/testimg"
	"github.com/diskport/diskport/manifest"
)

// secretQuery stands for a presigned URL's signature.
const secretQuery = "X-Amz-Credential=AKIDSECRET&X-Amz-Signature=SIGSECRET"

// TestNoPresignedQueryPrinted converts from a manifest and its parts served
// with presigned-looking URLs, in success and in three failures (refused
// manifest, refused part, unreachable host): no summary, JSON line or error
// carries the query string.
func TestNoPresignedQueryPrinted(t *testing.T) {
	t.Parallel()
	bin := buildCLI(t)
	g := testimg.Golden(t, testimg.Spec{Size: 3 << 20, Seed: 15})
	parts := t.TempDir()
	m, _, err := manifest.Create(context.Background(), g, parts, manifest.SplitOptions{PartSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(parts))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != secretQuery || strings.Contains(r.URL.Path, "denied") {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>`))
			return
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	good := *m
	good.Parts = slices.Clone(m.Parts)
	for i := range good.Parts {
		good.Parts[i].GetURL = srv.URL + "/" + good.Parts[i].Key + "?" + secretQuery
	}
	if err := os.WriteFile(filepath.Join(parts, "good.manifest.xml"), good.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.Parts = slices.Clone(good.Parts)
	bad.Parts[1].GetURL = srv.URL + "/denied/" + good.Parts[1].Key + "?" + secretQuery
	if err := os.WriteFile(filepath.Join(parts, "bad.manifest.xml"), bad.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()

	dir := t.TempDir()
	ec2Cert, _, _, _ := keyFiles(t, dir)
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"converted", []string{"convert", "--no-sync", "--exact-size", "--manifest", srv.URL + "/good.manifest.xml?" + secretQuery, filepath.Join(dir, "a")}, true},
		{"json", []string{"convert", "--no-sync", "--exact-size", "--progress=json", "--manifest", srv.URL + "/good.manifest.xml?" + secretQuery, filepath.Join(dir, "b")}, true},
		{"show", []string{"manifest", "show", srv.URL + "/good.manifest.xml?" + secretQuery}, true},
		{"show json", []string{"manifest", "show", "--output=json", srv.URL + "/good.manifest.xml?" + secretQuery}, true},
		{"verify", []string{"manifest", "verify", srv.URL + "/good.manifest.xml?" + secretQuery}, true},
		{"manifest refused", []string{"convert", "--manifest", srv.URL + "/good.manifest.xml?X-Amz-Signature=SIGSECRET", filepath.Join(dir, "c")}, false},
		{"part refused", []string{"convert", "--manifest", srv.URL + "/bad.manifest.xml?" + secretQuery, filepath.Join(dir, "d")}, false},
		{"unreachable", []string{"convert", "--manifest", dead + "/m.xml?" + secretQuery, filepath.Join(dir, "e")}, false},
		{"verify part refused", []string{"manifest", "verify", srv.URL + "/bad.manifest.xml?" + secretQuery}, false},
		{"info", []string{"info", "--manifest", srv.URL + "/good.manifest.xml?" + secretQuery}, true},
		{"info json", []string{"info", "--output=json", "--manifest", srv.URL + "/good.manifest.xml?" + secretQuery}, true},
		{"map json", []string{"map", "--output=json", "--manifest", srv.URL + "/good.manifest.xml?" + secretQuery}, true},
		{"check json", []string{"check", "--output=json", "--manifest", srv.URL + "/good.manifest.xml?" + secretQuery}, true},
		{"check part refused", []string{"check", "--manifest", srv.URL + "/bad.manifest.xml?" + secretQuery}, false},
		{"bundle", []string{"bundle", "--prefix", "img", "--ec2-cert", ec2Cert, "--out", filepath.Join(dir, "bundle"), "--manifest", srv.URL + "/good.manifest.xml?" + secretQuery}, true},
	} {
		out, err := exec.Command(bin, tc.args...).CombinedOutput()
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v: %s", tc.name, err, out)
		}
		if strings.Contains(string(out), "SECRET") {
			t.Errorf("%s: the output carries the presigned query: %s", tc.name, out)
		}
		if !tc.ok && !strings.Contains(string(out), "diskport") {
			t.Errorf("%s: no error printed: %s", tc.name, out)
		}
		// S3's XML error document is shown as "Code: Message".
		if strings.Contains(tc.name, "refused") && (!strings.Contains(string(out), "AccessDenied: Request has expired") || strings.Contains(string(out), "<Error>")) {
			t.Errorf("%s: S3's error not shown as Code: Message: %s", tc.name, out)
		}
	}
}
