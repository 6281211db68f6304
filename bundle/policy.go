package bundle

import (
	"bytes"
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/diskport/diskport/internal/s3"
)

// BundleACL is the canned ACL BundleInstance stores a bundle with; an upload
// policy for BundleInstance must grant exactly it.
const BundleACL = "ec2-bundle-read"

// MaxPolicySize bounds the decoded policy document. S3 refuses POST form
// fields (policy included) over 20 KB in all.
const MaxPolicySize = 20 << 10

// PolicyTimeFormat is how builders write a policy's expiration (euca2ools'
// "%Y-%m-%dT%H:%M:%SZ", the Java SDK's "yyyy-MM-dd'T'HH:mm:ss'Z'").
const PolicyTimeFormat = "2006-01-02T15:04:05Z"

// ErrPolicy is the class of every refusal of an upload policy: errors from
// CheckPolicy and ParsePolicy match it with errors.Is.
var ErrPolicy = errors.New("upload policy refused")

// A PolicyError lists every condition an upload policy failed.
type PolicyError struct {
	Problems []string
}

// Error returns "bundle: upload policy: " and the problems joined by "; ".
func (e *PolicyError) Error() string {
	return "bundle: upload policy: " + strings.Join(e.Problems, "; ")
}

// Unwrap returns ErrPolicy.
func (e *PolicyError) Unwrap() error { return ErrPolicy }

func (e *PolicyError) addf(format string, args ...any) {
	e.Problems = append(e.Problems, fmt.Sprintf(format, args...))
}

// A Condition is one entry of a policy's conditions list, normalised: Op is
// "eq", "starts-with" or "content-length-range"; Field is the form field
// without "$", lower-cased ("key", "bucket", "acl"); Value the operand of
// eq and starts-with; Min and Max the bounds of content-length-range.
type Condition struct {
	Op       string
	Field    string
	Value    string
	Min, Max int64
}

// A Policy is an S3 POST upload policy document.
type Policy struct {
	// Expiration is when the policy stops granting uploads.
	Expiration time.Time
	// Conditions, in document order.
	Conditions []Condition
}

// NewPolicy returns the policy BundleInstance needs: uploads to bucket, of
// keys starting with prefix, with the ec2-bundle-read ACL, until expires
// (truncated to the second, in UTC).
func NewPolicy(bucket, prefix string, expires time.Time) *Policy {
	return &Policy{
		Expiration: expires.UTC().Truncate(time.Second),
		Conditions: []Condition{
			{Op: "eq", Field: "bucket", Value: bucket},
			{Op: "eq", Field: "acl", Value: BundleACL},
			{Op: "starts-with", Field: "key", Value: prefix},
		},
	}
}

// JSON returns the policy document in the AWS SDK's layout (the Java and
// .NET S3UploadPolicy classes and the Eucalyptus console):
//
//	{"expiration": "…","conditions": [{"bucket": "B"},{"acl": "ec2-bundle-read"},["starts-with", "$key", "P"]]}
func (p *Policy) JSON() []byte {
	var b bytes.Buffer
	b.WriteString(`{"expiration": `)
	b.Write(jsonString(p.Expiration.UTC().Format(PolicyTimeFormat)))
	b.WriteString(`,"conditions": [`)
	for i, c := range p.Conditions {
		if i > 0 {
			b.WriteByte(',')
		}
		switch c.Op {
		case "eq":
			fmt.Fprintf(&b, "{%s: %s}", jsonString(c.Field), jsonString(c.Value))
		case "starts-with":
			fmt.Fprintf(&b, `["starts-with", %s, %s]`, jsonString("$"+c.Field), jsonString(c.Value))
		case "content-length-range":
			fmt.Fprintf(&b, `["content-length-range", %d, %d]`, c.Min, c.Max)
		}
	}
	b.WriteString("]}")
	return b.Bytes()
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return b
}

// Encode returns the policy as Storage.S3.UploadPolicy carries it: base64
// of the JSON document.
func (p *Policy) Encode() string {
	return base64.StdEncoding.EncodeToString(p.JSON())
}

// SignPolicy returns Storage.S3.UploadPolicySignature for the base64 policy
// text: base64(HMAC-SHA1(secret, policyB64)), S3's signature version 2 of
// the text. The HMAC is over the base64 text, not the JSON.
func SignPolicy(secret, policyB64 string) string { return s3.SignV2(secret, policyB64) }

