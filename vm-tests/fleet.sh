#!/bin/bash
# fleet.sh: hearth's fleet scenario (VM tier): two storage guests, each a hearthd
# node with its own LVM pool and LIO export, share one PostgreSQL store; a compute
# guest asks one node's API for volumes the other node makes and exports, and
# attaches them over iSCSI with os-brick.
#
#   vm-tests/fleet.sh [--keep] [--timeout SECS]
#
# --keep keeps the rendezvous directory (a/ and b/: each node's hearthd.log, the
# compute runs' compute-brick.log) and the guests' run directories; --timeout is
# each guest's limit, boot included (1200).
#
# 1. builds (or reuses) the guest image; starts a PostgreSQL server on the host
#    (scripts/postgres/server.sh, a temp dir, a free loopback port) and
#    vm-tests/net-hub.py, the one Ethernet segment the three guests share
#    (169.254.0.0/16; QEMU's UDP socket network through the hub);
# 2. boots storage-a (169.254.10.1, zone zone-a) and storage-b (169.254.10.4,
#    zone-b), each running guest/iscsi-storage.sh with its own rendezvous
#    directory (DIR/a, DIR/b), `host`, zone and `[database] connection` to the
#    host's PostgreSQL (reached through run.sh --host-port), lifecycle.sh skipped;
#    and the compute guest (169.254.10.2) running guest/fleet-compute.sh DIR;
# 3. when a storage guest ends early, tells compute.py (DIR/x/storage-exited); when
#    the compute guest ends, ends both storage agents (DIR/a/done, DIR/b/done);
# 4. prints the exit codes and the time taken; exits 0 only when all three passed.
#
# Needs target/debug/hearthd (cargo build --bin hearthd) and Debian's postgresql on
# the host. Environment: RUST_LOG, HEARTH_VM_CACHE, HEARTH_VM_WORK as for run.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
keep=0 timeout=1200
while [ $# -gt 0 ]; do
    case $1 in
        --keep) keep=1; shift ;;
        --timeout) timeout=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "fleet.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
say() { printf '[fleet] %s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t0=$SECONDS

[ -x "$repo/target/debug/hearthd" ] || { say "no target/debug/hearthd: cargo build --bin hearthd"; exit 1; }
"$here/build-guest.sh" >/dev/null

rdv=$(mktemp -d "$repo/.vm-rendezvous.XXXXXX")
chmod 755 "$rdv"
mkdir -m 755 "$rdv/a" "$rdv/b"
pg=$(mktemp -d /tmp/hearth-fleet-pg.XXXXXX)
chmod 755 "$pg"
hub_pid='' a_pid='' b_pid='' c_pid=''
cleanup() {
    local p
    for p in $a_pid $b_pid $c_pid; do kill -TERM "$p" 2>/dev/null || true; done
    [ -z "$hub_pid" ] || kill -TERM "$hub_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    "$repo/scripts/postgres/server.sh" stop "$pg" || true
    if [ $keep = 1 ]; then say "kept $rdv and $pg"; else rm -rf "$rdv" "$pg"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free loopback ports: TCP for PostgreSQL, UDP for the hub and each guest's NIC.
read -r pg_port hub_port a_port b_port c_port < <(python3 -c '
import socket
tcp = socket.socket(); tcp.bind(("127.0.0.1", 0))
udp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
for u in udp: u.bind(("127.0.0.1", 0))
print(tcp.getsockname()[1], *[u.getsockname()[1] for u in udp])')

"$repo/scripts/postgres/server.sh" start "$pg" "$pg_port" >/dev/null
say "PostgreSQL on 127.0.0.1:$pg_port ($pg)"
python3 "$here/net-hub.py" --watch $$ "$hub_port" "$a_port" "$b_port" "$c_port" &
hub_pid=$!

common=(--timeout "$timeout")
[ $keep = 0 ] || common+=(--keep)
storage() { # NAME IP ZONE GUEST-PORT
    "$here/run.sh" "${common[@]}" --role "$1" --ip "$2/16" --net-hub "$hub_port:$4" --host-port "$pg_port" \
        --prefix "$1| " -e HEARTH_STORAGE_IP="$2" -e HEARTH_STORAGE_SECOND_IP= -e HEARTH_STORAGE_HOST="$1" \
        -e HEARTH_STORAGE_ZONE="$3" -e HEARTH_DATABASE="postgresql://hearth@10.0.2.100:$pg_port/postgres" \
        -e HEARTH_SKIP_LIFECYCLE=1 -e RUST_LOG -- "$here/guest/iscsi-storage.sh" "$rdv/${1#storage-}"
}
storage storage-a 169.254.10.1 zone-a "$a_port" &
a_pid=$!
storage storage-b 169.254.10.4 zone-b "$b_port" &
b_pid=$!
"$here/run.sh" "${common[@]}" --role compute --ip 169.254.10.2/16 --net-hub "$hub_port:$c_port" \
    --prefix 'compute| ' -- "$here/guest/fleet-compute.sh" "$rdv" &
c_pid=$!

# A storage guest that ends first: compute.py stops waiting for its agent. The
# compute guest that ends: both agents end.
arc='' brc='' crc=''
while [ -z "$crc" ]; do
    if [ -z "$arc" ] && ! kill -0 "$a_pid" 2>/dev/null; then
        arc=0; wait "$a_pid" || arc=$?
        touch "$rdv/a/storage-exited"; say "storage-a ended before the compute guest (exit $arc)"
    fi
    if [ -z "$brc" ] && ! kill -0 "$b_pid" 2>/dev/null; then
        brc=0; wait "$b_pid" || brc=$?
        touch "$rdv/b/storage-exited"; say "storage-b ended before the compute guest (exit $brc)"
    fi
    if ! kill -0 "$c_pid" 2>/dev/null; then
        crc=0; wait "$c_pid" || crc=$?
    else
        sleep 1
    fi
done
c_pid=''
touch "$rdv/a/done" "$rdv/b/done"
[ -n "$arc" ] || { arc=0; wait "$a_pid" || arc=$?; }
[ -n "$brc" ] || { brc=0; wait "$b_pid" || brc=$?; }
a_pid='' b_pid=''
if [ "$arc$brc$crc" != 000 ]; then
    for n in a b; do
        [ -f "$rdv/$n/storage/hearthd.log" ] || continue
        say "storage-$n's hearthd log (last 40 lines):"
        tail -n 40 "$rdv/$n/storage/hearthd.log" | sed "s/^/  hearthd-$n| /" >&2
    done
fi
say "storage-a exit $arc, storage-b exit $brc, compute exit $crc, $((SECONDS - t0)) s in all"
[ "$arc$brc$crc" = 000 ]
