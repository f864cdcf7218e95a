#!/bin/sh
# lvm-scaling.sh: how bare LVM commands slow down as thin LVs accumulate in a group
# (context for hearth's LVM benchmark; nothing of hearth runs here):
#   vm-tests/run.sh --disk-size 24G [-e N=100] -- vm-tests/guest/lvm-scaling.sh
set -eu
pvcreate -ff -y /dev/sdb >/dev/null
vgcreate hx /dev/sdb >/dev/null
lvcreate --yes --type thin-pool -L 20g -n tp hx >/dev/null
t() {
    s=$(date +%s%N)
    "$@" >/dev/null 2>&1
    e=$(date +%s%N)
    echo "$(((e - s) / 1000000)) ms: $*"
}
lvmconfig --type full devices/scan_lvs devices/obtain_device_list_from_udev activation/udev_sync \
    backup/archive backup/backup devices/use_devicesfile
N=${N:-100}
i=0
while [ $i -lt "$N" ]; do
    i=$((i + 1))
    lvcreate --yes -V 1g --thinpool tp -n "v$i" hx >/dev/null 2>&1
    case $i in 1 | 25 | 50 | 100 | 200 | 300 | 400 | 500)
        echo "--- $i thin LVs"
        t lvcreate --yes -V 1g --thinpool tp -n probe hx
        t lvremove -f -y hx/probe
        t lvs hx
        t vgs hx
        ;;
    esac
done
echo "--- LVM's metadata archive after $N changes: $(find /etc/lvm/archive -type f | wc -l) files, $(du -sh /etc/lvm/archive | cut -f1)"
