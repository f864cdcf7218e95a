#!/bin/sh
# lvm-bench.sh: hearth's LVM benchmark in the guest (figures for the README):
#   cargo bench --bench lvm --no-run            # on the host; prints the binary
#   vm-tests/run.sh --disk-size 24G --timeout 3600 [-e HEARTH_BENCH_LVS=100] -- vm-tests/guest/lvm-bench.sh target/release/deps/lvm-<hash>
set -eu
pvcreate -ff -y /dev/sdb >/dev/null
vgcreate hearth-bench /dev/sdb >/dev/null
HEARTH_BENCH_VG=hearth-bench HEARTH_BENCH_LVS=${HEARTH_BENCH_LVS:-500} "$1" --bench