// ParsePolicy decodes a base64 upload policy and parses its JSON. It checks
// the document's shape only (expiration present and a time, every condition
// well formed); CheckPolicy checks what it grants.
func ParsePolicy(policyB64 string) (*Policy, error) {
	perr := &PolicyError{}
	if len(policyB64) > base64.StdEncoding.EncodedLen(MaxPolicySize) {
		perr.addf("policy is %d bytes of base64, over the %d-byte limit", len(policyB64), base64.StdEncoding.EncodedLen(MaxPolicySize))
		return nil, perr
	}
	doc, err := base64.StdEncoding.Strict().DecodeString(policyB64)
	if err != nil {
		perr.addf("policy is not valid base64: %v", err)
		return nil, perr
	}
	if len(doc) > MaxPolicySize {
		perr.addf("policy is %d bytes, over the %d-byte limit", len(doc), MaxPolicySize)
		return nil, perr
	}
	var raw struct {
		Expiration *string            `json:"expiration"`
		Conditions *[]json.RawMessage `json:"conditions"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		perr.addf("policy is not a JSON object: %v", err)
		return nil, perr
	}
	if dec.More() {
		perr.addf("policy has data after the JSON object")
		return nil, perr
	}
	p := &Policy{}
	switch {
	case raw.Expiration == nil:
		perr.addf(`policy has no "expiration"`)
	default:
		t, err := parsePolicyTime(*raw.Expiration)
		if err != nil {
			perr.addf(`"expiration" %q is not an ISO 8601 UTC time`, *raw.Expiration)
		}
		p.Expiration = t
	}
	if raw.Conditions == nil {
		perr.addf(`policy has no "conditions" list`)
	} else {
		for i, rc := range *raw.Conditions {
			c, err := parseCondition(rc)
			if err != nil {
				perr.addf("condition %d %s: %v", i, truncate(string(rc), 80), err)
				continue
			}
			p.Conditions = append(p.Conditions, c)
		}
	}
	if len(perr.Problems) > 0 {
		return nil, perr
	}
	return p, nil
}

func parsePolicyTime(s string) (time.Time, error) {
	for _, layout := range []string{PolicyTimeFormat, "2006-01-02T15:04:05.000Z", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("bad time")
}

func parseCondition(rc json.RawMessage) (Condition, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(rc, &obj); err == nil {
		if len(obj) != 1 {
			return Condition{}, fmt.Errorf("an object condition must have exactly one field, has %d", len(obj))
		}
		for k, v := range obj {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return Condition{}, fmt.Errorf("value of %q is not a string", k)
			}
			return Condition{Op: "eq", Field: strings.ToLower(strings.TrimPrefix(k, "$")), Value: s}, nil
		}
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(rc, &arr); err != nil || len(arr) == 0 {
		return Condition{}, errors.New("not an object or a non-empty list")
	}
	var op string
	if err := json.Unmarshal(arr[0], &op); err != nil {
		return Condition{}, errors.New("operator is not a string")
	}
	op = strings.ToLower(op)
	switch op {
	case "eq", "starts-with":
		var field, value string
		if len(arr) != 3 || json.Unmarshal(arr[1], &field) != nil || json.Unmarshal(arr[2], &value) != nil {
			return Condition{}, fmt.Errorf("%s needs [%q, \"$field\", \"value\"]", op, op)
		}
		if !strings.HasPrefix(field, "$") {
			return Condition{}, fmt.Errorf("field %q does not start with $", field)
		}
		return Condition{Op: op, Field: strings.ToLower(field[1:]), Value: value}, nil
	case "content-length-range":
		if len(arr) != 3 {
			return Condition{}, errors.New(`content-length-range needs ["content-length-range", min, max]`)
		}
		lo, err1 := parseLength(arr[1])
		hi, err2 := parseLength(arr[2])
		if err1 != nil || err2 != nil || lo > hi {
			return Condition{}, errors.New("content-length-range bounds are not 0 <= min <= max integers")
		}
		return Condition{Op: op, Field: "content-length", Min: lo, Max: hi}, nil
	}
	return Condition{}, fmt.Errorf("unknown operator %q", op)
}

func parseLength(m json.RawMessage) (int64, error) {
	var n json.Number
	if err := json.Unmarshal(m, &n); err != nil {
		var s string
		if err := json.Unmarshal(m, &s); err != nil {
			return 0, err
		}
		n = json.Number(s)
	}
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || v < 0 {
		return 0, errors.New("not a non-negative integer")
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// A Grant is what a BundleInstance request asks an upload policy to allow:
// the Storage.S3.* parameters, the time, and (when known) the secret key.
type Grant struct {
	Bucket string // Storage.S3.Bucket
	Prefix string // Storage.S3.Prefix: the bundle's keys are Prefix.part.NN and Prefix.manifest.xml
	// Signature is Storage.S3.UploadPolicySignature; checked when Secret is
	// set.
	Signature string
	// Secret is the secret access key of Storage.S3.AWSAccessKeyId, when
	// known; empty skips the signature check.
	Secret string
	// Now is the time the policy must not have expired at; zero means
	// time.Now().
	Now time.Time
	// MaxObjectSize is the largest object that will be posted (the part
	// size); a content-length-range must admit 1..MaxObjectSize. Zero means
	// DefaultPartSize.
	MaxObjectSize int64
}

// CheckPolicy checks an upload policy as BundleInstance receives it: valid
// base64 and JSON, not expired at g.Now, granting uploads to g.Bucket of
// keys starting with g.Prefix with the ec2-bundle-read ACL, asking for no
// form field BundleInstance does not send (key, acl, AWSAccessKeyId, policy,
// signature, file), and — when g.Secret is set — signed by it. The error is
// a *PolicyError naming every condition that failed.
func CheckPolicy(policyB64 string, g Grant) (*Policy, error) {
	perr := &PolicyError{}
	if g.Secret != "" {
		want := SignPolicy(g.Secret, policyB64)
		if !hmac.Equal([]byte(want), []byte(g.Signature)) {
			perr.addf("signature %q does not match the policy signed with the secret key", g.Signature)
		}
	}
	p, err := ParsePolicy(policyB64)
	if err != nil {
		var pe *PolicyError
		if errors.As(err, &pe) {
			perr.Problems = append(perr.Problems, pe.Problems...)
		}
		return nil, perr
	}
	now := g.Now
	if now.IsZero() {
		now = time.Now()
	}
	if !now.Before(p.Expiration) {
		perr.addf("policy expired at %s (now %s)", p.Expiration.Format(PolicyTimeFormat), now.UTC().Format(PolicyTimeFormat))
	}
	maxObj := g.MaxObjectSize
	if maxObj <= 0 {
		maxObj = DefaultPartSize
	}
	var haveBucket, haveACL, haveKey bool
	for _, c := range p.Conditions {
		switch c.Field {
		case "bucket":
			haveBucket = true
			if !c.admits(g.Bucket) {
				perr.addf("policy grants bucket %s %q, not %q", c.Op, c.Value, g.Bucket)
			}
		case "acl":
			haveACL = true
			if !c.admits(BundleACL) {
				perr.addf("policy grants acl %s %q, not %q", c.Op, c.Value, BundleACL)
			}
		case "key":
			haveKey = true
			// Every key of the bundle starts with Prefix; the condition must
			// admit all of them, so it must be a starts-with of a prefix of
			// Prefix (eq admits a single key only).
			if c.Op != "starts-with" || !strings.HasPrefix(g.Prefix, c.Value) {
				perr.addf("policy grants keys %s %q, which does not cover every key starting with %q", c.Op, c.Value, g.Prefix)
			}
		case "content-length":
			if c.Min > 1 || c.Max < maxObj {
				perr.addf("content-length-range [%d, %d] does not admit objects of 1 to %d bytes", c.Min, c.Max, maxObj)
			}
		default:
			if !strings.HasPrefix(c.Field, "x-ignore-") {
				perr.addf("policy requires form field %q, which BundleInstance does not send", c.Field)
			}
		}
	}
	if !haveBucket {
		perr.addf("policy has no bucket condition (want %q)", g.Bucket)
	}
	if !haveACL {
		perr.addf("policy has no acl condition (want %q)", BundleACL)
	}
	if !haveKey {
		perr.addf("policy has no $key condition (want starts-with %q)", g.Prefix)
	}
	if len(perr.Problems) > 0 {
		return p, perr
	}
	return p, nil
}

// admits reports whether the condition lets the field have value v.
func (c Condition) admits(v string) bool {
	switch c.Op {
	case "eq":
		return v == c.Value
	case "starts-with":
		return strings.HasPrefix(v, c.Value)
	}
	return false
}
