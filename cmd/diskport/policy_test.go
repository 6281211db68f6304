package main

import (
	"strings"
	"testing"
)

// TestPolicyRefusals: policy create needs the secret unless --unsigned,
// policy sign refuses what is not a base64 JSON policy, policy check needs
// --signature.
func TestPolicyRefusals(t *testing.T) {
	bin := buildCLI(t)
	t.Setenv(secretEnv, "")
	if code, out := exitCode(t, bin, "policy", "create", "--bucket", "b", "--prefix", "p"); code != 1 || !strings.Contains(out, "--unsigned") || !strings.Contains(out, secretEnv) {
		t.Errorf("policy create without a secret: exit %d, %s", code, out)
	}
	code, out := exitCode(t, bin, "policy", "create", "--bucket", "b", "--prefix", "p", "--unsigned")
	if code != 0 || !strings.Contains(out, "upload_policy") || strings.Contains(out, "upload_policy_signature") {
		t.Errorf("policy create --unsigned: exit %d, %s", code, out)
	}
	t.Setenv(secretEnv, "s3cret")
	for _, bad := range []string{"not base64!", "aGVsbG8gd29ybGQ="} { // the second is base64 of "hello world"
		if code, out := exitCode(t, bin, "policy", "sign", bad); code != 1 || !strings.HasPrefix(out, "diskport: policy sign: ") {
			t.Errorf("policy sign %q: exit %d, %s", bad, code, out)
		}
	}
	if code, out := exitCode(t, bin, "policy", "check", "--bucket", "b", "--prefix", "p", "eyJ9"); code != 2 || !strings.Contains(out, "--signature") {
		t.Errorf("policy check without --signature: exit %d, %s", code, out)
	}
}
