package bundle

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// Test vectors from /work/shared/docs/ec2.md §3.2 (computed there from
// euca2ools' generate_default_policy on Python 2.7 and the AWS Java SDK's
// S3UploadPolicy, secret "secret").
const (
	eucaPolicyJSON = `{"conditions": [{"acl": "ec2-bundle-read"}, {"bucket": "mybucket"}, ["starts-with", "$key", "myprefix"]], "expiration": "2014-01-01T00:00:00Z"}`
	eucaPolicyB64  = "eyJjb25kaXRpb25zIjogW3siYWNsIjogImVjMi1idW5kbGUtcmVhZCJ9LCB7ImJ1Y2tldCI6ICJteWJ1Y2tldCJ9LCBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAibXlwcmVmaXgiXV0sICJleHBpcmF0aW9uIjogIjIwMTQtMDEtMDFUMDA6MDA6MDBaIn0="
	eucaPolicySig  = "KlAJ25heByDBH+4oGbcCAW/nm3A="
	javaPolicyJSON = `{"expiration": "2014-01-01T00:00:00Z","conditions": [{"bucket": "mybucket"},{"acl": "ec2-bundle-read"},["starts-with", "$key", "myprefix"]]}`
	javaPolicySig  = "l3gtN8XardDIMgHBez/pxQiUmnU="
)

var vectorTime = time.Date(2014, 1, 1, 0, 0, 0, 0, time.UTC)

func TestPolicyVectors(t *testing.T) {
	if got := base64.StdEncoding.EncodeToString([]byte(eucaPolicyJSON)); got != eucaPolicyB64 {
		t.Fatalf("euca2ools policy base64 = %s, want %s", got, eucaPolicyB64)
	}
	if got := SignPolicy("secret", eucaPolicyB64); got != eucaPolicySig {
		t.Errorf("euca2ools policy signature = %s, want %s", got, eucaPolicySig)
	}
	p := NewPolicy("mybucket", "myprefix", vectorTime)
	if got := string(p.JSON()); got != javaPolicyJSON {
		t.Fatalf("JSON()\n got %s\nwant %s", got, javaPolicyJSON)
	}
	if got := SignPolicy("secret", p.Encode()); got != javaPolicySig {
		t.Errorf("Java SDK policy signature = %s, want %s", got, javaPolicySig)
	}
	// Both builders' policies grant the same thing.
	for _, c := range []struct{ name, b64, sig string }{
		{"euca2ools", eucaPolicyB64, eucaPolicySig},
		{"java", p.Encode(), javaPolicySig},
	} {
		g := Grant{Bucket: "mybucket", Prefix: "myprefix", Signature: c.sig, Secret: "secret", Now: vectorTime.Add(-time.Hour)}
		got, err := CheckPolicy(c.b64, g)
		if err != nil {
			t.Errorf("%s: CheckPolicy: %v", c.name, err)
			continue
		}
		if !got.Expiration.Equal(vectorTime) || len(got.Conditions) != 3 {
			t.Errorf("%s: parsed %+v", c.name, got)
		}
	}
}

