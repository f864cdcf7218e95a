#!/bin/bash
# iscsi-storage.sh: the storage guest of the two-guest iSCSI scenario
# (vm-tests/two-guests.sh boots it with --role storage --ip 169.254.10.1/16).
#
#   iscsi-storage.sh RENDEZVOUS-DIR
#
# 1. adds the second portal address 169.254.10.3/16 to the NIC (multipath case);
# 2. makes the volume group hearth-volumes on $HEARTH_VM_DATA_DISK (/dev/sdb);
# 3. writes hearthd's config (lvm thin, export $HEARTH_TARGET_HELPER, default
#    lioadm) and starts target/debug/hearthd (built on the host) with it;
# 4. starts vm-tests/scenarios/storage_agent.py on RENDEZVOUS-DIR in the background,
#    with this script's --start-hearthd / --stop-hearthd as its commands, and runs
#    vm-tests/scenarios/lifecycle.sh (openstack CLI from /opt/hearth-venv) meanwhile,
#    holding RENDEZVOUS-DIR/storage-busy so that compute.py does not restart
#    hearthd under it;
# 5. waits for the agent (it ends when the compute guest writes DIR/done), stops
#    hearthd and exits non-zero if lifecycle.sh, the agent or hearthd failed
#    (hearthd must exit 0 on SIGTERM and must not have panicked).
#
# The helper forms, run by the agent (argv, no shell):
#   iscsi-storage.sh --start-hearthd CONFIG STATE-DIR   start, wait until it answers
#   iscsi-storage.sh --stop-hearthd STATE-DIR           SIGTERM, wait for the exit
# STATE-DIR holds hearthd.pid and hearthd.log (appended across restarts).
#
# Environment: HEARTH_TARGET_HELPER (lioadm | local), HEARTH_SKIP_LIFECYCLE=1,
# RUST_LOG (default info). For a node of a fleet (vm-tests/fleet.sh):
# HEARTH_STORAGE_IP (the API's and the portal's address, default 169.254.10.1),
# HEARTH_STORAGE_SECOND_IP (the second portal, default 169.254.10.3; empty: none),
# HEARTH_STORAGE_HOST (hearthd's `host`), HEARTH_STORAGE_ZONE
# (`storage_availability_zone`), HEARTH_DATABASE (`[database] connection`).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
hearthd=$repo/target/debug/hearthd
listen_ip=${HEARTH_STORAGE_IP:-169.254.10.1}
second_ip=${HEARTH_STORAGE_SECOND_IP-169.254.10.3}
port=8776
vg=hearth-volumes

say() { echo "[storage] $(date +%H:%M:%S) $*"; }

api_up() { (exec 3<>"/dev/tcp/$listen_ip/$port") 2>/dev/null; }

start_hearthd() { # CONFIG STATE-DIR
    local cfg=$1 state=$2 pid i
    mkdir -p "$state"
    if [ -s "$state/hearthd.pid" ] && kill -0 "$(cat "$state/hearthd.pid")" 2>/dev/null; then
        echo "hearthd already runs (pid $(cat "$state/hearthd.pid"))" >&2; return 1
    fi
    echo "=== $(date +%H:%M:%S.%N) start" >>"$state/hearthd.log"
    RUST_LOG=${RUST_LOG:-info} RUST_BACKTRACE=1 setsid "$hearthd" --config "$cfg" \
        </dev/null >>"$state/hearthd.log" 2>&1 &
    pid=$!
    echo "$pid" >"$state/hearthd.pid"
    # Ready when the API port accepts connections (no fixed sleep).
    for ((i = 0; i < 1200; i++)); do
        kill -0 "$pid" 2>/dev/null || { echo "hearthd exited at start; log:" >&2; tail -30 "$state/hearthd.log" >&2; return 1; }
        api_up && { echo "hearthd $pid up"; return 0; }
        sleep 0.1
    done
    echo "hearthd did not answer on $listen_ip:$port within 120 s" >&2
    return 1
}

stop_hearthd() { # STATE-DIR
    local state=$1 pid i rc=0
    pid=$(cat "$state/hearthd.pid" 2>/dev/null || true)
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then echo "hearthd not running"; return 0; fi
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "hearthd $pid still runs 30 s after SIGTERM; killing it" >&2
        kill -KILL "$pid"; rc=1
    fi
    rm -f "$state/hearthd.pid"
    echo "=== $(date +%H:%M:%S.%N) stopped" >>"$state/hearthd.log"
    echo "hearthd $pid stopped"
    return $rc
}

