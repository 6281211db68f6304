package main

import "github.com/diskport/diskport/manifest/parts"

// secretEnv names the environment variable the secret access key is read
// from; it is never taken from a flag.
const secretEnv = "AWS_SECRET_ACCESS_KEY"

// s3Config returns the S3 settings of the AWS environment variables with
// the flags' endpoint and region, when given, over them.
func s3Config(endpoint, region string, sigv2 bool) parts.S3Config {
	cfg := parts.S3ConfigFromEnv(endpoint)
	if region != "" {
		cfg.Region = region
	}
	if cfg.Endpoint == "" {
		r := cfg.Region
		if r == "" {
			r = "us-east-1"
		}
		cfg.Endpoint = "https://s3." + r + ".amazonaws.com"
	}
	cfg.SigV2 = sigv2
	return cfg
}
