#!/bin/bash
# run.sh: boot the hearth test guest once (QEMU TCG), run one script inside it, and
# exit with that script's exit code.
#
# usage: vm-tests/run.sh [options] -- <script> [args...]
#
# The guest sees the shared directory (default: the git top of the caller, else the
# repo holding vm-tests/) at the same path as the host, so host-built binaries run
# unchanged. The script is a path (inside the share, or any host file, which is then
# copied in) or a command name in the guest's PATH (e.g. `-- sh -c 'lvs'`).
#
# Disks (sparse files, deleted afterwards unless --keep):
#   /dev/sda scratch (--scratch-size, 2G)   /dev/sdb data (--disk-size, 4G)
#   /dev/sdc second data disk, only with --second-disk or --disk2-size SIZE
#
# Options:
#   --share DIR         host directory shared at the same path (default: see above)
#   --cwd DIR           working directory of the script (default: $PWD if inside the
#                       share, else the share)
#   --disk-size SIZE    size of /dev/sdb (truncate syntax: 4G, 512M)
#   --second-disk       add /dev/sdc of the same size as /dev/sdb
#   --disk2-size SIZE   add /dev/sdc of SIZE
#   --scratch-size SIZE size of /dev/sda (default 2G)
#   -m, --memory MB     guest memory (default 2048)
#   --smp N             guest CPUs (default 2)
#   --cpu MODEL         QEMU CPU model (default Nehalem: SSE4.2, no AVX). Under TCG
#                       the guest runs faster on it than on `max`, whose AVX2 and
#                       newer string instructions the kernel and glibc pick and TCG
#                       emulates slowly. Measured here (2026-12-04, QEMU 7.2): reading
#                       a 1 GiB thin LV 4.2 s against 11.9 s, sha256sum of it 20.5 s
#                       against 31.2 s, python3 -c pass 0.48 s against 1.24 s.
#   --timeout SECS      overall limit, boot included (default 900); exit 124 on expiry
#   -e NAME=VALUE       set NAME in the script's environment; -e NAME copies the
#                       host's value (repeatable)
#   --log FILE          console log (default /tmp/hearth-vm-logs/<script>-<time>.log;
#                       the guest's dmesg is saved beside it as <log>.dmesg)
#   -v, --verbose       also show kernel console lines (always in the log)
#   --prefix STR        prefix for each guest line shown on stdout (default none)
#   --keep              keep the run directory (disk images, wrapper) afterwards
#   --no-build          do not call build-guest.sh; use $HEARTH_VM_CACHE/current
# Networking (for two-guest scenarios; guests only ever talk over 127.0.0.1):
#   --role NAME         guest hostname and HEARTH_VM_ROLE (default vm)
#   --ip ADDR/LEN       static address of the guest's NIC (e.g. 169.254.10.1/16)
#   --net-listen PORT   add a virtio NIC joined by -netdev socket listening on
#                       127.0.0.1:PORT (start this guest first)
#   --net-connect PORT  add a virtio NIC connecting to 127.0.0.1:PORT
#   --net-hub HUB:PORT  add a virtio NIC on the segment of vm-tests/net-hub.py at
#                       127.0.0.1:HUB (QEMU's UDP socket network, this guest at
#                       127.0.0.1:PORT): more than two guests on one segment
# Reaching a service on the host (an object store, say; repeatable):
#   --host-port PORT    the guest reaches the host's 127.0.0.1:PORT at
#                       $HEARTH_VM_HOST_ADDR:PORT (10.0.2.100). A second NIC on QEMU's
#                       user-mode network with restrict=on (nothing else of the host
#                       or beyond is reachable) and one guestfwd per port, which runs
#                       vm-tests/host-forward.py (host python3) for each connection;
#                       the guest's address on it is 10.0.2.15/24, no route.
#
# Exit code: the script's; 124 on timeout; 125 when the guest stopped without
# reporting one (kernel panic, init failure, QEMU error); 2 on bad usage.
#
# Inside the guest the script also gets: HEARTH_VM=1, HEARTH_VM_ROLE,
# HEARTH_VM_SCRATCH_DISK=/dev/sda, HEARTH_VM_DATA_DISK=/dev/sdb,
# HEARTH_VM_DATA_DISK2=/dev/sdc (when present), HEARTH_VM_RUNDIR (a per-run
# directory shared with the host), HEARTH_VM_SHARE; with --host-port,
# HEARTH_VM_HOST_ADDR=10.0.2.100 and HEARTH_VM_HOST_PORTS (the ports, space separated).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${HEARTH_VM_CACHE:-/var/cache/hearth-vm}
t0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
say() { printf '[run.sh] %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

share='' cwd='' disk_size=4G disk2_size='' scratch_size=2G memory=2048 smp=2 cpu=Nehalem timeout=900
logfile='' verbose=0 prefix='' keep=0 build=1 role=vm ip='' net_listen='' net_connect='' net_hub=''
envs=() host_ports=()
# The user-mode network of --host-port: QEMU's defaults, a fixed MAC the guest's init
# recognises it by, and the address the host's ports appear at.
host_addr=10.0.2.100 host_mac=52:54:00:68:72:01 host_net_ip=10.0.2.15/24
while [ $# -gt 0 ]; do
    case $1 in
        --share) share=$2; shift 2 ;;
        --cwd) cwd=$2; shift 2 ;;
        --disk-size) disk_size=$2; shift 2 ;;
        --second-disk) disk2_size=${disk2_size:-same}; shift ;;
        --disk2-size) disk2_size=$2; shift 2 ;;
        --scratch-size) scratch_size=$2; shift 2 ;;
        -m|--memory) memory=$2; shift 2 ;;
        --smp) smp=$2; shift 2 ;;
        --cpu) cpu=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        -e) envs+=("$2"); shift 2 ;;
        --log) logfile=$2; shift 2 ;;
        -v|--verbose) verbose=1; shift ;;
        --prefix) prefix=$2; shift 2 ;;
        --keep) keep=1; shift ;;
        --no-build) build=0; shift ;;
        --role) role=$2; shift 2 ;;
        --ip) ip=$2; shift 2 ;;
        --net-listen) net_listen=$2; shift 2 ;;
        --net-connect) net_connect=$2; shift 2 ;;
        --net-hub) net_hub=$2; shift 2 ;;
        --host-port) host_ports+=("$2"); shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || die "usage: run.sh [options] -- <script> [args...]"