case ${1:-} in
    --start-hearthd) start_hearthd "$2" "$3"; exit ;;
    --stop-hearthd) stop_hearthd "$2"; exit ;;
    -h|--help|'') awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
esac

rdv=$1
state=$rdv/storage
mkdir -p "$state"
helper=${HEARTH_TARGET_HELPER:-lioadm}
[ -x "$hearthd" ] || { say "no $hearthd (cargo build --bin hearthd on the host)"; exit 1; }

nic=$(ip -o -4 addr show | awk -v ip="$listen_ip" 'index($4, ip "/") == 1 {print $2; exit}')
[ -n "$nic" ] || { say "no NIC with $listen_ip"; ip addr; exit 1; }
if [ -n "$second_ip" ]; then
    ip addr add "$second_ip/16" dev "$nic"
    say "portals $listen_ip and $second_ip on $nic"
fi

disk=${HEARTH_VM_DATA_DISK:-/dev/sdb}
pvcreate -ff -y "$disk" >/dev/null
vgcreate "$vg" "$disk" >/dev/null
say "volume group $vg on $disk"

cfg=$state/hearthd.toml
{
    echo "listen = \"$listen_ip:$port\""
    echo 'data_dir = "/var/lib/hearth"'
    # A lab network between two guests: noauth is allowed off loopback only when asked.
    echo 'noauth_allow_remote = true'
    [ -z "${HEARTH_STORAGE_HOST:-}" ] || echo "host = \"$HEARTH_STORAGE_HOST\""
    [ -z "${HEARTH_STORAGE_ZONE:-}" ] || echo "storage_availability_zone = \"$HEARTH_STORAGE_ZONE\""
    echo '[backends.lvm]'
    echo 'driver = "lvm"'
    echo 'volume_backend_name = "lvm"'
    echo "volume_group = \"$vg\""
    echo 'lvm_type = "thin"'
    if [ "$helper" != local ]; then
        echo "target_helper = \"$helper\""
        echo "target_ip_address = \"$listen_ip\""
        [ -z "$second_ip" ] || echo "target_secondary_ip_addresses = [\"$second_ip\"]"
        echo 'target_port = 3260'
    fi
    if [ -n "${HEARTH_DATABASE:-}" ]; then
        echo '[database]'
        echo "connection = \"$HEARTH_DATABASE\""
    fi
} >"$cfg"
say "hearthd config ($helper export):"; sed 's/^/    /' "$cfg"
"$hearthd" check-config --config "$cfg" || { say "check-config refused the config"; exit 1; }
start_hearthd "$cfg" "$state"

self=$here/$(basename "$0")
python3 "$repo/vm-tests/scenarios/storage_agent.py" --dir "$rdv" --vg "$vg" \
    --start-cmd "$self --start-hearthd $cfg $state" --stop-cmd "$self --stop-hearthd $state" &
agent=$!

rc=0
if [ "${HEARTH_SKIP_LIFECYCLE:-}" != 1 ]; then
    # While it runs, compute.py holds back the scenarios that stop hearthd.
    touch "$rdv/storage-busy"
    say "lifecycle.sh"
    if PATH=/opt/hearth-venv/bin:$PATH "$repo/vm-tests/scenarios/lifecycle.sh" \
        --endpoint "http://$listen_ip:$port/v3" --vg "$vg"; then
        say "lifecycle.sh passed"
    else
        say "lifecycle.sh FAILED"; rc=1
    fi
    rm -f "$rdv/storage-busy"
fi

arc=0
wait "$agent" || arc=$?
[ $arc = 0 ] || { say "storage agent exited $arc"; rc=1; }
stop_hearthd "$state" || rc=1
if grep -q panicked "$state/hearthd.log"; then
    say "hearthd panicked:"; grep -B2 -A10 panicked "$state/hearthd.log" | head -40; rc=1
fi
if grep -q ERROR "$state/hearthd.log"; then
    say "hearthd's log has errors (last 40):"; grep 'ERROR' "$state/hearthd.log" | tail -40
fi
left=(/sys/kernel/config/target/iscsi/iqn.*)
[ -e "${left[0]}" ] || left=()
say "configfs left: ${#left[@]} targets ${left[*]##*/}"
say "exit $rc"
exit $rc
