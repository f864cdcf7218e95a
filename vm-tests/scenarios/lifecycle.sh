#!/bin/bash
# lifecycle.sh: the volume lifecycle on hearthd's LVM backend, driven with the
# unmodified openstack CLI and checked step by step against LVM itself.
#
#   lifecycle.sh --endpoint URL --vg VG
#
# Runs on the storage node as root (it reads and writes the LVs). URL is hearthd's
# API with /v3 (http://169.254.10.1:8776/v3); the CLI is given URL/admin with
# --os-auth-type none. PATH must hold `openstack` (the Debian guest's
# /opt/hearth-venv/bin) and python3 (for JSON; standard library only).
#
# Steps (LV names from src/names.rs: volume-<uuid>, _snapshot-<uuid>):
#  1. volume create --size 1   -> LV volume-<v1>, 1 GiB; a pattern A is written to it
#  2. volume set --size 2      -> the LV is 2 GiB
#  3. snapshot create          -> LV _snapshot-<s1>; then pattern B overwrites v1
#  4. volume create --snapshot -> LV volume-<v2>, 2 GiB, holding A
#  5. volume create --source   -> LV volume-<v3>, 2 GiB, holding B
#  6. volume delete v2 v3      -> both LVs gone
#  7. volume delete --purge v1 -> the snapshot's and v1's LVs gone
# One interactive openstack process runs every step (a CLI start costs ~20 s under
# TCG); waiting for a status uses a plain GET (python3 urllib). Prints "PASS lifecycle" or "FAIL lifecycle:
# <step>: <reason>"; exit 0 only when every step passed.
set -euo pipefail

endpoint='' vg=''
while [ $# -gt 0 ]; do
    case $1 in
        --endpoint) endpoint=${2%/}; shift 2 ;;
        --vg) vg=$2; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "lifecycle.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$endpoint" ] || [ -z "$vg" ]; then echo "usage: lifecycle.sh --endpoint URL --vg VG" >&2; exit 2; fi
command -v openstack >/dev/null || { echo "FAIL lifecycle: no openstack CLI on PATH" >&2; exit 1; }

GiB=$((1 << 30))
step=setup
t0=$SECONDS
fail() { echo "FAIL lifecycle: $step: $*" >&2; exit 1; }
say() { echo "[lifecycle] $(date +%H:%M:%S) $step: $*"; }

# One openstack process for every step: its interactive mode reads commands from
# stdin (a coprocess here), and `shell echo <marker>` after each command marks the
# end of its output. Starting the CLI costs ~20 s under TCG; a command ~1 s.
# PYTHONUNBUFFERED: a command's output must reach the pipe before the marker that
# the `shell` subprocess writes (block-buffered, it came after it).
coproc OSC { PYTHONUNBUFFERED=1 exec openstack --os-auth-type none --os-endpoint "$endpoint/admin" 2>&1; }
osc_n=0
OUT=''
osc_run() { # LINE...: send the lines, then the marker; OUT = all output before it
    local line out=''
    osc_n=$((osc_n + 1))
    printf '%s\n' "$@" "shell echo __lifecycle_done_${osc_n}__" >&"${OSC[1]}"
    while IFS= read -r -t 600 -u "${OSC[0]}" line; do
        if [ "$line" = "__lifecycle_done_${osc_n}__" ]; then OUT=$out; return 0; fi
        out+=$line$'\n'
    done
    fail "the openstack CLI exited or hung; its last output: $(tail -5 <<<"$out")"
}
osc() { # openstack ARGS (no quoting needed: names, ids and options only)
    osc_run "$*"
}
osc_id() { # openstack ARGS -f value -c id: OUT = the new id
    osc "$@" -f value -c id
    OUT=${OUT%$'\n'}
    [[ $OUT =~ ^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$ ]] ||
        fail "openstack $* printed no id: $OUT"
}
osc_quiet() { # openstack ARGS that print nothing when they succeed
    osc "$@"
    [ -z "$OUT" ] || fail "openstack $*: $OUT"
}

# GET a resource's field; prints "404" when it is gone.
field() { # volumes|snapshots ID FIELD
    python3 - "$endpoint/admin/$1/$2" "$3" <<'PY'
import json, sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1], headers={"X-Auth-Token": "admin:admin"})
try:
    with urllib.request.urlopen(req, timeout=30) as r:
        doc = json.load(r)
except urllib.error.HTTPError as e:
    print(e.code if e.code == 404 else f"HTTP {e.code}")
    sys.exit(0)
