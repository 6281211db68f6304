package bundle

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
)

// TestPostForm pins the form BundleInstance's parameters allow: the fields
// key, AWSAccessKeyId, acl, policy, signature in that order, then file,
// and nothing else; 5xx answers are retried, 4xx are not.
func TestPostForm(t *testing.T) {
	var mu sync.Mutex
	var calls int
	var fields []string
	var values = map[string]string{}
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if r.Method != http.MethodPost || r.URL.Path != "/mybucket/" {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		if calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "<Error><Code>SlowDown</Code><Message>later</Message></Error>")
			return
		}
		mr, err := r.MultipartReader()
		if err != nil {
			t.Fatal(err)
		}
		fields = nil
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			fields = append(fields, p.FormName())
			if p.FormName() == "file" {
				body = b
				if p.FileName() != path.Base(values["key"]) || p.Header.Get("Content-Type") != "application/octet-stream" {
					t.Errorf("file part header %v", p.Header)
				}
			} else {
				values[p.FormName()] = string(b)
			}
		}
		if values["key"] == "denied/x" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "<Error><Code>AccessDenied</Code><Message>Invalid according to Policy</Message></Error>")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	s := &PostSink{Endpoint: srv.URL, Bucket: "mybucket", AccessKeyID: "AKID", Policy: eucaPolicyB64, Signature: eucaPolicySig}
	data := []byte(strings.Repeat("part bytes ", 1000))
	if err := s.Put(context.Background(), "myprefix/vol.part.00", data); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if calls != 2 {
		t.Errorf("%d requests, want a retry after the 503", calls)
	}
	if got := strings.Join(fields, ","); got != "key,AWSAccessKeyId,acl,policy,signature,file" {
		t.Errorf("form fields %s", got)
	}
	want := map[string]string{"key": "myprefix/vol.part.00", "AWSAccessKeyId": "AKID", "acl": "ec2-bundle-read", "policy": eucaPolicyB64, "signature": eucaPolicySig}
	for k, v := range want {
		if values[k] != v {
			t.Errorf("field %s = %q, want %q", k, values[k], v)
		}
	}
	if string(body) != string(data) {
		t.Errorf("file is %d bytes, want %d", len(body), len(data))
	}
	calls = 1 // no 503 this time
	err := s.Put(context.Background(), "denied/x", data)
	var se *S3Error
	if !errors.As(err, &se) || se.Status != 403 || se.Code != "AccessDenied" || calls != 2 {
		t.Errorf("refused Put = %v after %d calls", err, calls-1)
	}
	if err := (&PostSink{Endpoint: "ftp://x", Bucket: "b"}).Put(context.Background(), "k", nil); err == nil {
		t.Error("an ftp endpoint was accepted")
	}
	if err := (&PostSink{}).Remove(context.Background(), "k"); err == nil {
		t.Error("Remove without credentials succeeded")
	}
}
