#!/bin/sh
# smoke.sh: prove the guest can do what hearth's VM tests need.
# Run inside the guest:  vm-tests/run.sh -- vm-tests/guest/smoke.sh
#
# 1. device-mapper answers (/dev/mapper/control, dmsetup version);
# 2. LVM on the data disk: PV + VG "hearth-volumes", a thick LV, a thin pool and a
#    thin LV, listed as JSON, then removed (VG and PV too);
# 3. configfs at /sys/kernel/config with target/ present; an LIO fileio and an
#    iblock backstore created, enabled and removed through configfs;
# 4. the iblock one exported over iSCSI on 127.0.0.1 (ACL + CHAP), logged in with
#    open-iscsi, written through, logged out and torn down;
# 5. if /dev/sdc exists (run.sh --second-disk), a second VG on it.
# Any failure exits non-zero.
set -eu

VG=hearth-volumes
DISK=${HEARTH_VM_DATA_DISK:-/dev/sdb}
CFG=/sys/kernel/config/target

step() { printf '== %s\n' "$*"; }
t0=$(cut -d' ' -f1 /proc/uptime)
timed() { # run a command and print how long it took
    s=$(cut -d' ' -f1 /proc/uptime)
    "$@"
    printf '   (%s: %ss)\n' "$(echo "$*" | cut -c1-40)" "$(awk -v a="$s" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.2f", b-a}')"
}

step "kernel $(uname -r), $(lvm version | sed -n 's/^ *LVM version: *//p' | cut -d' ' -f1)"
test -b "$DISK"
test -c /dev/mapper/control
dmsetup version

step "LVM on $DISK"
timed pvcreate -y "$DISK"
timed vgcreate "$VG" "$DISK"
timed lvcreate -y -n thick0 -L 64m "$VG"
test -b "/dev/$VG/thick0"
timed lvcreate -y --type thin-pool -n pool0 -L 512m "$VG"
timed lvcreate -y -n thin0 -V 1g --thinpool pool0 "$VG"
test -b "/dev/$VG/thin0"
lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_size,lv_attr,pool_lv,data_percent "$VG"
# The JSON must parse and list the three LVs.
lvs --reportformat json --units b --nosuffix -o lv_name,lv_size "$VG" | python3 -c '
import json, sys
lvs = {lv["lv_name"]: int(lv["lv_size"]) for lv in json.load(sys.stdin)["report"][0]["lv"]}
assert {"thick0", "pool0", "thin0"} <= set(lvs), lvs
assert lvs["thick0"] == 64 << 20 and lvs["thin0"] == 1 << 30, lvs
print("   json ok:", sorted(lvs))'
dmsetup ls | grep -q 'hearth--volumes-thin0'

step "LIO through configfs"
mountpoint -q /sys/kernel/config
modprobe target_core_mod
test -d "$CFG/core"
cat "$CFG/version"
# fileio backstore on a sparse file
truncate -s 64M /tmp/fileio0.img
mkdir -p "$CFG/core/fileio_0/smoke_file"
echo "fd_dev_name=/tmp/fileio0.img,fd_dev_size=$((64 << 20))" > "$CFG/core/fileio_0/smoke_file/control"
printf 'smoke-file-serial' > "$CFG/core/fileio_0/smoke_file/wwn/vpd_unit_serial"
echo 1 > "$CFG/core/fileio_0/smoke_file/enable"
grep -q 1 "$CFG/core/fileio_0/smoke_file/enable"
# iblock backstore on the thick LV
mkdir -p "$CFG/core/iblock_0/smoke_lv"
echo "udev_path=/dev/$VG/thick0" > "$CFG/core/iblock_0/smoke_lv/control"
printf 'smoke-lv-serial' > "$CFG/core/iblock_0/smoke_lv/wwn/vpd_unit_serial"
echo 1 > "$CFG/core/iblock_0/smoke_lv/enable"
cat "$CFG/core/iblock_0/smoke_lv/info"
grep -q "/dev/$VG/thick0" "$CFG/core/iblock_0/smoke_lv/info"