[ "$disk2_size" != same ] || disk2_size=$disk_size
nets=0
for n in "$net_listen" "$net_connect" "$net_hub"; do [ -z "$n" ] || nets=$((nets + 1)); done
[ $nets -le 1 ] || die "--net-listen, --net-connect and --net-hub exclude each other"
case $net_hub in ''|[1-9]*:[1-9]*) ;; *) die "--net-hub $net_hub: HUB-PORT:GUEST-PORT" ;; esac
case $role in *[!A-Za-z0-9_-]*) die "--role: letters, digits, - and _ only" ;; esac
for p in ${host_ports[@]+"${host_ports[@]}"}; do
    case $p in ''|*[!0-9]*|0|0*) die "--host-port $p: not a port number" ;; esac
    if [ "$p" -gt 65535 ]; then die "--host-port $p: not a port number"; fi
done

# --- shared directory, working directory, script -------------------------------
if [ -z "$share" ]; then
    share=$(git -C "$PWD" rev-parse --show-toplevel 2>/dev/null || true)
    [ -n "$share" ] || share=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || dirname "$here")
fi
share=$(realpath "$share")
[ -d "$share" ] || die "share $share is not a directory"
if [ -z "$cwd" ]; then
    case $PWD/ in "$share"/*) cwd=$PWD ;; *) cwd=$share ;; esac
fi
cwd=$(realpath -m "$cwd")

workbase=${HEARTH_VM_WORK:-/tmp}
mkdir -p "$workbase"
work=$(mktemp -d "$workbase/hearth-vm-run.XXXXXX")
rundir=$work/share              # shared with the guest as 9p tag "run"
mkdir -p "$rundir" "$work/disks"
case "$share$rundir" in *[[:space:]]*)
    die "paths with spaces cannot go on the kernel command line: $share $rundir" ;; esac

script=$1; shift
case $script in
    */*)
        abs=$(realpath -m "$script")
        case $abs in
            "$share"/*|/usr/*|/bin/*|/sbin/*|/lib/*) script=$abs ;;
            *)  [ -f "$abs" ] || die "script $abs not found"
                cp -p "$abs" "$rundir/"; script=$rundir/$(basename "$abs")
                say "script is outside the share: copied to $script" ;;
        esac
        case $script in "$share"/*) [ -e "$script" ] || die "script $script not found" ;; esac ;;
esac

cleanup() {
    # QEMU still running (run.sh interrupted): stop it, by the pid it wrote.
    local pid
    pid=$(cat "$work/qemu.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && grep -qa qemu-system "/proc/$pid/cmdline" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
    if [ $keep = 1 ]; then say "kept run dir $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the wrapper the guest runs: environment, cwd, script and args ----------------
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
    echo '#!/bin/sh'
    echo "# generated by vm-tests/run.sh"
    echo "export HEARTH_VM=1 HEARTH_VM_ROLE=$(q "$role") HEARTH_VM_SHARE=$(q "$share")"
    echo "export HEARTH_VM_RUNDIR=$(q "$rundir")"
    echo "export HEARTH_VM_SCRATCH_DISK=/dev/sda HEARTH_VM_DATA_DISK=/dev/sdb"
    [ -z "$disk2_size" ] || echo "export HEARTH_VM_DATA_DISK2=/dev/sdc"
    if [ ${#host_ports[@]} -gt 0 ]; then
        echo "export HEARTH_VM_HOST_ADDR=$host_addr HEARTH_VM_HOST_PORTS=$(q "${host_ports[*]}")"
    fi
    for e in ${envs[@]+"${envs[@]}"}; do
        name=${e%%=*}
        case $name in ''|[0-9]*|*[!A-Za-z0-9_]*) die "-e $e: bad variable name" ;; esac
        if [ "$name" = "$e" ]; then
            [ -n "${!name+x}" ] || { say "-e $name: not set on the host, skipped"; continue; }
            val=${!name}
        else
            val=${e#*=}
        fi
        echo "export $name=$(q "$val")"
    done
    echo "cd $(q "$cwd") || exit 126"
    printf 'set --'; for a in "$@"; do printf ' %s' "$(q "$a")"; done; echo
    echo "s=$(q "$script")"
    echo 'case $s in */*) [ -x "$s" ] || exec /bin/sh "$s" "$@" ;; esac'
    echo 'exec "$s" "$@"'
} > "$rundir/hearth-run"
chmod +x "$rundir/hearth-run"

