#!/bin/bash
# two-guests.sh: hearth's two-guest iSCSI scenario (VM tier): a storage guest runs
# hearthd (lvm thin + LIO export) and a compute guest attaches its volumes with
# os-brick over iSCSI.
#
#   vm-tests/two-guests.sh [--keep] [--timeout SECS] [-- compute.py options]
#
# --keep keeps the rendezvous directory (hearthd.log, compute-brick.log) and the
# guests' run directories; --timeout is each guest's limit, boot included (1200).
#
# 1. builds (or reuses) the guest image once, and makes a rendezvous directory in
#    the repo (both guests see the repo at the same path over 9p);
# 2. boots the storage guest (--role storage --ip 169.254.10.1/16 --net-listen PORT)
#    running guest/iscsi-storage.sh, waits until QEMU listens, then the compute
#    guest (--role compute --ip 169.254.10.2/16 --net-connect PORT) running
#    guest/iscsi-compute.sh; they talk over a QEMU socket network on 127.0.0.1;
# 3. when one side ends first, tells the other through the rendezvous directory
#    (DIR/done stops the storage agent; DIR/storage-exited makes compute.py stop
#    waiting for it);
# 4. prints both exit codes and the time taken; exits 0 only when both passed.
#
# Needs target/debug/hearthd (cargo build --bin hearthd). Options after `--` go to
# compute.py (e.g. -- --only attach,extend). Environment: HEARTH_TARGET_HELPER
# (lioadm, default; local runs lifecycle.sh only, without the iSCSI scenarios),
# HEARTH_VM_CACHE, HEARTH_VM_WORK as for run.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
keep=0 timeout=1200
while [ $# -gt 0 ]; do
    case $1 in
        --keep) keep=1; shift ;;
        --timeout) timeout=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        --) shift; break ;;
        *) echo "two-guests.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
say() { printf '[two-guests] %s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t0=$SECONDS

[ -x "$repo/target/debug/hearthd" ] || { say "no target/debug/hearthd: cargo build --bin hearthd"; exit 1; }
"$here/build-guest.sh" >/dev/null

rdv=$(mktemp -d "$repo/.vm-rendezvous.XXXXXX")
chmod 755 "$rdv"
storage_pid='' compute_pid=''
cleanup() {
    local p
    for p in $storage_pid $compute_pid; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ $keep = 1 ]; then say "kept $rdv"; else rm -rf "$rdv"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free port on 127.0.0.1 for QEMU's socket network.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
common=(--timeout "$timeout")
[ $keep = 0 ] || common+=(--keep)

"$here/run.sh" "${common[@]}" --role storage --ip 169.254.10.1/16 --net-listen "$port" --prefix 'storage| ' \
    -e HEARTH_TARGET_HELPER -e RUST_LOG -- "$here/guest/iscsi-storage.sh" "$rdv" &
storage_pid=$!
for ((i = 0; ; i++)); do
    ss -ltn "sport = :$port" | grep -q LISTEN && break
    kill -0 "$storage_pid" 2>/dev/null || { say "storage guest ended before listening"; wait "$storage_pid" || true; exit 1; }
    [ $i -lt 600 ] || { say "storage QEMU never listened on $port"; exit 1; }
    sleep 0.2
done
compute_args=("$rdv")
if [ "${HEARTH_TARGET_HELPER:-lioadm}" = local ]; then
    compute_args+=(--only agent)   # no iSCSI without the lio export: plumbing only
fi
"$here/run.sh" "${common[@]}" --role compute --ip 169.254.10.2/16 --net-connect "$port" --prefix 'compute| ' \
    -- "$here/guest/iscsi-compute.sh" "${compute_args[@]}" "$@" &
compute_pid=$!

# Whichever ends first, tell the other side.
src=0 crc=0 first=''
while [ -z "$first" ]; do
    if ! kill -0 "$storage_pid" 2>/dev/null; then first=storage; fi
    if ! kill -0 "$compute_pid" 2>/dev/null; then first=${first:-compute}; fi
    [ -n "$first" ] || sleep 1
done
if [ "$first" = storage ]; then
    wait "$storage_pid" || src=$?
    storage_pid=''
    touch "$rdv/storage-exited"
    [ $src = 0 ] || say "storage guest ended first (exit $src)"
    wait "$compute_pid" || crc=$?
    compute_pid=''
else
    wait "$compute_pid" || crc=$?
    compute_pid=''
    touch "$rdv/done"
    wait "$storage_pid" || src=$?
    storage_pid=''
fi
if [ -f "$rdv/storage/hearthd.log" ] && { [ $src != 0 ] || [ $crc != 0 ]; }; then
    say "hearthd's log (last 60 lines):"
    tail -n 60 "$rdv/storage/hearthd.log" | sed 's/^/  hearthd| /' >&2
fi
say "storage exit $src, compute exit $crc, $((SECONDS - t0)) s in all"
[ $src = 0 ] && [ $crc = 0 ]
