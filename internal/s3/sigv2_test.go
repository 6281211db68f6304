package s3

import (
	"net/url"
	"testing"
	"time"
)

// The AWS documentation's query-string authentication example (digest
// §5.1): the published signature verifies with the bucket johnsmith; the
// doc's later bucket name gives the second value.
func TestPresignV2Vectors(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	exp := time.Unix(1175139620, 0)
	ep, _ := url.Parse("https://s3.amazonaws.com")
	got := PresignV2("GET", ep, "johnsmith", "photos/puppy.jpg", "AKIAIOSFODNN7EXAMPLE", secret, exp)
	want := "https://s3.amazonaws.com/johnsmith/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if s := SignV2(secret, "GET\n\n\n1175139620\n/awsexamplebucket1/photos/puppy.jpg"); s != "1No4mq5ETf02z8aet9voy6gui6E=" {
		t.Fatalf("awsexamplebucket1 signature %s", s)
	}
	// The BundleInstance policy vectors of §3.2 use the same HMAC.
	if s := SignV2("secret", "eyJjb25kaXRpb25zIjogW3siYWNsIjogImVjMi1idW5kbGUtcmVhZCJ9LCB7ImJ1Y2tldCI6ICJteWJ1Y2tldCJ9LCBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAibXlwcmVmaXgiXV0sICJleHBpcmF0aW9uIjogIjIwMTQtMDEtMDFUMDA6MDA6MDBaIn0="); s != "KlAJ25heByDBH+4oGbcCAW/nm3A=" {
		t.Fatalf("policy signature %s", s)
	}
	if e := PathEscape("a b/c+d/é~"); e != "a%20b/c%2Bd/%C3%A9~" {
		t.Fatalf("escape %s", e)
	}
}
