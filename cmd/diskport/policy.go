package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/diskport/diskport/bundle"
)

func init() {
	register(&command{
		name:    "policy",
		summary: "create, sign or check a BundleInstance S3 upload policy",
		usage: "policy create --bucket B --prefix P [--expires 24h] [--unsigned]\n" +
			"       diskport policy sign POLICY_B64\n" +
			"       diskport policy check --bucket B --prefix P --signature S POLICY_B64",
		run:  runPolicy,
		subs: []string{"create", "sign", "check"},
	})
}

// runPolicy runs `diskport policy`.
func runPolicy(c *command, args []string) error {
	if len(args) == 0 {
		return usageError("missing subcommand: create, sign or check")
	}
	switch args[0] {
	case "create":
		return policyCreate(c, args[1:])
	case "sign":
		return policySign(c, args[1:])
	case "check":
		return policyCheck(c, args[1:])
	case "-h", "-help", "--help":
		_, err := c.parse(c.flags(), []string{"--help"}, 0, 0)
		return err
	}
	return usageError("unknown subcommand %q: want create, sign or check", args[0])
}

func policyCreate(c *command, args []string) error {
	fs := c.flags()
	bucket := fs.String("bucket", "", "the bucket the policy grants (Storage.S3.Bucket)")
	prefix := fs.String("prefix", "", "the key prefix it grants (Storage.S3.Prefix)")
	expires := duration(24 * time.Hour)
	fs.Var(&expires, "expires", "how long the policy lasts: a `duration` such as 24h or 7d")
	unsigned := fs.Bool("unsigned", false, "print the policy without a signature (when "+secretEnv+" is not set)")
	if _, err := c.parse(fs, args, 0, 0); err != nil {
		return err
	}
	if *bucket == "" {
		return usageError("--bucket is required")
	}
	secret := os.Getenv(secretEnv)
	if secret == "" && !*unsigned {
		return errors.New("policy create: " + secretEnv + " is not set: set it to sign the policy, or give --unsigned")
	}
	if expires <= 0 {
		return usageError("--expires must be positive")
	}
	p := bundle.NewPolicy(*bucket, *prefix, time.Now().Add(time.Duration(expires)))
	out := struct {
		Policy    string `json:"upload_policy"`
		Signature string `json:"upload_policy_signature,omitempty"`
	}{Policy: p.Encode()}
	if secret != "" && !*unsigned {
		out.Signature = bundle.SignPolicy(secret, out.Policy)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func policySign(c *command, args []string) error {
	pos, err := c.parse(c.flags(), args, 1, 1)
	if err != nil {
		return err
	}
	if _, err := bundle.ParsePolicy(pos[0]); err != nil {
		return fmt.Errorf("policy sign: %w", err)
	}
	secret := os.Getenv(secretEnv)
	if secret == "" {
		return errors.New("policy sign: " + secretEnv + " is not set")
	}
	fmt.Fprintln(stdout, bundle.SignPolicy(secret, pos[0]))
	return nil
}

func policyCheck(c *command, args []string) error {
	fs := c.flags()
	bucket := fs.String("bucket", "", "Storage.S3.Bucket the policy must grant")
	prefix := fs.String("prefix", "", "Storage.S3.Prefix the policy must grant")
	sig := fs.String("signature", "", "Storage.S3.UploadPolicySignature, checked when "+secretEnv+" is set")
	pos, err := c.parse(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *bucket == "" {
		return usageError("--bucket is required")
	}
	if *sig == "" {
		return usageError("--signature is required")
	}
	secret := os.Getenv(secretEnv)
	if secret == "" {
		fmt.Fprintf(stderr, "diskport: %s is not set: the signature is not checked\n", secretEnv)
	}
	p, err := bundle.CheckPolicy(pos[0], bundle.Grant{Bucket: *bucket, Prefix: *prefix, Signature: *sig, Secret: secret})
	if err != nil {
		var pe *bundle.PolicyError
		if errors.As(err, &pe) {
			for _, problem := range pe.Problems {
				fmt.Fprintf(stderr, "policy check failed: %s\n", problem)
			}
		}
		return err
	}
	fmt.Fprintf(stdout, "policy grants s3://%s/%s* with acl %s until %s\n", *bucket, *prefix, bundle.BundleACL, p.Expiration.Format(bundle.PolicyTimeFormat))
	return nil
}
