package auth

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzVerify verifies fuzzed requests — method, target (path and query),
// Authorization, X-Amz-Date and Date headers, Host and form body — the way
// the server calls Verify: an *Error, or an identity for the one key the
// lookup knows, never a panic; no message repeats the secret or a
// signature the request carried. Seeded with the SigV4 suite's requests,
// a presigned query and SigV2 parameters.
func FuzzVerify(f *testing.F) {
	const vanilla = suiteScope + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
	f.Add("GET", "/", vanilla, "20150830T123600Z", "", "example.amazonaws.com", "")
	f.Add("POST", "/", suiteScope+"SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a", "20150830T123600Z", "", "example.amazonaws.com", "Param1=value1")
	f.Add("GET", "/?Param2=value2&Param1=value1", suiteScope+"SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500", "20150830T123600Z", "", "example.amazonaws.com", "")
	f.Add("GET", "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=00", "", "", "", "example.amazonaws.com", "")
	f.Add("GET", "/", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,SignedHeaders=host;;date,Signature=x", "", "Sun, 30 Aug 2015 12:36:00 GMT", "h", "")
	f.Add("POST", "/", "", "", "", "127.0.0.1:8773", "Action=DescribeVolumes&AWSAccessKeyId=AKIDEXAMPLE&SignatureVersion=2&SignatureMethod=HmacSHA256&Timestamp=2015-08-30T12%3A30%3A00Z&Signature=abc%3D")
	f.Add("GET", "/?SignatureVersion=2&SignatureMethod=HmacSHA1&Expires=2015-08-30T12:40:00&Signature=x&AWSAccessKeyId=other", "", "", "", "[::1]:80", "")
	f.Add("GET", "/", "AWS abc:def", "", "", "h", "")
	v := suiteVerifier()
	f.Fuzz(func(t *testing.T, method, target, authz, amzDate, date, host, body string) {
		if len(target)+len(authz)+len(body) > 4096 {
			return
		}
		r, err := http.NewRequest(method, "http://h"+target, strings.NewReader(body))
		if err != nil || r.URL.Host != "h" {
			return
		}
		r.Host = host
		for k, v := range map[string]string{"Authorization": authz, "X-Amz-Date": amzDate, "Date": date, "Content-Type": "application/x-www-form-urlencoded"} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		params, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return
		}
		if form, err := url.ParseQuery(body); err == nil {
			for k, v := range form {
				params[k] = append(params[k], v...)
			}
		}
		id, err := v.Verify(context.Background(), r, []byte(body), params)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if ae.Status() < 400 || ae.Status() > 499 {
				t.Fatalf("%v answered %d", ae, ae.Status())
			}
			msg := ae.Error()
			if strings.Contains(msg, suiteSecret) {
				t.Fatalf("message repeats the secret: %s", msg)
			}
			// Signatures are 28 (SigV2) or 64 (SigV4) characters; a short
			// one may be a word of a message ("HmacSHA1").
			for _, sig := range []string{params.Get("Signature"), params.Get("X-Amz-Signature"), signatureOf(authz)} {
				if len(sig) >= 20 && strings.Contains(msg, sig) {
					t.Fatalf("message repeats the signature %q: %s", sig, msg)
				}
			}
			return
		}
		if id == nil || id.AccessKeyID != suiteKey || id.AccountID != "111122223333" {
			t.Fatalf("verified as %+v", id)
		}
	})
}

// signatureOf returns the Signature= field of an Authorization header.
func signatureOf(authz string) string {
	_, sig, ok := strings.Cut(authz, "Signature=")
	if !ok {
		return ""
	}
	sig, _, _ = strings.Cut(sig, ",")
	return strings.TrimSpace(sig)
}
