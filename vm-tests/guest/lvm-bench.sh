#!/bin/sh
# lvm-bench.sh: hearth's LVM benchmark in the guest (figures for the README):
#   cargo bench --bench lvm --no-run            # on the host; prints the binary
#   vm-tests/run.sh --disk-size 24G --disk2-size 600G --timeout 3600 [-e HEARTH_BENCH_LVS=100] -- vm-tests/guest/lvm-bench.sh target/release/deps/lvm-<hash>
# Thin volumes on /dev/sdb, thick ones on /dev/sdc (sparse: 500 thick volumes of 1 GiB
# are only LVM metadata until written).
set -eu
pvcreate -ff -y /dev/sdb >/dev/null
vgcreate hearth-bench /dev/sdb >/dev/null
pvcreate -ff -y /dev/sdc >/dev/null
vgcreate hearth-bench-thick /dev/sdc >/dev/null
HEARTH_BENCH_VG=hearth-bench HEARTH_BENCH_VG_THICK=hearth-bench-thick HEARTH_BENCH_LVS=${HEARTH_BENCH_LVS:-500} "$1" --bench
