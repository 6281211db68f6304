#!/bin/sh
# The API server's demo: the whole VM-import and bundle loop against a local
# MinIO, the way a pipeline drives EC2.
#
#  1. starts a throw-away MinIO on a free loopback port and `diskport serve`
#     beside it (data in demo/serve/);
#  2. makes an example streamOptimized VMDK with qemu-img and uploads it with
#     `diskport upload` (parts + import manifest; prints ImportManifestUrl);
#  3. boto3 calls ImportInstance with that manifest and polls
#     DescribeConversionTasks until the volume is converted;
#  4. the aws CLI lists the task, bundles the instance into the bucket with
#     its own policy builder (bundle-instance --owner-akid/--owner-sak) and
#     waits for bundle-task-complete;
#  5. `diskport unbundle` restores the bundle with the server's key
#     (demo/serve/data/bundle.key) and the volume and the restored bundle are
#     compared with `qemu-img convert -O raw` of the image.
#
# Everything listens on 127.0.0.1 only and is stopped at exit.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh --test >/dev/null
mkdir -p bin
go build -o bin/diskport ./cmd/diskport
minio=$(sh scripts/install-minio.sh | sed -n 's/^minio: //p')
py=python3
/usr/bin/python3 -c 'import boto3' 2>/dev/null && py=/usr/bin/python3

work=demo/serve
rm -rf "$work"
mkdir -p "$work/minio" "$work/data"
freeport() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
s3port=$(freeport)
apiport=$(freeport)
s3="http://127.0.0.1:$s3port"
api="http://127.0.0.1:$apiport"
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null || true; done' EXIT INT TERM

# The S3 account (MinIO's root) and the API account (the server's first).
export MINIO_ROOT_USER=demo-s3-access MINIO_ROOT_PASSWORD=demo-s3-secret-key
MINIO_BROWSER=off "$minio" server --quiet --address "127.0.0.1:$s3port" "$work/minio" >"$work/minio.log" 2>&1 &
pids="$pids $!"
DISKPORT_ACCESS_KEY_ID=AKIDDISKPORTDEMO DISKPORT_SECRET_ACCESS_KEY=diskport-demo-secret \
	bin/diskport serve --listen "127.0.0.1:$apiport" --data "$work/data" --s3-endpoint "$s3" >"$work/serve.log" 2>&1 &
pids="$pids $!"
for i in $(seq 100); do
	if curl -fs "$s3/minio/health/ready" >/dev/null 2>&1 && curl -fs "$api/readyz" >/dev/null 2>&1; then break; fi
	sleep 0.1
done

echo "== an example disk: a streamOptimized VMDK of 96 MiB with some data"
truncate -s 96M "$work/example.raw"
head -c 4M /dev/urandom | dd of="$work/example.raw" bs=1M seek=1 conv=notrunc status=none
yes "diskport serve demo" | head -c 3M | dd of="$work/example.raw" bs=1M seek=40 conv=notrunc status=none
qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$work/example.raw" "$work/example.vmdk"
bytes=$(stat -c %s "$work/example.vmdk")

echo "== diskport upload (parts and the import manifest into s3://imports/)"
url=$(AWS_ACCESS_KEY_ID=$MINIO_ROOT_USER AWS_SECRET_ACCESS_KEY=$MINIO_ROOT_PASSWORD \
	bin/diskport upload --create-bucket --endpoint "$s3" --bucket imports --prefix demo/ "$work/example.vmdk")
echo "ImportManifestUrl: ${url%%\?*}?…"

export AWS_ACCESS_KEY_ID=AKIDDISKPORTDEMO AWS_SECRET_ACCESS_KEY=diskport-demo-secret AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER=""

echo "== boto3: ImportInstance, then DescribeConversionTasks until completed"
instance=$("$py" - "$api" "$bytes" "$url" <<'EOF'
import sys, time
import boto3
api, size, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ec2 = boto3.client("ec2", endpoint_url=api)
task = ec2.import_instance(
    Platform="Linux", Description="serve-demo",
    LaunchSpecification={"Architecture": "x86_64", "InstanceType": "t3.micro"},
    DiskImages=[{"Image": {"Format": "VMDK", "Bytes": size, "ImportManifestUrl": url},
                 "Volume": {"Size": 1}, "Description": "root disk"}])["ConversionTask"]
tid = task["ConversionTaskId"]
while True:
    t = ec2.describe_conversion_tasks(ConversionTaskIds=[tid])["ConversionTasks"][0]
    vol = t["ImportInstance"]["Volumes"][0]
    print("  %s %s: %s bytes converted %s" % (tid, t["State"], vol.get("BytesConverted", 0), vol.get("StatusMessage", "")), file=sys.stderr)
    if t["State"] != "active":
        break
    time.sleep(0.5)
if t["State"] != "completed":
    sys.exit("the import ended %s: %s" % (t["State"], t.get("StatusMessage")))
print(t["ImportInstance"]["InstanceId"], vol["Volume"]["Id"])
EOF
)
set -- $instance
instance_id=$1 volume_id=$2
echo "instance $instance_id, volume $volume_id (the volume file: $work/data/volumes/$volume_id.raw)"

echo "== aws ec2 describe-conversion-tasks"
aws --endpoint-url "$api" ec2 describe-conversion-tasks --query 'ConversionTasks[].[ConversionTaskId,State,ImportInstance.InstanceId]' --output text

echo "== aws ec2 bundle-instance (the CLI builds and signs the upload policy)"
bundle_id=$(aws --endpoint-url "$api" ec2 bundle-instance --instance-id "$instance_id" --bucket imports --prefix bundles/demo \
	--owner-akid "$MINIO_ROOT_USER" --owner-sak "$MINIO_ROOT_PASSWORD" --query BundleTask.BundleId --output text)
aws --endpoint-url "$api" ec2 wait bundle-task-complete --bundle-ids "$bundle_id"
aws --endpoint-url "$api" ec2 describe-bundle-tasks --bundle-ids "$bundle_id" --query 'BundleTasks[].[BundleId,State,Progress,Storage.S3.Prefix]' --output text

echo "== diskport unbundle with the server's bundle key"
AWS_ACCESS_KEY_ID=$MINIO_ROOT_USER AWS_SECRET_ACCESS_KEY=$MINIO_ROOT_PASSWORD \
	bin/diskport unbundle --private-key "$work/data/bundle.key" --user-cert "$work/data/bundle.crt" \
	--endpoint "$s3" --bucket imports --manifest bundles/demo.manifest.xml "$work/unbundled.raw"

qemu-img convert -O raw "$work/example.vmdk" "$work/qemu.raw"
n=$(stat -c %s "$work/qemu.raw")
for f in "$work/data/volumes/$volume_id.raw" "$work/unbundled.raw"; do
	if ! cmp -s -n "$n" "$work/qemu.raw" "$f"; then
		echo "serve-demo: $f differs from qemu-img's conversion" >&2
		exit 1
	fi
done
echo "serve-demo: the imported volume and the restored bundle both equal qemu-img convert -O raw of the image"