# --- guest image -------------------------------------------------------------------
if [ $build = 1 ]; then
    guest=$("$here/build-guest.sh" | tail -1)
else
    guest=$cache/current
fi
[ -f "$guest/kernel" ] && [ -f "$guest/initrd.img" ] || die "no guest image in $guest (run build-guest.sh)"
t_build=$(since "$t0")

# --- disks (sparse) ----------------------------------------------------------------
truncate -s "$scratch_size" "$work/disks/scratch.img"
truncate -s "$disk_size" "$work/disks/data1.img"
[ -z "$disk2_size" ] || truncate -s "$disk2_size" "$work/disks/data2.img"
disks=()
drive() { # file scsi-id serial
    disks+=(-drive "file=$1,format=raw,if=none,id=d$2,cache=unsafe,aio=threads,discard=unmap,detect-zeroes=unmap"
            -device "scsi-hd,bus=scsi0.0,channel=0,scsi-id=$2,lun=0,drive=d$2,serial=$3")
}
drive "$work/disks/scratch.img" 0 hearth-scratch
drive "$work/disks/data1.img" 1 hearth-data1
[ -z "$disk2_size" ] || drive "$work/disks/data2.img" 2 hearth-data2

net=()
if [ -n "$net_listen$net_connect$net_hub" ]; then
    # A stable MAC per address/role, so two guests never collide.
    h=$(printf '%s' "$role$ip" | sha256sum | cut -c1-6)
    mac=52:54:00:${h:0:2}:${h:2:2}:${h:4:2}
    if [ -n "$net_listen" ]; then
        net=(-netdev "socket,id=n0,listen=127.0.0.1:$net_listen")
    elif [ -n "$net_hub" ]; then
        net=(-netdev "socket,id=n0,udp=127.0.0.1:${net_hub%%:*},localaddr=127.0.0.1:${net_hub#*:}")
    else
        net=(-netdev "socket,id=n0,connect=127.0.0.1:$net_connect")
    fi
    net+=(-device "virtio-net-pci,netdev=n0,mac=$mac")
