"""Drives diskport serve's VM-import actions with boto3, as a pipeline would.

Usage: boto3_import.py ENDPOINT ACCESS_KEY SECRET_KEY FORMAT BYTES MANIFEST_URL

Runs ImportVolume, polls DescribeConversionTasks until the task leaves
'active', then DescribeVolumes; then ImportInstance of the same image (with
LaunchSpecification.Monitoring) to completion and DescribeInstances. Prints
one JSON object: the volume ids and what the server answered. Exits non-zero
with the reason when anything is off.
"""
import json
import sys
import time

import boto3
import botocore.exceptions


def wait(ec2, task_id, timeout=120):
    deadline = time.time() + timeout
    while True:
        out = ec2.describe_conversion_tasks(ConversionTaskIds=[task_id])
        tasks = out["ConversionTasks"]
        if len(tasks) != 1 or tasks[0]["ConversionTaskId"] != task_id:
            sys.exit("DescribeConversionTasks returned %r" % tasks)
        task = tasks[0]
        if task["State"] not in ("active", "cancelling"):
            return task
        if time.time() > deadline:
            sys.exit("task %s still %s: %s" % (task_id, task["State"], task.get("StatusMessage")))
        time.sleep(0.1)


def main():
    endpoint, key, secret, fmt, size, url = sys.argv[1:7]
    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-west-2",
                       aws_access_key_id=key, aws_secret_access_key=secret)
    image = {"Format": fmt, "Bytes": int(size), "ImportManifestUrl": url}
    task = ec2.import_volume(AvailabilityZone="us-west-2c", Description="boto3 volume",
                             Image=image, Volume={"Size": 1})["ConversionTask"]
    if task["State"] != "active" or not task["ConversionTaskId"].startswith("import-vol-"):
        sys.exit("ImportVolume answered %r" % task)
    done = wait(ec2, task["ConversionTaskId"])
    if done["State"] != "completed":
        sys.exit("volume task ended %s: %s" % (done["State"], done.get("StatusMessage")))
    vol = done["ImportVolume"]["Volume"]["Id"]
    vols = ec2.describe_volumes(VolumeIds=[vol])["Volumes"]
    if len(vols) != 1 or vols[0]["State"] != "available" or vols[0]["Size"] != 1:
        sys.exit("DescribeVolumes answered %r" % vols)

    task = ec2.import_instance(
        Platform="Windows", Description="boto3 instance",
        LaunchSpecification={"Architecture": "x86_64", "InstanceType": "t2.micro", "Monitoring": True},
        DiskImages=[{"Image": image, "Volume": {"Size": 1}, "Description": "root"}])["ConversionTask"]
    done = wait(ec2, task["ConversionTaskId"])
    if done["State"] != "completed":
        sys.exit("instance task ended %s: %s" % (done["State"], done.get("StatusMessage")))
    ii = done["ImportInstance"]
    inst = ec2.describe_instances(InstanceIds=[ii["InstanceId"]])["Reservations"][0]["Instances"][0]
    if inst["State"]["Name"] != "stopped" or inst["Monitoring"]["State"] != "enabled":
        sys.exit("DescribeInstances answered %r" % inst)

    # Refusals arrive as botocore ClientErrors with EC2's codes.
    codes = {}
    try:
        ec2.describe_conversion_tasks(ConversionTaskIds=["import-vol-ffffffff"])
    except botocore.exceptions.ClientError as e:
        codes["unknown_task"] = e.response["Error"]["Code"]
    bad = boto3.client("ec2", endpoint_url=endpoint, region_name="us-west-2",
                       aws_access_key_id=key, aws_secret_access_key=secret + "x")
    try:
        bad.describe_conversion_tasks()
    except botocore.exceptions.ClientError as e:
        codes["wrong_secret"] = e.response["Error"]["Code"]
    print(json.dumps({"volume": vol, "instance_volume": ii["Volumes"][0]["Volume"]["Id"],
                      "boto3": boto3.__version__, "codes": codes}))


if __name__ == "__main__":
    main()
