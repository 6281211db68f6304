package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// verifyV2 checks a Signature Version 2 request: the parameters
// AWSAccessKeyId, SignatureVersion=2, SignatureMethod (HmacSHA256 or
// HmacSHA1), Timestamp or Expires, and Signature, in the query string or
// the form body.
func (v *Verifier) verifyV2(ctx context.Context, r *http.Request, params url.Values) (*Identity, error) {
	if sv := params.Get("SignatureVersion"); sv != "2" {
		return nil, fail("AuthFailure", "SignatureVersion "+sv+" is not accepted: use Signature Version 4 (or 2).")
	}
	var h func() hash.Hash
	switch params.Get("SignatureMethod") {
	case "HmacSHA256":
		h = sha256.New
	case "HmacSHA1":
		h = sha1.New
	default:
		return nil, fail("AuthFailure", "SignatureMethod must be HmacSHA256 or HmacSHA1.")
	}
	if params.Get("Signature") == "" {
		return nil, fail("IncompleteSignature", "Signature Version 2 requires the Signature parameter.")
	}
	var check func() error
	switch ts, exp := params.Get("Timestamp"), params.Get("Expires"); {
	case ts != "" && exp != "":
		return nil, fail("AuthFailure", "Give Timestamp or Expires, not both.")
	case ts != "":
		t, err := parseISO(ts)
		if err != nil {
			return nil, fail("AuthFailure", "Timestamp is not an ISO 8601 time.")
		}
		check = func() error { return v.checkTime(t) }
	case exp != "":
		t, err := parseISO(exp)
		if err != nil {
			return nil, fail("AuthFailure", "Expires is not an ISO 8601 time.")
		}
		check = func() error {
			if v.now().After(t) {
				return fail("RequestExpired", "Request has expired: it was valid until "+t.UTC().Format(time.RFC3339)+".")
			}
			return nil
		}
	default:
		return nil, fail("AuthFailure", "Signature Version 2 requires a Timestamp or Expires parameter.")
	}
	akid := params.Get("AWSAccessKeyId")
	secret, account, err := v.secret(ctx, akid)
	if err != nil {
		return nil, err
	}
	got := params.Get("Signature")
	ok := false
	for _, host := range hostForms(r.Host) {
		want := base64.StdEncoding.EncodeToString(hmacV2(h, secret, stringToSignV2(r.Method, host, r.URL.EscapedPath(), params)))
		ok = equal(got, want) || ok
	}
	if !ok {
		return nil, fail("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	if err := check(); err != nil {
		return nil, err
	}
	return &Identity{AccountID: account, AccessKeyID: akid, Method: "SigV2"}, nil
}

// hostForms returns the Host header as sent and without its port: clients
// differ in whether a non-default port is signed.
func hostForms(host string) []string {
	forms := []string{strings.ToLower(host)}
	if h, _, err := net.SplitHostPort(host); err == nil {
		forms = append(forms, strings.ToLower(h))
	}
	return forms
}

func parseISO(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04:05", "2006-01-02T15:04:05.000Z"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, &time.ParseError{Value: s}
}

// stringToSignV2 is METHOD \n host \n path \n the parameters but
// Signature, sorted by name and RFC 3986 encoded.
func stringToSignV2(method, host, escapedPath string, params url.Values) string {
	path := escapedPath
	if path == "" {
		path = "/"
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, val := range params[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(uriEncode(k, true) + "=" + uriEncode(val, true))
		}
	}
	return method + "\n" + host + "\n" + path + "\n" + b.String()
}

func hmacV2(h func() hash.Hash, secret, data string) []byte {
	m := hmac.New(h, []byte(secret))
	m.Write([]byte(data))
	return m.Sum(nil)
}

// uriEncode percent-encodes every byte outside RFC 3986's unreserved set
// (A-Z a-z 0-9 - _ . ~) in upper-case hex; "/" too when encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}

// unescape decodes a query component ("+" is a space); a malformed escape
// is kept as it is.
func unescape(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}