step "iSCSI over 127.0.0.1: export thick0 with an ACL and CHAP, log in, write, log out"
IQN=iqn.2010-10.org.openstack:smoke-thick0
INI=$(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)
TPG=$CFG/iscsi/$IQN/tpgt_1
s=$(cut -d' ' -f1 /proc/uptime)
mkdir -p "$TPG/lun/lun_0"
ln -s "$CFG/core/iblock_0/smoke_lv" "$TPG/lun/lun_0/smoke_lv"
mkdir "$TPG/np/127.0.0.1:3260"
mkdir -p "$TPG/acls/$INI/lun_0"
ln -s "$TPG/lun/lun_0" "$TPG/acls/$INI/lun_0/lun_0"
printf 'smokeuser' > "$TPG/acls/$INI/auth/userid"
printf 'smokesecret12' > "$TPG/acls/$INI/auth/password"
echo 1 > "$TPG/attrib/authentication"
echo 1 > "$TPG/enable"
printf '   (export through configfs: %ss)\n' "$(awk -v a="$s" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.2f", b-a}')"
iscsid
# Ready when iscsiadm can reach iscsid (21 = no sessions yet).
i=0
until rc=0; iscsiadm -m session >/dev/null 2>&1 || rc=$?; [ $rc = 0 ] || [ $rc = 21 ]; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "iscsid did not come up"; exit 1; }
    sleep 0.1
done
timed iscsiadm -m discovery -t sendtargets -p 127.0.0.1:3260
iscsiadm -m node -T "$IQN" -p 127.0.0.1:3260 --op update -n node.session.auth.authmethod -v CHAP
iscsiadm -m node -T "$IQN" -p 127.0.0.1:3260 --op update -n node.session.auth.username -v smokeuser
iscsiadm -m node -T "$IQN" -p 127.0.0.1:3260 --op update -n node.session.auth.password -v smokesecret12
timed iscsiadm -m node -T "$IQN" -p 127.0.0.1:3260 --login
udevadm settle
DEV=/dev/disk/by-path/ip-127.0.0.1:3260-iscsi-$IQN-lun-0
test -b "$DEV"
echo "   $DEV -> $(readlink -f "$DEV")"
echo hearth-smoke-pattern | dd of="$DEV" bs=512 conv=sync oflag=direct status=none
dd if="/dev/$VG/thick0" bs=512 count=1 iflag=direct status=none | grep -q hearth-smoke-pattern
echo "   wrote through iSCSI, read back from the LV"
udevadm settle
timed iscsiadm -m node -T "$IQN" -p 127.0.0.1:3260 --logout
iscsiadm -m node -T "$IQN" -p 127.0.0.1:3260 --op delete
echo 0 > "$TPG/enable"
rm "$TPG/acls/$INI/lun_0/lun_0"
rmdir "$TPG/acls/$INI/lun_0" "$TPG/acls/$INI"
rm "$TPG/lun/lun_0/smoke_lv"
rmdir "$TPG/lun/lun_0" "$TPG/np/127.0.0.1:3260" "$TPG" "$CFG/iscsi/$IQN"

ls "$CFG/core"
rmdir "$CFG/core/fileio_0/smoke_file" "$CFG/core/iblock_0/smoke_lv"
rmdir "$CFG/core/fileio_0" "$CFG/core/iblock_0"
test ! -e "$CFG/core/iblock_0"
rm /tmp/fileio0.img

step "LVM teardown"
timed lvremove -y "$VG/thin0"
timed lvremove -y "$VG/pool0"
timed lvremove -y "$VG/thick0"
test "$(lvs --noheadings "$VG" | wc -l)" -eq 0
vgremove -y "$VG"
pvremove -y "$DISK"

if [ -b /dev/sdc ]; then
    step "second data disk /dev/sdc"
    pvcreate -y /dev/sdc
    vgcreate hearth-volumes-2 /dev/sdc
    vgs --reportformat json --units b --nosuffix hearth-volumes-2
    vgremove -y hearth-volumes-2
    pvremove -y /dev/sdc
fi

step "smoke OK in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.1f", b-a}')s"
