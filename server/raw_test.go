package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// rawCall sends an EC2 Query API request signed by aws-sdk-go-v2's SigV4
// signer at the given time and returns the status, the error code (if
// any) and the body.
func (ts *testServer) rawCall(t *testing.T, params url.Values, key, secret string, at time.Time) (int, string, string) {
	t.Helper()
	body := params.Encode()
	req, err := http.NewRequest("POST", ts.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: key, SecretAccessKey: secret},
		req, hex.EncodeToString(sum[:]), "ec2", "ap-south-2", at)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Code      string `xml:"Errors>Error>Code"`
		Message   string `xml:"Errors>Error>Message"`
		RequestID string `xml:"RequestID"`
	}
	if resp.StatusCode != 200 {
		if err := xml.Unmarshal(b, &e); err != nil || e.RequestID == "" || e.Message == "" {
			t.Fatalf("error response not in EC2's envelope (%v): %s", err, b)
		}
	}
	return resp.StatusCode, e.Code, string(b)
}

func TestRawRequests(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", "127.0.0.1:9")
	now := time.Now()
	iv := func(drop string) url.Values {
		v := url.Values{"Action": {"ImportVolume"}, "Version": {"2016-11-15"}, "Image.Format": {"RAW"},
			"Image.Bytes": {"512"}, "Image.ImportManifestUrl": {"http://127.0.0.1:9/b/m.xml"}, "Volume.Size": {"1"}}
		v.Del(drop)
		return v
	}
	cases := []struct {
		name   string
		params url.Values
		at     time.Time
		status int
		code   string
	}{
		{"expired", iv(""), now.Add(-16 * time.Minute), 400, "RequestExpired"},
		{"from the future", iv(""), now.Add(16 * time.Minute), 400, "RequestExpired"},
		{"missing manifest URL", iv("Image.ImportManifestUrl"), now, 400, "MissingParameter"},
		{"missing Volume.Size", iv("Volume.Size"), now, 400, "MissingParameter"},
		{"missing Action", url.Values{"Version": {"2016-11-15"}}, now, 400, "MissingParameter"},
		{"bad Image.Bytes", func() url.Values { v := iv(""); v.Set("Image.Bytes", "-1"); return v }(), now, 400, "InvalidParameterValue"},
		{"bad Monitoring", url.Values{"Action": {"ImportInstance"}, "Version": {"2016-11-15"}, "Platform": {"Linux"},
			"LaunchSpecification.Monitoring.Enabled": {"maybe"}}, now, 400, "InvalidParameterValue"},
		{"no disk image", url.Values{"Action": {"ImportInstance"}, "Version": {"2016-11-15"}, "Platform": {"Linux"}}, now, 400, "MissingParameter"},
		{"unsupported", url.Values{"Action": {"RunInstances"}, "Version": {"2016-11-15"}}, now, 400, "UnsupportedOperation"},
		{"dry run", func() url.Values { v := iv(""); v.Set("DryRun", "true"); return v }(), now, 412, "DryRunOperation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, code, body := ts.rawCall(t, c.params, testKey, testSecret, c.at)
			if status != c.status || code != c.code {
				t.Fatalf("got %d %s, want %d %s: %s", status, code, c.status, c.code, body)
			}
		})
	}
	// A good one: the response has no result wrapper and a requestId.
	status, _, body := ts.rawCall(t, iv(""), testKey, testSecret, now)
	if status != 200 || !strings.Contains(body, `<ImportVolumeResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>`) ||
		!strings.Contains(body, "<conversionTask><conversionTaskId>import-vol-") {
		t.Fatalf("ImportVolume: %d %s", status, body)
	}
	// DescribeConversionTasks puts the fields directly under <item>.
	status, _, body = ts.rawCall(t, url.Values{"Action": {"DescribeConversionTasks"}, "Version": {"2016-11-15"}}, testKey, testSecret, now)
	if status != 200 || !strings.Contains(body, "<conversionTasks><item><conversionTaskId>") {
		t.Fatalf("DescribeConversionTasks: %d %s", status, body)
	}
	// Both spellings of monitoring are accepted.
	for _, name := range []string{"LaunchSpecification.Monitoring", "LaunchSpecification.Monitoring.Enabled"} {
		p := url.Values{"Action": {"ImportInstance"}, "Version": {"2016-11-15"}, "Platform": {"Linux"}, name: {"true"},
			"DiskImage.1.Image.Format": {"RAW"}, "DiskImage.1.Image.Bytes": {"512"},
			"DiskImage.1.Image.ImportManifestUrl": {"http://127.0.0.1:9/b/m.xml"}, "DiskImage.1.Volume.Size": {"1"}}
		status, _, body := ts.rawCall(t, p, testKey, testSecret, now)
		if status != 200 || !strings.Contains(body, "<importInstance>") {
			t.Fatalf("ImportInstance with %s: %d %s", name, status, body)
		}
		id := body[strings.Index(body, "<instanceId>")+len("<instanceId>"):]
		id = id[:strings.Index(id, "<")]
		status, _, body = ts.rawCall(t, url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}, "InstanceId.1": {id}}, testKey, testSecret, now)
		if status != 200 || !strings.Contains(body, "<monitoring><state>enabled</state></monitoring>") {
			t.Fatalf("DescribeInstances after %s: %d %s", name, status, body)
		}
	}
}

// TestSigV2Request sends Signature Version 2 requests, signed here as the
// EC2 Query API describes (HmacSHA256 over METHOD, host, path and the
// sorted, RFC 3986-encoded parameters), the way older clients do.
func TestSigV2Request(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "", "127.0.0.1:9")
	u, _ := url.Parse(ts.URL)
	sign := func(p url.Values, secret string) url.Values {
		p.Set("AWSAccessKeyId", testKey)
		p.Set("SignatureVersion", "2")
		p.Set("SignatureMethod", "HmacSHA256")
		p.Set("Timestamp", time.Now().UTC().Format("2006-01-02T15:04:05Z"))
		// url.Values.Encode sorts by key; RFC 3986 wants %20, not +.
		q := strings.ReplaceAll(p.Encode(), "+", "%20")
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte("POST\n" + u.Host + "\n/\n" + q))
		p.Set("Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
		return p
	}
	post := func(p url.Values) (int, string) {
		resp, err := http.Post(ts.URL+"/", "application/x-www-form-urlencoded", strings.NewReader(p.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, body := post(sign(url.Values{"Action": {"DescribeConversionTasks"}, "Version": {"2014-09-01"}}, testSecret))
	if status != 200 || !strings.Contains(body, "<DescribeConversionTasksResponse") || !strings.Contains(body, "<conversionTasks></conversionTasks>") {
		t.Fatalf("SigV2 DescribeConversionTasks: %d %s", status, body)
	}
	status, body = post(sign(url.Values{"Action": {"DescribeConversionTasks"}, "Version": {"2014-09-01"}}, "wrong"))
	if status != 403 || !strings.Contains(body, "<Code>SignatureDoesNotMatch</Code>") {
		t.Fatalf("SigV2 with a wrong secret: %d %s", status, body)
	}
	status, body = post(url.Values{"Action": {"DescribeConversionTasks"}, "Version": {"2014-09-01"}})
	if status != 401 || !strings.Contains(body, "<Code>AuthFailure</Code>") {
		t.Fatalf("unsigned: %d %s", status, body)
	}
}
