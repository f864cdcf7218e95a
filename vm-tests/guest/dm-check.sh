#!/bin/sh
# dm-check.sh: the device-mapper ioctl client (src/backend/dm.rs) against a real kernel.
#
# On the host:
#   cargo test --lib --no-run          # prints target/debug/deps/hearth-<hash>
#   vm-tests/run.sh -- vm-tests/guest/dm-check.sh [TEST-BINARY]
#
# 1. finds the library's test binary (the argument, else the newest hearth-<hash>);
# 2. makes VG "hearth-dm" on the data disk with a thick LV, a thin pool and a thin LV
#    (names with hyphens, so the doubled '-' of dm names is exercised) and writes 8 MiB
#    into the thin LV so the pool has blocks in use;
# 3. shows what dmsetup sees, for comparison;
# 4. runs the ignored `backend::dm::tests::real_*` tests, which read the names from
#    HEARTH_DM_{VG,THICK,POOL,THIN} and talk to /dev/mapper/control.
# Exits with the test binary's status.
set -eu

VG=hearth-dm
THICK=thick-lv
POOL=pool-0
THIN=thin-lv
DISK=${HEARTH_VM_DATA_DISK:-/dev/sdb}

step() { printf '== %s\n' "$*"; }

bin=${1:-}
if [ -z "$bin" ]; then
    # The library's unit tests are hearth-<16 hex>; hearthd-* and *.d are not.
    bin=$(ls -t target/debug/deps/hearth-* 2>/dev/null \
        | grep -E '/hearth-[0-9a-f]{16}$' | while read -r f; do [ -x "$f" ] && echo "$f"; done | head -n 1)
fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "no test binary: run 'cargo test --lib --no-run' first" >&2; exit 2; }
step "test binary $bin"

step "kernel $(uname -r); LVM $(lvm version | sed -n 's/^ *LVM version: *//p' | cut -d' ' -f1)"
dmsetup version

step "VG $VG on $DISK: thick LV, thin pool, thin LV"
pvcreate -q -y "$DISK"
vgcreate -q "$VG" "$DISK"
lvcreate -q -y -n "$THICK" -L 64m "$VG"
lvcreate -q -y --type thin-pool -n "$POOL" -L 512m "$VG"
lvcreate -q -y -n "$THIN" -V 1g --thinpool "$POOL" "$VG"
dd if=/dev/urandom of="/dev/$VG/$THIN" bs=1M count=8 oflag=direct status=none
udevadm settle

step "what dmsetup and lvs see"
dmsetup ls
dmsetup table
dmsetup status
dmsetup info -c -o name,major,minor,open,segments,events,attr
lvs -a -o lv_name,lv_size,data_percent,metadata_percent,chunk_size "$VG"

step "backend::dm::tests::real_*"
export HEARTH_DM_VG=$VG HEARTH_DM_THICK=$THICK HEARTH_DM_POOL=$POOL HEARTH_DM_THIN=$THIN
rc=0
"$bin" --ignored --test-threads=1 --nocapture backend::dm::tests::real_ || rc=$?
exit "$rc"
