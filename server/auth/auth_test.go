package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"hash"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The AWS Signature Version 4 test suite's credentials and clock
// (https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html).
const (
	suiteKey    = "AKIDEXAMPLE"
	suiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	suiteScope  = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
)

var suiteTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

func suiteVerifier() *Verifier {
	return &Verifier{
		Service: "service",
		Now:     func() time.Time { return suiteTime },
		Lookup: func(_ context.Context, id string) (string, string, error) {
			if id != suiteKey {
				return "", "", ErrUnknownKey
			}
			return suiteSecret, "111122223333", nil
		},
	}
}

func TestSigV4Suite(t *testing.T) {
	cases := []struct {
		name, method, target, body string
		headers                    map[string]string
		authz                      string
	}{
		{"get-vanilla", "GET", "/", "", nil,
			"SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"post-vanilla", "POST", "/", "", nil,
			"SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{"get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", "", nil,
			"SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"post-x-www-form-urlencoded", "POST", "/", "Param1=value1",
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			"SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			newReq := func(authz string) *http.Request {
				r := httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
				r.Host = "example.amazonaws.com"
				r.Header.Set("X-Amz-Date", "20150830T123600Z")
				for k, v := range c.headers {
					r.Header.Set(k, v)
				}
				r.Header.Set("Authorization", authz)
				return r
			}
			v := suiteVerifier()
			id, err := v.Verify(context.Background(), newReq(suiteScope+c.authz), []byte(c.body), nil)
			if err != nil {
				t.Fatalf("the suite's signature is refused: %v", err)
			}
			if id.AccountID != "111122223333" || id.Region != "us-east-1" || id.Method != "SigV4" {
				t.Fatalf("identity %+v", id)
			}
			// One changed hex digit, or a changed body, is refused.
			bad := suiteScope + c.authz[:len(c.authz)-1] + "0"
			if strings.HasSuffix(c.authz, "0") {
				bad = suiteScope + c.authz[:len(c.authz)-1] + "1"
			}
			wantCode(t, v, newReq(bad), []byte(c.body), "SignatureDoesNotMatch")
			wantCode(t, v, newReq(suiteScope+c.authz), []byte(c.body+"&Action=DeleteVolume"), "SignatureDoesNotMatch")
			// The same request 16 minutes later is expired; 14 minutes is not.
			v.Now = func() time.Time { return suiteTime.Add(16 * time.Minute) }
			wantCode(t, v, newReq(suiteScope+c.authz), []byte(c.body), "RequestExpired")
			v.Now = func() time.Time { return suiteTime.Add(-14 * time.Minute) }
			if _, err := v.Verify(context.Background(), newReq(suiteScope+c.authz), []byte(c.body), nil); err != nil {
				t.Fatalf("14 minutes of skew: %v", err)
			}
		})
	}
}

func wantCode(t *testing.T, v *Verifier, r *http.Request, body []byte, code string) {
	t.Helper()
	params, _ := url.ParseQuery(r.URL.RawQuery)
	_, err := v.Verify(context.Background(), r, body, params)
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
	if strings.Contains(ae.Message, suiteSecret) {
		t.Fatalf("the message repeats the secret: %s", ae.Message)
	}
}