func TestCheckPolicyFailures(t *testing.T) {
	good := Grant{Bucket: "mybucket", Prefix: "myprefix/img", Signature: javaPolicySig, Secret: "secret", Now: vectorTime.Add(-time.Minute)}
	b64 := NewPolicy("mybucket", "myprefix", vectorTime).Encode()
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name   string
		policy string
		edit   func(g *Grant)
		want   []string // substrings, one per expected problem
	}{
		{"ok", b64, func(g *Grant) {}, nil},
		{"no secret skips signature", b64, func(g *Grant) { g.Secret, g.Signature = "", "" }, nil},
		{"wrong signature", b64, func(g *Grant) { g.Signature = eucaPolicySig }, []string{"signature"}},
		{"wrong secret", b64, func(g *Grant) { g.Secret = "other" }, []string{"signature"}},
		{"expired", b64, func(g *Grant) { g.Now = vectorTime }, []string{"expired at 2014-01-01T00:00:00Z"}},
		{"other bucket", b64, func(g *Grant) { g.Bucket = "yourbucket" }, []string{`bucket eq "mybucket", not "yourbucket"`}},
		{"prefix outside", b64, func(g *Grant) { g.Prefix = "other/img" }, []string{`keys starts-with "myprefix"`}},
		{"everything", b64, func(g *Grant) { g.Bucket, g.Prefix, g.Now, g.Signature = "b", "p", vectorTime.Add(time.Hour), "x" },
			[]string{"signature", "expired", "bucket", "keys"}},
		{"bad base64", "eyJ!!", func(g *Grant) { g.Secret = "" }, []string{"not valid base64"}},
		{"not json", enc("{expiration"), func(g *Grant) { g.Secret = "" }, []string{"not a JSON object"}},
		{"trailing data", enc(`{"expiration":"2014-01-01T00:00:00Z","conditions":[]} {}`), func(g *Grant) { g.Secret = "" }, []string{"after the JSON object"}},
		{"no expiration", enc(`{"conditions":[]}`), func(g *Grant) { g.Secret = "" }, []string{`no "expiration"`}},
		{"bad expiration", enc(`{"expiration":"tomorrow","conditions":[]}`), func(g *Grant) { g.Secret = "" }, []string{"not an ISO 8601"}},
		{"wrong acl", enc(`{"expiration":"2014-01-01T00:00:00Z","conditions":[{"bucket":"mybucket"},{"acl":"public-read"},["starts-with","$key",""]]}`),
			func(g *Grant) { g.Secret = "" }, []string{`acl eq "public-read"`}},
		{"missing conditions", enc(`{"expiration":"2014-01-01T00:00:00Z","conditions":[]}`), func(g *Grant) { g.Secret = "" },
			[]string{"no bucket condition", "no acl condition", "no $key condition"}},
		{"eq key", enc(`{"expiration":"2014-01-01T00:00:00Z","conditions":[{"bucket":"mybucket"},{"acl":"ec2-bundle-read"},["eq","$key","myprefix/img.part.00"]]}`),
			func(g *Grant) { g.Secret = "" }, []string{"does not cover every key"}},
		{"extra field", enc(`{"expiration":"2014-01-01T00:00:00Z","conditions":[{"bucket":"mybucket"},{"acl":"ec2-bundle-read"},["starts-with","$key",""],{"success_action_status":"201"}]}`),
			func(g *Grant) { g.Secret = "" }, []string{`form field "success_action_status"`}},
		{"small length range", enc(`{"expiration":"2014-01-01T00:00:00Z","conditions":[{"bucket":"mybucket"},{"acl":"ec2-bundle-read"},["starts-with","$key",""],["content-length-range",0,1048576]]}`),
			func(g *Grant) { g.Secret = "" }, []string{"content-length-range [0, 1048576]"}},
		{"bad condition", enc(`{"expiration":"2014-01-01T00:00:00Z","conditions":[["frobnicate","$key","x"],{"a":"b","c":"d"},17]}`),
			func(g *Grant) { g.Secret = "" }, []string{`unknown operator "frobnicate"`, "exactly one field", "not an object or a non-empty list"}},
		{"ok with length range and millis", enc(`{"expiration":"2014-01-01T00:00:00.000Z","conditions":[{"bucket":"mybucket"},["starts-with","$acl","ec2-"],["starts-with","$key",""],["content-length-range",1,"10485760"]]}`),
			func(g *Grant) { g.Secret = "" }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := good
			tc.edit(&g)
			_, err := CheckPolicy(tc.policy, g)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckPolicy: %v", err)
				}
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPolicy) {
				t.Fatalf("CheckPolicy = %v, want a *PolicyError", err)
			}
			if len(pe.Problems) != len(tc.want) {
				t.Errorf("got %d problems %q, want %d", len(pe.Problems), pe.Problems, len(tc.want))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestPolicyTooLarge(t *testing.T) {
	big := base64.StdEncoding.EncodeToString(make([]byte, MaxPolicySize+1))
	if _, err := ParsePolicy(big); !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("ParsePolicy(%d bytes) = %v", len(big), err)
	}
}
