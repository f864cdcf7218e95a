#!/bin/bash
# build-guest.sh: build (or reuse) the Debian bookworm guest used by the VM tests.
#
# Output: a kernel and an initramfs holding the whole root file system, in
#   $HEARTH_VM_CACHE/guest-<key>/{kernel,initrd.img,info}
# where <key> hashes every input (this script, guest/init.sh, the package and
# module lists, HEARTH_VM_EXTRA_PACKAGES, scripts/requirements-clients.txt).
# "$HEARTH_VM_CACHE/current" points at the last one built. A second level,
# base-<key>/, keeps the debootstrap tree keyed by the package list alone, so
# editing init.sh or the module list only repacks (~15 s). A third, venv-<key>/,
# keeps the Python venv /opt/hearth-venv (os-brick and python-openstackclient at
# the versions pinned in scripts/requirements-clients.txt), keyed by the base and
# that file: the wheels are fetched on the host (`pip wheel`, host Python 3.11 like
# the guest's) and installed with `pip --no-index` in a chroot of a copy of the
# base tree (guests have no route to PyPI). The kernel .deb is kept in debs/.
#
# kernel is the uncompressed ELF vmlinux taken out of Debian's bzImage: QEMU starts
# it directly through its PVH entry point, skipping SeaBIOS's real-mode load and the
# xz decompression (~5 s under TCG). initrd.img is cpio newc compressed with lz4,
# which the kernel unpacks faster than zstd under TCG (~4 s against ~8 s).
#
# Prints the guest directory on stdout (last line); progress and timings on stderr.
#
# Options:  --force      repack the guest even if it is cached (keeps the base tree)
#           --force-all  also redo debootstrap and fetch the kernel again
#           --print      only print the directory the current inputs map to
# Environment:
#   HEARTH_VM_CACHE            cache root (default /var/cache/hearth-vm)
#   HEARTH_VM_MIRROR           Debian mirror (default http://deb.debian.org/debian)
#   HEARTH_VM_EXTRA_PACKAGES   extra Debian packages for the guest, comma separated
#   HEARTH_VM_PYTHON           host Python 3.11 that fetches the wheels (default python3)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${HEARTH_VM_CACHE:-/var/cache/hearth-vm}
mirror=${HEARTH_VM_MIRROR:-http://deb.debian.org/debian}
suite=bookworm

# Debian packages in the guest (debootstrap --variant=minbase --include=...).
# python3-venv: /opt/hearth-venv; targetcli-fb and dbus: the export benchmark's
# comparison; multipath-tools: the iSCSI scenario's multipath attach; lsscsi:
# os-brick's extend_volume.
packages=lvm2,thin-provisioning-tools,open-iscsi,kmod,udev,iproute2,procps,util-linux,e2fsprogs,python3
packages=$packages,python3-venv,targetcli-fb,dbus,multipath-tools,lsscsi
if [ -n "${HEARTH_VM_EXTRA_PACKAGES:-}" ]; then
    packages=$packages,$HEARTH_VM_EXTRA_PACKAGES
fi

# Kernel modules copied into the guest, with their dependency closure.
modules="virtio_pci virtio_scsi sd_mod virtio_net virtio_rng 9pnet_virtio 9p
 dm_mod dm_snapshot dm_thin_pool loop configfs
 target_core_mod target_core_iblock target_core_file iscsi_target_mod
 scsi_transport_iscsi libiscsi libiscsi_tcp iscsi_tcp
 dm_multipath dm_round_robin dm_service_time scsi_dh_alua
 ext4 crc32c_generic crc32c_intel"

# The Python venv in the guest: these direct requirements, every version (theirs
# and their dependencies') pinned by the repo's requirements file.
requirements=$(cd "$here/.." && pwd)/scripts/requirements-clients.txt
venv_direct="os-brick python-openstackclient"

force=0; force_all=0; print_only=0
for a in "$@"; do
    case $a in
        --force) force=1 ;;
        --force-all) force=1; force_all=1 ;;
        --print) print_only=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "build-guest.sh: unknown option $a" >&2; exit 2 ;;
    esac
