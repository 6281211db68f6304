package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// TestZoneOutsideRegion: ImportVolume and ImportInstance with a zone of
// another region than the server's are refused as EC2 refuses them
// (InvalidParameterValue, "Invalid availability zone: [ZONE]") and make no
// task; a zone of the region is taken.
func TestZoneOutsideRegion(t *testing.T) {
	t.Parallel()
	// The manifest is never there: an accepted task just waits for it.
	hidden := httptest.NewServer(http.NotFoundHandler())
	defer hidden.Close()
	ts := startServerWith(t, "", func(c *Config) { c.Region = "eu-west-3" }, hidden.Listener.Addr().String())
	c := ts.sdk(testKey, testSecret)
	ctx := context.Background()
	image := &types.DiskImageDetail{Format: types.DiskImageFormatRaw, Bytes: aws.Int64(512), ImportManifestUrl: aws.String(hidden.URL + "/m.xml")}
	importVolume := func(zone string) error {
		_, err := c.ImportVolume(ctx, &ec2.ImportVolumeInput{AvailabilityZone: aws.String(zone), Image: image, Volume: &types.VolumeDetail{Size: aws.Int64(1)}})
		return err
	}
	importInstance := func(zone string) error {
		_, err := c.ImportInstance(ctx, &ec2.ImportInstanceInput{Platform: types.PlatformValuesWindows,
			LaunchSpecification: &types.ImportInstanceLaunchSpecification{Placement: &types.Placement{AvailabilityZone: aws.String(zone)}},
			DiskImages:          []types.DiskImage{{Image: image, Volume: &types.VolumeDetail{Size: aws.Int64(1)}}}})
		return err
	}
	for _, zone := range []string{"us-east-1a", "eu-west-2a", "eu-west-3", "eu-west-30a", "eu-west-3-"} {
		for name, f := range map[string]func(string) error{"ImportVolume": importVolume, "ImportInstance": importInstance} {
			var ae smithy.APIError
			if err := f(zone); !errors.As(err, &ae) || ae.ErrorCode() != "InvalidParameterValue" || ae.ErrorMessage() != "Invalid availability zone: ["+zone+"]" {
				t.Errorf("%s in %s from an eu-west-3 server: %v", name, zone, err)
			}
		}
	}
	if out, err := c.DescribeConversionTasks(ctx, &ec2.DescribeConversionTasksInput{}); err != nil || len(out.ConversionTasks) != 0 {
		t.Fatalf("refused imports made tasks: %v, %v", out, err)
	}
	for _, zone := range []string{"eu-west-3b", "eu-west-3-cdg-1a"} {
		if err := importVolume(zone); err != nil {
			t.Errorf("ImportVolume in %s: %v", zone, err)
		}
		if err := importInstance(zone); err != nil {
			t.Errorf("ImportInstance in %s: %v", zone, err)
		}
	}
}
