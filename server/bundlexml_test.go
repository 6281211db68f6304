package server

import (
	"encoding/xml"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/diskport/diskport/bundle"
)

// awsBundleInstanceResponse is the AWS sample response (as kept in
// rusoto_ec2's test resources, ec2-bundle-instance.xml).
const awsBundleInstanceResponse = `<BundleInstanceResponse xmlns="http://ec2.amazonaws.com/doc/2014-06-15/">
  <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
  <bundleInstanceTask>
      <instanceId>i-12345678</instanceId>
      <bundleId>bun-c1a540a8</bundleId>
      <state>bundling</state>
      <startTime>2008-10-07T11:41:50.000Z</startTime>
      <updateTime>2008-10-07T11:51:50.000Z</updateTime>
      <progress>70%</progress>
      <storage>
        <S3>
          <bucket>myawsbucket</bucket>
          <prefix>winami</prefix>
        </S3>
      </storage>
  </bundleInstanceTask>
</BundleInstanceResponse>`

var interTag = regexp.MustCompile(`>\s+<`)

func compact(s string) string { return strings.TrimSpace(interTag.ReplaceAllString(s, "><")) }

// TestBundleTaskXML: the sample's task, written back, is the sample byte
// for byte but for the namespace version and whitespace; a failed task
// carries its error after storage.
func TestBundleTaskXML(t *testing.T) {
	task := bundle.Task{InstanceID: "i-12345678", BundleID: "bun-c1a540a8", State: bundle.Bundling,
		StartTime: time.Date(2008, 10, 7, 11, 41, 50, 0, time.UTC), UpdateTime: time.Date(2008, 10, 7, 11, 51, 50, 0, time.UTC),
		Progress: 70, Storage: bundle.S3Storage{Bucket: "myawsbucket", Prefix: "winami"}}
	doc, err := BundleInstanceResponse(task, "59dbff89-35bd-4eac-99ed-be587EXAMPLE")
	if err != nil {
		t.Fatal(err)
	}
	got := compact(strings.TrimPrefix(string(doc), xml.Header))
	exp := compact(strings.Replace(awsBundleInstanceResponse, "2014-06-15", "2016-11-15", 1))
	if got != exp {
		t.Errorf("BundleInstanceResponse\n got %s\nwant %s", got, exp)
	}
	task.State, task.Error = bundle.Failed, &bundle.TaskError{Code: bundle.CodeCancelled, Message: "bundle task cancelled"}
	b, _ := xml.Marshal(struct {
		XMLName xml.Name      `xml:"x"`
		Task    bundleTaskXML `xml:"bundleInstanceTask"`
	}{Task: bundleTaskOf(task)})
	if !strings.Contains(string(b), "</storage><error><code>Cancelled</code><message>bundle task cancelled</message></error></bundleInstanceTask>") {
		t.Errorf("failed task XML %s", b)
	}
}
