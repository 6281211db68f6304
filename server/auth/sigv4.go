package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	algorithmV4 = "AWS4-HMAC-SHA256"
	amzDate     = "20060102T150405Z"
)

// v4Request is what a SigV4 signature covers, parsed from a request.
type v4Request struct {
	accessKey, date, region, service string // the credential scope
	signedHeaders                    []string
	signature                        string
	time                             time.Time // the signing time
	timeString                       string    // as it appears in the string to sign
}

func (v *Verifier) verifyV4Header(ctx context.Context, r *http.Request, body []byte) (*Identity, error) {
	h := r.Header.Get("Authorization")
	alg, rest, _ := strings.Cut(h, " ")
	if alg != algorithmV4 {
		if strings.HasPrefix(h, "AWS ") {
			return nil, fail("AuthFailure", "Signature Version 2 in an Authorization header (S3 style) is not accepted by EC2: sign with Signature Version 4.")
		}
		return nil, fail("IncompleteSignature", "Unsupported Authorization algorithm (want "+algorithmV4+").")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fail("IncompleteSignature", "Malformed Authorization header: "+strconv.Quote(strings.TrimSpace(k))+" has no value.")
		}
		fields[k] = val
	}
	for _, k := range []string{"Credential", "SignedHeaders", "Signature"} {
		if fields[k] == "" {
			return nil, fail("IncompleteSignature", "Authorization header requires a '"+k+"' parameter.")
		}
	}
	req := &v4Request{signature: fields["Signature"], signedHeaders: strings.Split(fields["SignedHeaders"], ";")}
	if err := req.parseCredential(fields["Credential"]); err != nil {
		return nil, err
	}
	if ds := r.Header.Get("X-Amz-Date"); ds != "" {
		t, err := time.Parse(amzDate, ds)
		if err != nil {
			return nil, fail("IncompleteSignature", "X-Amz-Date "+strconv.Quote(ds)+" is not of the form 20060102T150405Z.")
		}
		req.time, req.timeString = t, ds
	} else if ds := r.Header.Get("Date"); ds != "" {
		t, err := http.ParseTime(ds)
		if err != nil {
			return nil, fail("IncompleteSignature", "Date header "+strconv.Quote(ds)+" is not an HTTP date.")
		}
		req.time, req.timeString = t, t.UTC().Format(amzDate)
	} else {
		return nil, fail("IncompleteSignature", "A signed request needs an X-Amz-Date (or Date) header.")
	}
	return v.checkV4(ctx, r, body, req, r.URL.RawQuery, "SigV4", 0)
}

func (v *Verifier) verifyV4Query(ctx context.Context, r *http.Request, body []byte) (*Identity, error) {
	q := r.URL.Query()
	if alg := q.Get("X-Amz-Algorithm"); alg != algorithmV4 {
		return nil, fail("IncompleteSignature", "Unsupported X-Amz-Algorithm (want "+algorithmV4+").")
	}
	for _, k := range []string{"X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if q.Get(k) == "" {
			return nil, fail("IncompleteSignature", "A presigned request requires the '"+k+"' parameter.")
		}
	}
	req := &v4Request{signature: q.Get("X-Amz-Signature"), signedHeaders: strings.Split(q.Get("X-Amz-SignedHeaders"), ";")}
	if err := req.parseCredential(q.Get("X-Amz-Credential")); err != nil {
		return nil, err
	}
	t, err := time.Parse(amzDate, q.Get("X-Amz-Date"))
	if err != nil {
		return nil, fail("IncompleteSignature", "X-Amz-Date is not of the form 20060102T150405Z.")
	}
	req.time, req.timeString = t, q.Get("X-Amz-Date")
	var expires time.Duration
	if e := q.Get("X-Amz-Expires"); e != "" {
		n, err := strconv.Atoi(e)
		if err != nil || n < 0 || n > 604800 {
			return nil, fail("AuthFailure", "X-Amz-Expires must be a number of seconds from 0 to 604800.")
		}
		expires = time.Duration(n) * time.Second
	}
	return v.checkV4(ctx, r, body, req, withoutParam(r.URL.RawQuery, "X-Amz-Signature"), "SigV4-query", expires)
}

