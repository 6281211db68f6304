"""Drives diskport serve's modern VM Import/Export actions with boto3.

Usage: boto3_modern.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET KEY

Imports s3://BUCKET/KEY with ImportSnapshot as osbuild does (UserBucket,
no Format), waits with boto3's snapshot_imported waiter, tags the
snapshot as Terraform and osbuild do, reads it back with
DescribeSnapshots, and makes a volume of it with CreateVolume. Then
imports the same object with ImportImage as Ansible's ec2_import_image
does (a Name tag on the task, found again with the tag:Name and task-state
filters) and waits for its image. Prints one JSON object: the ids and what
the server answered. Exits non-zero with the reason when anything is off.
"""
import json
import sys
import time

import boto3
import botocore.exceptions


def main():
    endpoint, key, secret, bucket, obj = sys.argv[1:6]
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-west-2",
                       aws_access_key_id=key, aws_secret_access_key=secret)
    out = ec2.import_snapshot(Description="boto3 snapshot",
                              DiskContainer={"UserBucket": {"S3Bucket": bucket, "S3Key": obj}},
                              TagSpecifications=[{"ResourceType": "import-snapshot-task",
                                                  "Tags": [{"Key": "Name", "Value": "boto3"}]}])
    task = out["ImportTaskId"]
    detail = out["SnapshotTaskDetail"]
    if not task.startswith("import-snap-") or detail["Status"] != "active" or "Progress" not in detail:
        sys.exit("ImportSnapshot answered %r" % out)
    ec2.get_waiter("snapshot_imported").wait(ImportTaskIds=[task], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    tasks = ec2.describe_import_snapshot_tasks(ImportTaskIds=[task])["ImportSnapshotTasks"]
    detail = tasks[0]["SnapshotTaskDetail"]
    if detail["Status"] != "completed" or tasks[0]["Tags"] != [{"Key": "Name", "Value": "boto3"}]:
        sys.exit("DescribeImportSnapshotTasks answered %r" % tasks)
    snap = detail["SnapshotId"]
    ec2.create_tags(Resources=[snap], Tags=[{"Key": "Name", "Value": "boto3-snap"}])
    snaps = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:Name", "Values": ["boto3-*"]}])["Snapshots"]
    if len(snaps) != 1 or snaps[0]["SnapshotId"] != snap or snaps[0]["State"] != "completed":
        sys.exit("DescribeSnapshots answered %r" % snaps)
    vol = ec2.create_volume(SnapshotId=snap, AvailabilityZone="us-east-1a", Size=2)
    if vol["State"] != "creating" or vol["SnapshotId"] != snap or vol["Size"] != 2:
        sys.exit("CreateVolume answered %r" % vol)
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol["VolumeId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    # Ansible's ec2_import_image: the task named by a tag, found by it.
    ec2.import_image(Description="ansible", DiskContainers=[{"Format": "vmdk",
                     "UserBucket": {"S3Bucket": bucket, "S3Key": obj}}],
                     TagSpecifications=[{"ResourceType": "import-image-task",
                                         "Tags": [{"Key": "Name", "Value": "ansible-task"}]}])
    deadline = time.time() + 120
    while True:
        tasks = ec2.describe_import_image_tasks(Filters=[
            {"Name": "tag:Name", "Values": ["ansible-task"]},
            {"Name": "task-state", "Values": ["completed", "active"]}])["ImportImageTasks"]
        if len(tasks) != 1:
            sys.exit("DescribeImportImageTasks by tag answered %r" % tasks)
        if tasks[0]["Status"] == "completed":
            break
        if time.time() > deadline:
            sys.exit("import image task %r" % tasks[0])
        time.sleep(0.1)
    image = tasks[0]["ImageId"]
    images = ec2.describe_images(ImageIds=[image])["Images"]
    snap2 = images[0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    if tasks[0]["SnapshotDetails"][0]["SnapshotId"] != snap2:
        sys.exit("the image %r and the task %r disagree" % (images, tasks))

    codes = {}
    try:
        ec2.describe_snapshots(SnapshotIds=["snap-0123456789abcdef0"])
    except botocore.exceptions.ClientError as e:
        codes["unknown_snapshot"] = e.response["Error"]["Code"]
    try:
        ec2.import_snapshot(DiskContainer={"Url": "s3://%s/%s" % (bucket, obj)}, Encrypted=True)
    except botocore.exceptions.ClientError as e:
        codes["encrypted"] = e.response["Error"]["Code"]
    print(json.dumps({"snapshot": snap, "volume": vol["VolumeId"], "image_snapshot": snap2,
                      "boto3": boto3.__version__, "codes": codes}))


if __name__ == "__main__":
    main()