print(next(iter(doc.values()))[sys.argv[2]])
PY
}

wait_status() { # volumes|snapshots ID STATUS (404 = gone)
    local s i
    for ((i = 0; i < 600; i++)); do
        s=$(field "$1" "$2" status)
        [ "$s" = "$3" ] && return 0
        case $s in error*) fail "$1/$2 went to $s while waiting for $3" ;; esac
        sleep 0.3
    done
    fail "$1/$2 is $s, not $3, after 180 s"
}

# One line per LV of the VG: name size(bytes) pool origin
lvs_table() {
    lvs --reportformat json --units b --nosuffix -o lv_name,lv_size,pool_lv,origin "$vg" |
        python3 -c 'import json, sys
for lv in json.load(sys.stdin)["report"][0]["lv"]:
    print(lv["lv_name"], lv["lv_size"], lv["pool_lv"] or "-", lv["origin"] or "-")'
}

expect_lv() { # NAME SIZE-BYTES
    local line
    line=$(lvs_table | awk -v n="$1" '$1 == n') || true
    [ -n "$line" ] || fail "no LV $1 in $vg: $(lvs_table | tr '\n' ';')"
    [ -z "${2:-}" ] || [ "$(awk '{print $2}' <<<"$line")" = "$2" ] || fail "LV $1 is not $2 bytes: $line"
    say "LV $line"
}

expect_no_lv() { # NAME
    ! lvs_table | awk -v n="$1" '$1 == n {found=1} END {exit !found}' || fail "LV $1 is still in $vg"
}

lv_sha() { # LV-NAME: sha256 of its first MiB
    dd if="/dev/$vg/$1" bs=1M count=1 iflag=direct status=none | sha256sum | cut -d' ' -f1
}

write_pattern() { # LV-NAME SEED -> prints the sha256 of the MiB written
    local f
    f=$(mktemp)
    python3 -c 'import random, sys; sys.stdout.buffer.write(random.Random(sys.argv[1]).randbytes(1 << 20))' "$2" >"$f"
    dd if="$f" of="/dev/$vg/$1" bs=1M oflag=direct conv=fsync status=none
    sha256sum <"$f" | cut -d' ' -f1
    rm -f "$f"
}

tag=lc-$$
step="starting the openstack CLI"
osc_run   # its start-up output (a command list) is dropped
say "ready"
step="1 create"
osc_id volume create --size 1 "$tag-v1"
v1=$OUT
wait_status volumes "$v1" available
expect_lv "volume-$v1" $GiB
sha_a=$(write_pattern "volume-$v1" A)

step="2 extend"
osc_quiet volume set --size 2 "$v1"
for ((i = 0; i < 600; i++)); do [ "$(field volumes "$v1" size)" = 2 ] && break; sleep 0.3; done
wait_status volumes "$v1" available
expect_lv "volume-$v1" $((2 * GiB))
[ "$(lv_sha "volume-$v1")" = "$sha_a" ] || fail "volume-$v1 lost its data in the extend"

step="3 snapshot"
osc_id volume snapshot create --volume "$v1" "$tag-s1"
s1=$OUT
wait_status snapshots "$s1" available
expect_lv "_snapshot-$s1"
sha_b=$(write_pattern "volume-$v1" B)

step="4 create from snapshot"
osc_id volume create --snapshot "$s1" "$tag-v2"
v2=$OUT
wait_status volumes "$v2" available
expect_lv "volume-$v2" $((2 * GiB))
[ "$(lv_sha "volume-$v2")" = "$sha_a" ] || fail "volume-$v2 does not hold the snapshot's data"

step="5 clone"
osc_id volume create --source "$v1" "$tag-v3"
v3=$OUT
wait_status volumes "$v3" available
expect_lv "volume-$v3" $((2 * GiB))
[ "$(lv_sha "volume-$v3")" = "$sha_b" ] || fail "volume-$v3 does not hold its source's data"

step="6 delete"
osc_quiet volume delete "$v2" "$v3"
wait_status volumes "$v2" 404
wait_status volumes "$v3" 404
expect_no_lv "volume-$v2"
expect_no_lv "volume-$v3"

step="7 delete --purge"
osc_quiet volume delete --purge "$v1"
wait_status volumes "$v1" 404
wait_status snapshots "$s1" 404
expect_no_lv "_snapshot-$s1"
expect_no_lv "volume-$v1"

step=finished
echo "PASS lifecycle ($((SECONDS - t0)) s): create, extend, snapshot, from snapshot, clone, delete, purge; LVs match"