func (req *v4Request) parseCredential(c string) error {
	parts := strings.Split(c, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return fail("IncompleteSignature", "Credential must be ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request.")
	}
	req.accessKey, req.date, req.region, req.service = parts[0], parts[1], parts[2], parts[3]
	return nil
}

// checkV4 verifies a parsed SigV4 request. expires, when not zero, is a
// presigned request's lifetime from its signing time.
func (v *Verifier) checkV4(ctx context.Context, r *http.Request, body []byte, req *v4Request, rawQuery, method string, expires time.Duration) (*Identity, error) {
	if req.service != v.service() {
		return nil, fail("SignatureDoesNotMatch", "Credential should be scoped to the service '"+v.service()+"', not "+strconv.Quote(req.service)+".")
	}
	if !strings.HasPrefix(req.timeString, req.date) {
		return nil, fail("SignatureDoesNotMatch", "The credential scope's date "+strconv.Quote(req.date)+" is not the request's date "+strconv.Quote(req.timeString[:min(8, len(req.timeString))])+".")
	}
	if !sort.StringsAreSorted(req.signedHeaders) || !contains(req.signedHeaders, "host") {
		return nil, fail("SignatureDoesNotMatch", "SignedHeaders must be sorted, lower-case, and include host.")
	}
	secret, account, err := v.secret(ctx, req.accessKey)
	if err != nil {
		return nil, err
	}
	creq := canonicalRequest(r.Method, r.URL.EscapedPath(), rawQuery, canonicalHeaders(r, req.signedHeaders), req.signedHeaders, sha256Hex(body))
	sts := stringToSign(req.timeString, req.date+"/"+req.region+"/"+req.service+"/aws4_request", creq)
	want := hex.EncodeToString(hmacSHA256(signingKey(secret, req.date, req.region, req.service), sts))
	if !equal(strings.ToLower(req.signature), want) {
		return nil, fail("SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	if expires > 0 {
		if now := v.now(); now.After(req.time.Add(expires)) || req.time.After(now.Add(MaxSkew)) {
			return nil, fail("RequestExpired", "Request has expired: the presigned request was valid until "+req.time.Add(expires).UTC().Format(time.RFC3339)+".")
		}
	} else if err := v.checkTime(req.time); err != nil {
		return nil, err
	}
	return &Identity{AccountID: account, AccessKeyID: req.accessKey, Method: method, Region: req.region}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// canonicalRequest builds SigV4's canonical request. escapedPath is the
// path as sent; for services other than S3 it is encoded once more.
func canonicalRequest(method, escapedPath, rawQuery, headers string, signed []string, payloadHash string) string {
	path := escapedPath
	if path == "" {
		path = "/"
	}
	return method + "\n" + uriEncode(path, false) + "\n" + canonicalQuery(rawQuery) + "\n" +
		headers + "\n" + strings.Join(signed, ";") + "\n" + payloadHash
}

// canonicalHeaders renders the signed headers: lower-case names, values
// trimmed with inner runs of spaces folded, repeated values joined by
// commas, one "name:value\n" each.
func canonicalHeaders(r *http.Request, signed []string) string {
	var b strings.Builder
	for _, name := range signed {
		var values []string
		switch name {
		case "host":
			values = []string{r.Host}
		case "content-length":
			values = r.Header.Values("Content-Length")
			if len(values) == 0 && r.ContentLength >= 0 {
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			values = r.TransferEncoding
		default:
			values = r.Header.Values(name)
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, val := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strings.Join(strings.Fields(val), " "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// canonicalQuery sorts the query's parameters by name and value, each
// re-encoded the RFC 3986 way.
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var pairs []kv
	for _, p := range strings.Split(raw, "&") {
		if p == "" {
			continue
		}
		k, val, _ := strings.Cut(p, "=")
		pairs = append(pairs, kv{uriEncode(unescape(k), true), uriEncode(unescape(val), true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k + "=" + p.v)
	}
	return b.String()
}

// withoutParam drops every occurrence of the parameter name from a raw
// query string.
func withoutParam(raw, name string) string {
	var keep []string
	for _, p := range strings.Split(raw, "&") {
		if k, _, _ := strings.Cut(p, "="); unescape(k) != name {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, "&")
}

func stringToSign(timeString, scope, creq string) string {
	return algorithmV4 + "\n" + timeString + "\n" + scope + "\n" + sha256Hex([]byte(creq))
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
