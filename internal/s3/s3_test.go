package s3

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/internal/s3test"
	"github.com/diskport/diskport/internal/testwait"
)

func TestMain(m *testing.M) { os.Exit(s3test.Main(m)) }

// testClient returns a client of the shared MinIO server (SigV2 or SigV4)
// and a fresh bucket it created.
func testClient(t *testing.T, sigV2 bool) (*Client, string) {
	t.Helper()
	srv := s3test.Shared(t)
	c, err := New(Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, SigV2: sigV2})
	if err != nil {
		t.Fatal(err)
	}
	bucket := srv.Bucket(t)
	if err := c.EnsureBucket(context.Background(), bucket); err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureBucket(context.Background(), bucket); err != nil {
		t.Fatalf("EnsureBucket of an existing bucket: %v", err)
	}
	return c, bucket
}

func do(t *testing.T, method, u string) (*http.Response, []byte) {
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
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestPresignRoundTrip stores an object, then reads, heads and deletes it
// through presigned URLs of both signature versions, with nothing but the
// URL: MinIO checks the signatures. A tampered or expired URL is refused
// with S3's error parsed.
func TestPresignRoundTrip(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("sigv2=%v", v2), func(t *testing.T) {
			c, bucket := testClient(t, v2)
			ctx := context.Background()
			key := "dir/a key+é.bin"
			data := bytes.Repeat([]byte("diskport"), 4096)
			if err := c.Put(ctx, bucket, key, data, "application/octet-stream", map[string]string{"Diskport-Sha256": "abc"}); err != nil {
				t.Fatal(err)
			}
			st, err := c.Stat(ctx, bucket, key)
			if err != nil || st.Size != int64(len(data)) || st.Metadata["Diskport-Sha256"] != "abc" || len(st.ETag) != 32 {
				t.Fatalf("Stat = %+v, %v", st, err)
			}
			sign := func(method string, expires time.Duration) string {
				u, err := c.Presign(ctx, method, bucket, key, expires, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				return u
			}
			get := sign("GET", time.Hour)
			if resp, b := do(t, "GET", get); resp.StatusCode != 200 || !bytes.Equal(b, data) {
				t.Fatalf("presigned GET: %s, %d bytes", resp.Status, len(b))
			}
			if resp, _ := do(t, "HEAD", sign("HEAD", time.Hour)); resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
				t.Fatalf("presigned HEAD: %s, length %d", resp.Status, resp.ContentLength)
			}
			// A GET URL does not sign a DELETE, nor another key.
			if resp, _ := do(t, "DELETE", get); resp.StatusCode != 403 {
				t.Fatalf("DELETE with a GET URL: %s", resp.Status)
			}
			resp, b := do(t, "GET", strings.Replace(get, "a%20key", "b%20key", 1))
			checkRefusal(t, resp, b, 403, "SignatureDoesNotMatch")
			// It expires a second after it was signed: poll until it is
			// refused instead of sleeping past the second.
			expired := sign("GET", time.Second)
			testwait.For(t, 10*time.Second, "the presigned GET to expire", func() bool {
				resp, b = do(t, "GET", expired)
				return resp.StatusCode != http.StatusOK
			})
			checkRefusal(t, resp, b, 403, "AccessDenied")

			if resp, _ := do(t, "DELETE", sign("DELETE", time.Hour)); resp.StatusCode != 204 {
				t.Fatalf("presigned DELETE: %s", resp.Status)
			}
			_, err = c.Stat(ctx, bucket, key)
			var se *Error
			if !errors.As(err, &se) || se.Status != 404 {
				t.Fatalf("Stat after DELETE: %v", err)
			}
		})
	}
}