fi
if [ ${#host_ports[@]} -gt 0 ]; then
    # One process per guest connection (QEMU spawns it with the connection as its
    # stdin/stdout; argv split like a shell's, so no spaces or quotes in the paths).
    py=$(python3 -c 'import sys; print(sys.executable)') || die "--host-port needs python3 on the host"
    fwd=$here/host-forward.py
    case "$py$fwd" in *[[:space:]\'\",]*) die "--host-port: spaces, quotes or commas in $py $fwd" ;; esac
    user="user,id=h0,restrict=on,net=10.0.2.0/24,host=10.0.2.2"
    for p in "${host_ports[@]}"; do
        user+=",guestfwd=tcp:$host_addr:$p-cmd:$py -I -S $fwd $p"
    done
    net+=(-netdev "$user" -device "virtio-net-pci,netdev=h0,mac=$host_mac")
fi

cmdline="console=ttyS0,115200 quiet panic=1 mitigations=off net.ifnames=0 scsi_mod.scan=manual"
cmdline+=" hearth.run=$rundir/hearth-run hearth.share=$share hearth.rundir=$rundir hearth.role=$role"
[ -z "$ip" ] || cmdline+=" hearth.ip=$ip"
[ ${#host_ports[@]} -eq 0 ] || cmdline+=" hearth.hostnet=$host_mac/$host_net_ip"

# shellcheck disable=SC2054  # commas belong to QEMU's option syntax
qemu=(qemu-system-x86_64
    -accel tcg,thread=multi,tb-size=512 -cpu "$cpu" -machine q35
    -m "$memory" -smp "$smp"
    -nodefaults -no-user-config -display none -no-reboot -monitor none -serial stdio
    -pidfile "$work/qemu.pid"
    -kernel "$guest/kernel" -initrd "$guest/initrd.img" -append "$cmdline"
    -device virtio-rng-pci
    -device virtio-scsi-pci,id=scsi0
    "${disks[@]}"
    -virtfs "local,path=$share,mount_tag=host,security_model=none,id=fshost"
    -virtfs "local,path=$rundir,mount_tag=run,security_model=none,id=fsrun"
    ${net[@]+"${net[@]}"})

if [ -z "$logfile" ]; then
    mkdir -p /tmp/hearth-vm-logs
    logfile=/tmp/hearth-vm-logs/$(basename "$script")-$(date +%Y%m%d-%H%M%S)-$$.log
fi
mkdir -p "$(dirname "$logfile")"
say "guest $(basename "$guest"); share $share; script $script $*"
say "console log: $logfile"

# mawk buffers its input unless told -W interactive; gawk reads lines as they come.
awk_interactive=()
if awk -W interactive 'BEGIN{}' </dev/null >/dev/null 2>&1 \
   && ! awk -W interactive 'BEGIN{}' </dev/null 2>&1 | grep -q .; then
    awk_interactive=(-W interactive)
fi
# Console: QEMU's serial on stdout -> log (raw) -> filter -> our stdout.
t_boot=$(date +%s.%N)
set +e
timeout --kill-after=10 "$timeout" "${qemu[@]}" </dev/null 2>&1 \
    | tee "$logfile" \
    | awk ${awk_interactive[@]+"${awk_interactive[@]}"} -v verbose="$verbose" -v prefix="$prefix" '
        { sub(/\r$/, ""); gsub(/\033\[[0-9;?]*[A-Za-z]|\033c/, "") }
        !verbose && /^\[ *[0-9]+\.[0-9]+\] / { next }
        { print prefix $0; fflush() }'
statuses=("${PIPESTATUS[@]}")
set -e
qemu_rc=${statuses[0]}
t_vm=$(since "$t_boot")
[ ! -f "$rundir/dmesg.log" ] || cp "$rundir/dmesg.log" "$logfile.dmesg"

marker=$(tr -d '\r' < "$logfile" | grep -a -o '^HEARTH-VM-EXIT=[0-9]*' | tail -1 || true)
if [ -n "$marker" ]; then
    rc=${marker#HEARTH-VM-EXIT=}
elif [ -s "$rundir/exit-code" ]; then
    rc=$(cat "$rundir/exit-code")
    say "exit marker missing on the console; exit code $rc read from the run dir"
elif [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
    say "TIMEOUT after ${timeout}s; last console lines:"
    tail -n 30 "$logfile" | tr -d '\r' | sed 's/^/  | /' >&2
    rc=124
else
    say "guest stopped without an exit marker (qemu exit $qemu_rc); last console lines:"
    tail -n 30 "$logfile" | tr -d '\r' | sed 's/^/  | /' >&2
    rc=125
fi
say "exit $rc; guest image ready in ${t_build}s, VM ran ${t_vm}s, total $(since "$t0")s"
exit "$rc"
