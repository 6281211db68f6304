package s3

import (
	"encoding/base64"
	"net/url"
	"testing"
	"time"
)

// TestSignV2Vectors checks the signature version 2 vectors of
// /work/shared/docs/ec2.md: the AWS documentation's query-string
// authentication example (§5.1: the published signature verifies with the
// bucket johnsmith; the doc's later bucket name gives the second value)
// and the BundleInstance upload policies of euca2ools and the AWS Java SDK
// (§3.2, secret "secret"), which use the same HMAC over the base64 text.
func TestSignV2Vectors(t *testing.T) {
	const awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	javaPolicy := base64.StdEncoding.EncodeToString([]byte(`{"expiration": "2014-01-01T00:00:00Z","conditions": [{"bucket": "mybucket"},{"acl": "ec2-bundle-read"},["starts-with", "$key", "myprefix"]]}`))
	for _, c := range []struct {
		name, secret, stringToSign, want string
	}{
		{"AWS example, bucket johnsmith", awsSecret, "GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg", "NpgCjnDzrM+WFzoENXmpNDUsSn8="},
		{"AWS example, bucket awsexamplebucket1", awsSecret, "GET\n\n\n1175139620\n/awsexamplebucket1/photos/puppy.jpg", "1No4mq5ETf02z8aet9voy6gui6E="},
		{"euca2ools policy", "secret", "eyJjb25kaXRpb25zIjogW3siYWNsIjogImVjMi1idW5kbGUtcmVhZCJ9LCB7ImJ1Y2tldCI6ICJteWJ1Y2tldCJ9LCBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAibXlwcmVmaXgiXV0sICJleHBpcmF0aW9uIjogIjIwMTQtMDEtMDFUMDA6MDA6MDBaIn0=", "KlAJ25heByDBH+4oGbcCAW/nm3A="},
		{"AWS Java SDK policy", "secret", javaPolicy, "l3gtN8XardDIMgHBez/pxQiUmnU="},
	} {
		if got := SignV2(c.secret, c.stringToSign); got != c.want {
			t.Errorf("%s: SignV2 = %s, want %s", c.name, got, c.want)
		}
	}
}

// TestPresignV2Vector builds the AWS documentation's example URL (§5.1).
func TestPresignV2Vector(t *testing.T) {
	exp := time.Unix(1175139620, 0)
	ep, _ := url.Parse("https://s3.amazonaws.com")
	got := PresignV2("GET", ep, "johnsmith", "photos/puppy.jpg", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", exp)
	want := "https://s3.amazonaws.com/johnsmith/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestPathEscape(t *testing.T) {
	for in, want := range map[string]string{
		"a b/c+d/é~":       "a%20b/c%2Bd/%C3%A9~",
		"photos/puppy.jpg": "photos/puppy.jpg",
		"x?y#z&=%":         "x%3Fy%23z%26%3D%25",
	} {
		if got := PathEscape(in); got != want {
			t.Errorf("PathEscape(%q) = %q, want %q", in, got, want)
		}
	}
}
