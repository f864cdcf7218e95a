#!/bin/sh
# /init of the hearth test guest: PID 1 of a Debian bookworm initramfs, no systemd.
#
# 1. mount proc, sys, devtmpfs, devpts, /run, /tmp; load the storage modules;
#    mount configfs; bring lo up; start systemd-udevd and trigger/settle;
# 2. scan the virtio-scsi targets in order 0, 1, 2 (the kernel is booted with
#    scsi_mod.scan=manual), so scratch=/dev/sda, data=/dev/sdb, second data=/dev/sdc;
# 3. mount the 9p shares at the paths the host gave (same path as on the host);
# 4. run hearth.run= in hearth.cwd=, print "HEARTH-VM-EXIT=<code>" on the console,
#    and power off through sysrq (there is no poweroff binary; PID 1 must not exit).
#
# Kernel command line parameters read here (values must not contain spaces):
#   hearth.run=PATH     script to run (run.sh passes a generated wrapper)
#   hearth.cwd=DIR      its working directory (default /)
#   hearth.share=DIR    mount 9p tag "host" at DIR
#   hearth.rundir=DIR   mount 9p tag "run" at DIR (per-run files; exit code kept there)
#   hearth.role=NAME    hostname, and part of the iSCSI initiator name
#   hearth.ip=ADDR/LEN  static address on the first ethernet interface (not the
#                       host one below)
#   hearth.hostnet=MAC/ADDR/LEN  the NIC with this MAC (QEMU's user-mode network of
#                       run.sh --host-port) gets ADDR/LEN; no route: only its subnet
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
LANG=C.UTF-8
export PATH HOME LANG

say() { echo "[hearth-vm] $*"; }
up() { cut -d' ' -f1 /proc/uptime; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /run/lock /run/lvm /run/udev

run='' cwd=/ share='' rundir='' role=vm ip='' hostnet=''
for arg in $(cat /proc/cmdline); do
    case $arg in
        hearth.run=*) run=${arg#*=} ;;
        hearth.cwd=*) cwd=${arg#*=} ;;
        hearth.share=*) share=${arg#*=} ;;
        hearth.rundir=*) rundir=${arg#*=} ;;
        hearth.role=*) role=${arg#*=} ;;
        hearth.ip=*) ip=${arg#*=} ;;
        hearth.hostnet=*) hostnet=${arg#*=} ;;
    esac
done
echo "$role" > /proc/sys/kernel/hostname
say "kernel $(uname -r) up at $(up)s; role=$role"

t_mod=$(up)
modprobe -a virtio_pci virtio_scsi sd_mod virtio_rng virtio_net 9pnet_virtio 9p \
    dm_mod dm_snapshot dm_thin_pool loop configfs \
    target_core_mod target_core_iblock target_core_file iscsi_target_mod \
    scsi_transport_iscsi libiscsi libiscsi_tcp iscsi_tcp \
    || say "WARNING: some modules failed to load"
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
ip link set lo up

# udevd for LVM's udev sync and /dev/<vg>/<lv> links. Coldplug only what matters:
# a full trigger (cpus, memory blocks, ttys...) costs seconds under TCG.
t_udev=$(up)
/lib/systemd/systemd-udevd --daemon --resolve-names=never
udevadm trigger --action=add --subsystem-match=block --subsystem-match=misc \
    --subsystem-match=net
udevadm settle --timeout=30

t_disk=$(up)
for h in /sys/class/scsi_host/host*; do
    [ "$(cat "$h/proc_name" 2>/dev/null)" = virtio_scsi ] || continue
    for t in 0 1 2; do
        echo "0 $t 0" > "$h/scan"
        udevadm settle --timeout=10
    done
done
say "disks: $(cd /sys/block && echo sd*)"

host_mac=${hostnet%%/*}
if [ -n "$ip" ]; then
    for n in /sys/class/net/*; do
        n=${n##*/}
        [ "$n" = lo ] && continue
        [ -n "$hostnet" ] && [ "$(cat "/sys/class/net/$n/address")" = "$host_mac" ] && continue
        ip link set "$n" up && ip addr add "$ip" dev "$n" && say "net: $n $ip"
        break
    done
fi
if [ -n "$hostnet" ]; then
    found=''
    for n in /sys/class/net/*; do
        n=${n##*/}
        [ "$(cat "/sys/class/net/$n/address")" = "$host_mac" ] || continue
        ip link set "$n" up && ip addr add "${hostnet#*/}" dev "$n" && say "net: $n ${hostnet#*/} (to the host)"
        found=1
    done
    [ -n "$found" ] || say "ERROR: no NIC with MAC $host_mac for hearth.hostnet"
fi

if [ -n "$share" ]; then
    mkdir -p "$share"
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=mmap host "$share" \
        || say "ERROR: cannot mount 9p share at $share"
fi
if [ -n "$rundir" ]; then
    mkdir -p "$rundir"
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=mmap run "$rundir" \
        || say "ERROR: cannot mount 9p run dir at $rundir"
fi

# Each boot is its own iSCSI initiator (two guests share one image).
if [ -d /etc/iscsi ] && [ ! -s /etc/iscsi/initiatorname.iscsi ]; then
    echo "InitiatorName=iqn.1993-08.org.debian:01:hearth-$role-$(cut -c1-8 /proc/sys/kernel/random/uuid)" \
        > /etc/iscsi/initiatorname.iscsi
fi

rc=127
if [ -z "$run" ]; then
    say "no hearth.run= on the kernel command line"
elif [ ! -e "$run" ]; then
    say "ERROR: $run does not exist in the guest"
else
    start=$(up)
    say "ready at ${start}s (modules from ${t_mod}s, udev ${t_udev}s, disks ${t_disk}s); running $run"
    if cd "$cwd"; then
        if [ -x "$run" ]; then "$run" </dev/null; else /bin/sh "$run" </dev/null; fi
        rc=$?
    else
        rc=126
    fi
    say "script exited $rc after $(awk -v a="$start" -v b="$(up)" 'BEGIN{printf "%.1f", b-a}')s"
fi

if [ -n "$rundir" ] && mountpoint -q "$rundir"; then
    dmesg > "$rundir/dmesg.log" 2>/dev/null
    echo "$rc" > "$rundir/exit-code"
    umount "$rundir" 2>/dev/null
fi
sync
echo "HEARTH-VM-EXIT=$rc"
sleep 0.3
echo o > /proc/sysrq-trigger
sleep 10