done

log() { printf '[build-guest] %s\n' "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

[ -f "$requirements" ] || { echo "build-guest.sh: missing $requirements" >&2; exit 1; }
base_key=$(printf '%s\n' "$suite" "$mirror" "$packages" | sha256sum | cut -c1-16)
venv_key=$( { printf '%s\n' "$base_key" "$venv_direct"; cat "$requirements"; } \
            | sha256sum | cut -c1-16)
guest_key=$( { printf '%s\n' "$base_key" "$venv_key" "$modules"; cat "$0" "$here/guest/init.sh"; } \
             | sha256sum | cut -c1-16)
base=$cache/base-$base_key
venvdir=$cache/venv-$venv_key
guest=$cache/guest-$guest_key

if [ $print_only = 1 ]; then echo "$guest"; exit 0; fi

if [ $force = 0 ] && [ -f "$guest/done" ]; then
    log "cached: $guest"
    echo "$guest"; exit 0
fi

[ "$(id -u)" = 0 ] || { log "must run as root (debootstrap, chroot)"; exit 1; }
mkdir -p "$cache"
# One builder at a time (two guests started together share the cache).
exec 9>"$cache/.lock"
flock 9
if [ $force = 0 ] && [ -f "$guest/done" ]; then
    log "cached (built by another process): $guest"; echo "$guest"; exit 0
fi

t_all=$(now)

# --- host tools -------------------------------------------------------------
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v cpio >/dev/null || need+=(cpio)
command -v lz4 >/dev/null || need+=(lz4)
command -v xz >/dev/null || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
    t=$(now)
    log "installing host tools: ${need[*]}"
    # Not qemu-utils in the same install: the image's backport of it makes apt
    # report held broken packages. Nothing here needs qemu-img.
    apt-get update -qq >&2 || apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
    log "host tools installed in $(since "$t") s"
fi

work=$cache/tmp.$$
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
rm -rf "$cache"/tmp.*   # leftovers of an interrupted build (we hold the lock)
mkdir -p "$work"

# --- base root file system (debootstrap), keyed by the package list ----------
if [ ! -f "$base/done" ] || [ $force_all = 1 ]; then
    t=$(now)
    log "debootstrap $suite (minbase + $packages)"
    rm -rf "$base"
    debootstrap --variant=minbase --include="$packages" "$suite" "$work/base" "$mirror" \
        > "$work/debootstrap.log" 2>&1 || {
        tail -30 "$work/debootstrap.log" >&2; log "debootstrap failed"; exit 1; }
    rm -rf "$work/base/var/cache/apt/archives"/*.deb "$work/base/var/lib/apt/lists"/*
    mv "$work/base" "$base"
    touch "$base/done"
    log "debootstrap done in $(since "$t") s"
else
    log "reusing base tree $base"
fi

# --- the Python venv (/opt/hearth-venv), keyed by the base and the requirements ----
if [ ! -f "$venvdir/done" ] || [ $force_all = 1 ]; then
    t=$(now)
    py=${HEARTH_VM_PYTHON:-python3}
    pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
        || { log "no host python ($py) to fetch the wheels with"; exit 1; }
    [ "$pyver" = 3.11 ] || { log "host $py is $pyver; the guest's is 3.11 (set HEARTH_VM_PYTHON)"; exit 1; }
    pins=()
    for p in $venv_direct; do
        pin=$(grep -i -E "^$p==" "$requirements" || true)
        [ -n "$pin" ] || { log "$p is not pinned in $requirements"; exit 1; }
        pins+=("$pin")
    done
    log "venv: fetching wheels for ${pins[*]} (pinned by $requirements)"
    mkdir -p "$work/vroot"
    cp -a "$base/." "$work/vroot/"
    wheels=$work/vroot/tmp/wheels
    mkdir -p "$wheels"
    cp "$requirements" "$wheels/constraints.txt"
    "$py" -m pip wheel -q --wheel-dir "$wheels" -c "$wheels/constraints.txt" "${pins[@]}" \
        > "$work/pip-wheel.log" 2>&1 || { tail -30 "$work/pip-wheel.log" >&2; log "pip wheel failed"; exit 1; }
    log "venv: $(find "$wheels" -name '*.whl' | wc -l) wheels; installing in a chroot"
    {
        chroot "$work/vroot" python3 -m venv /opt/hearth-venv &&
        chroot "$work/vroot" /opt/hearth-venv/bin/pip install -q --no-index \
            --find-links /tmp/wheels -c /tmp/wheels/constraints.txt "${pins[@]}" &&
        chroot "$work/vroot" /opt/hearth-venv/bin/python -c 'import os_brick, openstackclient'
    } > "$work/pip-install.log" 2>&1 || { tail -30 "$work/pip-install.log" >&2; log "venv install failed"; exit 1; }
    rm -rf "$venvdir"
    mkdir -p "$work/venv-out"
    mv "$work/vroot/opt/hearth-venv" "$work/venv-out/hearth-venv"
    touch "$work/venv-out/done"
    mv "$work/venv-out" "$venvdir"
    rm -rf "$work/vroot"
    log "venv ready in $(since "$t") s ($(du -sh "$venvdir" | cut -f1))"
else
    log "reusing venv $venvdir"
fi

# --- kernel: the generic flavour that linux-image-amd64 currently depends on ----
t=$(now)
resolve_kernel() {
    apt-cache depends linux-image-amd64 2>/dev/null \
        | awk '$1=="Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}'
}
kpkg=$(resolve_kernel || true)
if [ -z "$kpkg" ]; then
    apt-get update -qq >&2
    kpkg=$(resolve_kernel)
fi
[ -n "$kpkg" ] || { log "cannot resolve linux-image-amd64's kernel"; exit 1; }
kver=${kpkg#linux-image-}
log "kernel: $kpkg-unsigned ($kver)"
# The .deb is kept in $cache/debs, so repacking does not download it again.
mkdir -p "$cache/debs"
[ $force_all = 0 ] || rm -f "$cache/debs"/*.deb
kdeb=$(ls "$cache/debs/$kpkg-unsigned"_*.deb 2>/dev/null | head -1 || true)
if [ -z "$kdeb" ]; then
    (
        cd "$work"
        # As root into a root-owned dir: no _apt sandbox (it only warns).
        dl() { apt-get -q -o APT::Sandbox::User=root download "$kpkg-unsigned" >&2; }
        dl || { apt-get update -qq >&2 && dl; }
    )
    rm -f "$cache/debs"/*.deb
    mv "$work"/linux-image-*.deb "$cache/debs/"
    kdeb=$(ls "$cache/debs/$kpkg-unsigned"_*.deb | head -1)
fi
dpkg-deb -x "$kdeb" "$work/kpkg"
kdeb=$(basename "$kdeb")
log "kernel ready in $(since "$t") s"

# --- stage: copy base, prune, add modules and /init ----------------------------
t=$(now)
root=$work/root
cp -a "$base" "$root"
rm -f "$root/done"
rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,linda,bug,bash-completion} \
       "$root"/usr/share/common-licenses "$root"/var/cache/debconf/*-old \
       "$root"/var/log/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* \
       "$root"/usr/lib/udev/hwdb.d "$root"/usr/lib/udev/hwdb.bin "$root"/etc/udev/hwdb.bin \
       "$root"/usr/lib/x86_64-linux-gnu/gconv "$root"/usr/lib/python3.*/pydoc_data \
       "$root"/etc/machine-id
mkdir -p "$root/usr/share/man" "$root/var/log"
kmods=$root/usr/lib/modules/$kver
mkdir -p "$(dirname "$kmods")"
mv "$work/kpkg/lib/modules/$kver" "$kmods"
chroot "$root" depmod "$kver"
# Dependency closure, as the guest's own modprobe resolves it.
for m in $modules; do
    chroot "$root" modprobe --show-depends -S "$kver" "$m" \
        || { log "module $m not found in $kver"; exit 1; }
done | awk '$1=="insmod" {print $2}' | sort -u > "$work/closure"
# modprobe prints /lib/modules/<kver>/...; keep the part below <kver>/.
mkdir -p "$work/keep"
while read -r f; do
    rel=${f#*/modules/$kver/}
    mkdir -p "$work/keep/$(dirname "$rel")"
    cp -a "$kmods/$rel" "$work/keep/$rel"
done < "$work/closure"
rm -rf "$kmods/kernel"
mv "$work/keep/kernel" "$kmods/kernel"
chroot "$root" depmod "$kver"
nmods=$(wc -l < "$work/closure")

mkdir -p "$root/opt"
cp -a "$venvdir/hearth-venv" "$root/opt/hearth-venv"
# Not needed at run time, ~60 MB less to unpack at every boot: the packages' own
# test suites and pip (nothing is installed in the guest).
find "$root/opt/hearth-venv/lib" -depth -type d -path '*/site-packages/*' -name tests -exec rm -rf {} +
rm -rf "$root/opt/hearth-venv/lib"/python3.*/site-packages/pip "$root/opt/hearth-venv/bin"/pip*
install -m 0755 "$here/guest/init.sh" "$root/init"
mkdir -p "$root/etc/target"   # LIO's db_root; absent, the kernel logs an error
mkdir -p "$root/dev" "$root/proc" "$root/sys" "$root/run" "$root/tmp" "$root/sys/kernel/config"
[ -c "$root/dev/console" ] || mknod -m 600 "$root/dev/console" c 5 1
[ -c "$root/dev/null" ] || mknod -m 666 "$root/dev/null" c 1 3
echo hearth-vm > "$root/etc/hostname"
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
# The image is shared by every guest; /init writes a unique initiator name at boot.
rm -f "$root/etc/iscsi/initiatorname.iscsi"
log "root tree staged ($nmods modules) in $(since "$t") s"

# --- pack -----------------------------------------------------------------------
t=$(now)
mkdir -p "$work/out"
# The bzImage carries an xz-compressed ELF vmlinux; take it out (extract-vmlinux's way).
bz=$work/kpkg/boot/vmlinuz-$kver
off=$(LC_ALL=C grep -aboP '\xfd7zXZ\x00' "$bz" | head -1 | cut -d: -f1 || true)
kformat=bzImage
if [ -n "$off" ]; then
    # xz stops at the end of its stream and complains about the bytes after it.
    tail -c +$((off + 1)) "$bz" | xz -dcq > "$work/out/kernel" 2>/dev/null || true
    if [ "$(head -c 4 "$work/out/kernel" | od -An -c | tr -d ' ')" = '177ELF' ]; then
        kformat=elf-pvh
    fi
fi
[ $kformat = elf-pvh ] || cp "$bz" "$work/out/kernel"
( cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z \
    | cpio --null -o -H newc --quiet ) | lz4 -q -l -1 > "$work/out/initrd.img"
{
    echo "kernel=$kver"
    echo "kernel_deb=$kdeb"
    echo "kernel_format=$kformat"
    echo "packages=$packages"
    echo "venv=/opt/hearth-venv ($(basename "$venvdir"): ${venv_direct// /, } per requirements-clients.txt)"
    echo "modules=$nmods"
    echo "root_size=$(du -sh "$root" | cut -f1)"
    echo "initrd_size=$(du -h "$work/out/initrd.img" | cut -f1)"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} > "$work/out/info"
touch "$work/out/done"
rm -rf "$guest"
mv "$work/out" "$guest"
ln -sfn "$(basename "$guest")" "$cache/current"
# Old guests keyed by older inputs: keep only the newest three.
ls -1dt "$cache"/guest-* 2>/dev/null | tail -n +4 | xargs -r rm -rf
ls -1dt "$cache"/venv-* 2>/dev/null | tail -n +3 | xargs -r rm -rf
ls -1dt "$cache"/base-* 2>/dev/null | tail -n +3 | xargs -r rm -rf   # ~300 MB each
log "packed $(sed -n 's/^initrd_size=//p' "$guest/info") initramfs in $(since "$t") s"
log "guest ready in $(since "$t_all") s: $guest"
echo "$guest"
