#!/bin/sh
# backup-bench.sh: hearth's backup benchmark on real LVM in the guest (figures for the
# README; benches/backup_lvm.rs says what it measures). It makes volume group
# hearth-bench on the data disk and runs the bench binary given as $1 in it.
#
#   cargo bench --bench backup_lvm --no-run        # on the host; prints the binary
#   vm-tests/run.sh --disk-size 24G --timeout 5400 -- vm-tests/guest/backup-bench.sh \
#       target/release/deps/backup_lvm-<hash>
# (about 35 minutes under TCG with the defaults; the S3 part adds about 25).
#
# Optional, passed with run.sh's -e: HEARTH_BENCH_BACKUP_GIB (volume size, default 2),
# HEARTH_BENCH_BACKUP_ROUNDS (default 3).
#
# The S3 part needs an object store on the host that the guest reaches through
# run.sh --host-port: start Swift (scripts/objectstore/swift.sh start DIR), then
#   set -a; . DIR/objectstore.env; set +a      # run.sh's -e NAME copies exported values
#   vm-tests/run.sh --disk-size 24G --timeout 7200 --host-port "$OBJECTSTORE_PORT" \
#       -e OBJECTSTORE_PORT -e OBJECTSTORE_ACCESS_KEY -e OBJECTSTORE_SECRET_KEY \
#       -e OBJECTSTORE_REGION -- vm-tests/guest/backup-bench.sh target/release/deps/backup_lvm-<hash>
# This script then points the bench at http://$HEARTH_VM_HOST_ADDR:$OBJECTSTORE_PORT
# (each round makes its own bucket, hearth-bench-<time>-r<N>). Without OBJECTSTORE_PORT
# the S3 part is skipped.
set -eu
[ $# -ge 1 ] || { echo "usage: backup-bench.sh <backup_lvm bench binary>" >&2; exit 2; }
pvcreate -ff -y "${HEARTH_VM_DATA_DISK:-/dev/sdb}" >/dev/null
vgcreate hearth-bench "${HEARTH_VM_DATA_DISK:-/dev/sdb}" >/dev/null
if [ -n "${OBJECTSTORE_PORT:-}" ]; then
    [ -n "${HEARTH_VM_HOST_ADDR:-}" ] || { echo "OBJECTSTORE_PORT given without run.sh --host-port" >&2; exit 2; }
    export HEARTH_BENCH_S3_ENDPOINT="http://$HEARTH_VM_HOST_ADDR:$OBJECTSTORE_PORT"
    export HEARTH_BENCH_S3_ACCESS_KEY="$OBJECTSTORE_ACCESS_KEY"
    export HEARTH_BENCH_S3_SECRET_KEY="$OBJECTSTORE_SECRET_KEY"
    export HEARTH_BENCH_S3_REGION="${OBJECTSTORE_REGION:-us-east-1}"
fi
echo "guest: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo), $(uname -r)"
HEARTH_BENCH_VG=hearth-bench "$1" --bench