// checkRefusal checks that a MinIO error response parses into an *Error
// with the status and code, and prints as "HTTP N Status: Code: Message"
// without XML.
func checkRefusal(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	e := ReadError(resp)
	if e.Status != status || e.Code != code || e.Message == "" {
		t.Fatalf("ReadError = %+v from %s %s", e, resp.Status, body)
	}
	want := fmt.Sprintf("HTTP %d %s: %s: %s", status, http.StatusText(status), code, e.Message)
	if e.Error() != want || strings.ContainsAny(e.Error(), "<>") {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
	if txt := ErrorText(body); txt != code+": "+e.Message {
		t.Fatalf("ErrorText = %q", txt)
	}
}

// TestErrorsFromMinIO checks the errors of the client's own operations: a
// missing object and a missing bucket come back as *Error with S3's code
// and message, and so does a refusal of wrong credentials.
func TestErrorsFromMinIO(t *testing.T) {
	c, bucket := testClient(t, false)
	ctx := context.Background()
	_, _, err := c.Get(ctx, bucket, "missing", 0, 0)
	var se *Error
	if !errors.As(err, &se) || se.Status != 404 || se.Code != "NoSuchKey" || !HasCode(err, "NoSuchKey") {
		t.Fatalf("Get of a missing object: %v", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "HTTP 404 Not Found: NoSuchKey: ") || strings.ContainsAny(msg, "<>") {
		t.Fatalf("error text %q", msg)
	}
	if _, err := c.Stat(ctx, bucket+"-none", "k"); !errors.As(err, &se) || se.Status != 404 {
		t.Fatalf("Stat in a missing bucket: %v", err)
	}
	srv := s3test.Shared(t)
	bad, err := New(Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Put(ctx, bucket, "k", []byte("x"), "", nil)
	if !HasCode(err, "SignatureDoesNotMatch") || !errors.As(err, &se) || se.Status != 403 || se.Message == "" {
		t.Fatalf("Put with a wrong secret: %v", err)
	}
	// Errors that are not S3's pass through Parse unchanged.
	other := errors.New("connection refused")
	if Parse(other) != other || Parse(nil) != nil {
		t.Fatal("Parse changed a non-S3 error")
	}
	if _, err := New(Config{Endpoint: "ftp://x"}); err == nil || !strings.Contains(err.Error(), `endpoint "ftp://x" is not an http(s) URL`) {
		t.Fatalf("New(ftp://x) = %v", err)
	}
}

// TestPostPolicy posts a form upload under a policy signed with SignV2:
// MinIO stores it; a policy signed with another secret, a key outside the
// policy's prefix and an expired policy are refused, with S3's code.
func TestPostPolicy(t *testing.T) {
	c, bucket := testClient(t, false)
	srv := s3test.Shared(t)
	policy := func(expires time.Time) string {
		doc := fmt.Sprintf(`{"expiration": %q,"conditions": [{"bucket": %q},{"acl": "ec2-bundle-read"},["starts-with", "$key", "bundles/"]]}`,
			expires.UTC().Format("2006-01-02T15:04:05Z"), bucket)
		return base64.StdEncoding.EncodeToString([]byte(doc))
	}
	good := policy(time.Now().Add(time.Hour))
	expired := policy(time.Now().Add(-time.Minute))
	post := func(key, pol, sig string) (*http.Response, []byte) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for _, f := range [][2]string{{"key", key}, {"AWSAccessKeyId", srv.AccessKey}, {"acl", "ec2-bundle-read"}, {"policy", pol}, {"signature", sig}} {
			mw.WriteField(f[0], f[1])
		}
		w, _ := mw.CreateFormFile("file", "part")
		w.Write([]byte("bundle bytes"))
		mw.Close()
		resp, err := http.Post(srv.Endpoint+"/"+bucket+"/", mw.FormDataContentType(), &body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, b := post("bundles/vol.part.0", good, SignV2(srv.SecretKey, good)); resp.StatusCode/100 != 2 {
		t.Fatalf("POST under a good policy: %s %s", resp.Status, b)
	}
	if st, err := c.Stat(context.Background(), bucket, "bundles/vol.part.0"); err != nil || st.Size != int64(len("bundle bytes")) {
		t.Fatalf("posted object: %+v, %v", st, err)
	}
	for _, r := range []struct {
		name, key, policy, sig, code string
	}{
		{"signed with another secret", "bundles/x", good, SignV2("not-the-secret", good), "SignatureDoesNotMatch"},
		{"key outside the prefix", "elsewhere/x", good, SignV2(srv.SecretKey, good), "AccessDenied"},
		{"expired", "bundles/x", expired, SignV2(srv.SecretKey, expired), "AccessDenied"},
	} {
		resp, b := post(r.key, r.policy, r.sig)
		if resp.StatusCode/100 == 2 {
			t.Errorf("%s: stored (%s)", r.name, resp.Status)
			continue
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		e := ReadError(resp)
		if e.Code != r.code || e.Status != 403 || strings.ContainsAny(e.Error(), "<>") {
			t.Errorf("%s: %v (%s), want 403 %s", r.name, e, b, r.code)
		}
	}
	if _, err := c.Stat(context.Background(), bucket, "bundles/x"); !HasCode(err, "NoSuchKey") {
		t.Fatalf("a refused upload was stored: %v", err)
	}
}