func TestRefusals(t *testing.T) {
	v := suiteVerifier()
	r := httptest.NewRequest("GET", "/?Action=DescribeVolumes", nil)
	wantCode(t, v, r, nil, "AuthFailure")
	if (&Error{Code: "AuthFailure"}).Status() != 401 || (&Error{Code: "SignatureDoesNotMatch"}).Status() != 403 ||
		(&Error{Code: "RequestExpired"}).Status() != 400 {
		t.Fatal("statuses")
	}

	r = httptest.NewRequest("GET", "/", nil)
	r.Host = "example.amazonaws.com"
	r.Header.Set("X-Amz-Date", "20150830T123600Z")
	r.Header.Set("Authorization", strings.Replace(suiteScope, suiteKey, "AKIDUNKNOWN", 1)+
		"SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	wantCode(t, v, r, nil, "AuthFailure")

	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date")
	wantCode(t, v, r, nil, "IncompleteSignature")

	// A scope for another service is refused.
	r.Header.Set("Authorization", strings.Replace(suiteScope, "/service/", "/s3/", 1)+
		"SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
	wantCode(t, v, r, nil, "SignatureDoesNotMatch")
}

// signV2 signs params the Signature Version 2 way, written out here from
// the EC2 Query API's description rather than from the code under test.
func signV2(method, host, path string, params url.Values, secret string) string {
	enc := func(s string) string {
		return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(url.QueryEscape(s))
	}
	var parts []string
	for _, k := range sortedKeys(params) {
		parts = append(parts, enc(k)+"="+enc(params.Get(k)))
	}
	m := newHMACSHA1(secret)
	m.Write([]byte(method + "\n" + host + "\n" + path + "\n" + strings.Join(parts, "&")))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestSigV2(t *testing.T) {
	v := suiteVerifier()
	params := url.Values{
		"Action": {"DescribeConversionTasks"}, "Version": {"2016-11-15"}, "AWSAccessKeyId": {suiteKey},
		"SignatureVersion": {"2"}, "SignatureMethod": {"HmacSHA1"}, "Timestamp": {"2015-08-30T12:30:00Z"},
		"ConversionTaskId.1": {"import-vol-0123abcd ~*/"},
	}
	params.Set("Signature", signV2("POST", "127.0.0.1:8773", "/", params, suiteSecret))
	r := httptest.NewRequest("POST", "/", strings.NewReader(params.Encode()))
	r.Host = "127.0.0.1:8773"
	id, err := v.Verify(context.Background(), r, nil, params)
	if err != nil || id.Method != "SigV2" || id.AccountID != "111122223333" {
		t.Fatalf("SigV2: %+v, %v", id, err)
	}
	params.Set("ConversionTaskId.1", "import-vol-other")
	_, err = v.Verify(context.Background(), r, nil, params)
	var ae *Error
	if !errors.As(err, &ae) || ae.Code != "SignatureDoesNotMatch" {
		t.Fatalf("changed parameter: %v", err)
	}
	params.Set("Timestamp", "2015-08-30T12:00:00Z")
	params.Del("Signature")
	params.Set("Signature", signV2("POST", "127.0.0.1:8773", "/", params, suiteSecret))
	_, err = v.Verify(context.Background(), r, nil, params)
	if !errors.As(err, &ae) || ae.Code != "RequestExpired" {
		t.Fatalf("36 minutes old: %v", err)
	}
}

func TestSigV4Query(t *testing.T) {
	// A presigned GET, signed here with the suite's algorithm pieces
	// checked by TestSigV4Suite.
	q := url.Values{
		"Action": {"DescribeVolumes"}, "Version": {"2016-11-15"}, "X-Amz-Algorithm": {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential": {"AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"}, "X-Amz-Date": {"20150830T123600Z"},
		"X-Amz-Expires": {"300"}, "X-Amz-SignedHeaders": {"host"},
	}
	creq := canonicalRequest("GET", "/", q.Encode(), "host:example.amazonaws.com\n", []string{"host"}, sha256Hex(nil))
	sig := hmacSHA256(signingKey(suiteSecret, "20150830", "us-east-1", "service"), stringToSign("20150830T123600Z", "20150830/us-east-1/service/aws4_request", creq))
	q.Set("X-Amz-Signature", hexString(sig))
	r := httptest.NewRequest("GET", "/?"+q.Encode(), nil)
	r.Host = "example.amazonaws.com"
	v := suiteVerifier()
	if id, err := v.Verify(context.Background(), r, nil, q); err != nil || id.Method != "SigV4-query" {
		t.Fatalf("presigned: %+v %v", id, err)
	}
	v.Now = func() time.Time { return suiteTime.Add(301 * time.Second) }
	wantCode(t, v, r, nil, "RequestExpired")
}

func sortedKeys(v url.Values) []string {
	var keys []string
	for k := range v {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func newHMACSHA1(secret string) hash.Hash { return hmac.New(sha1.New, []byte(secret)) }
