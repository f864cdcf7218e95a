#!/usr/bin/env bash
# A real object store on loopback for hearth's tests: OpenStack Swift (from PyPI) with
# its s3api middleware, so one server speaks S3 (for the backup target) and Swift.
#
#   scripts/objectstore/swift.sh setup             # the venv (idempotent); prints its path
#   scripts/objectstore/swift.sh start DIR [PORT]  # a fresh Swift whose state is in DIR
#   scripts/objectstore/swift.sh stop DIR          # stop the Swift started from DIR
#
# setup: creates (or refreshes) the venv with swift and boto3 pinned in
#   scripts/objectstore/requirements-swift.txt through scripts/setup-venv.sh: pip runs
#   only when that file (or the Python interpreter) changed since the last successful
#   install, one setup at a time per venv.
#
# start: runs setup, then makes a NEW object store in DIR (earlier state in DIR is
#   replaced; refused while one started from DIR still runs): swift_helper.py picks
#   free loopback ports (checked free: Swift binds with SO_REUSEPORT, so a busy port
#   would not make it fail), builds the rings in one Python process and writes the
#   configs under DIR/etc (one replica, one device in DIR/devices, which needs user
#   xattrs; tempauth with stateless tokens and a fresh random key; s3api, region
#   us-east-1); memcached on a free port when Debian's is installed (SWIFT_MEMCACHED);
#   the account, container, object and proxy servers (each in one process, in its own
#   session, logging to DIR/log/NAME.log); then waits (polling, SWIFT_START_TIMEOUT)
#   until each answers, checks nobody else listens on its port, creates the bucket
#   through the Swift API, checks a signed S3 HEAD of it, and writes
#     DIR/objectstore.env   shell KEY=value lines: OBJECTSTORE_ENDPOINT_URL, _REGION,
#                           _CA_CERT_FILE, _ACCESS_KEY, _SECRET_KEY, _BUCKET, _PORT,
#                           _PROXY_PID, SWIFT_AUTH_URL, SWIFT_USER, SWIFT_KEY,
#                           SWIFT_STORAGE_URL
#     DIR/objectstore.json  the same, structured (endpoint_url, ca_cert_file, region,
#                           access_key, secret_key, bucket, port, swift{auth_url, user,
#                           key, storage_url}, pids, memcached, log_dir)
#   The recorded pids are in DIR/swift.pids ("NAME PID" lines). PORT is the S3/Swift
#   endpoint's port (0 or absent: a free one). With SWIFT_WATCH_PID=N, a watcher
#   (`tail --pid`) stops the store when process N exits: a test that is killed does
#   not leave Swift running.
#   Prints one line: "swift: ready at <url> (bucket B) in T s; DIR/objectstore.env".
#
# stop: SIGTERM to each recorded pid that still runs that program (never to a group:
#   a Swift server that gets SIGTERM signals its own process group), waits, SIGKILL
#   after SWIFT_STOP_TIMEOUT. Stopping a store that is not running is not an error.
#
# Measured (2 cores, Debian 12, 2026-12-02): setup from nothing 9 s (pip, no cache;
#   venv 114 MB), 0.2 s when nothing changed; start with the venv present 1.2-1.6 s
#   (rings ~0.3 s); stop 0.1 s (0.8 s with memcached). RSS of the five processes
#   ~235 MiB. boto3, sequential: 1 KiB PUT 18 ms without memcached, 13 ms with it
#   (without it every request also HEADs the account and container); 4 MiB PUT
#   87 / 96 MB/s, GET 137 / 197 MB/s. Swift is CPU-bound here (Python): a benchmark
#   through it measures Swift as much as the client.
#
# Environment:
#   HEARTH_SWIFT_VENV     venv path (default <repo>/.venv-swift)
#   HEARTH_PYTHON         interpreter that makes the venv (default python3)
#   SWIFT_START_TIMEOUT   seconds from launching the servers to ready (default 60)
#   SWIFT_STOP_TIMEOUT    seconds from SIGTERM to SIGKILL (default 10)
#   SWIFT_MEMCACHED       auto (default: use memcached when installed), 1 (required), 0 (never)
#   SWIFT_BUCKET          the bucket to create (default hearth-test)
#   SWIFT_S3_MAX_LISTING  the most keys in one S3 listing page (default 1000, as AWS)
#   SWIFT_TLS             1: the endpoint is https, with a certificate for 127.0.0.1 and
#                         localhost signed by a CA made for it (DIR/tls/ca.pem,
#                         OBJECTSTORE_CA_CERT_FILE / ca_cert_file)
#   SWIFT_WATCH_PID       stop the store when this process exits
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${HEARTH_SWIFT_VENV:-$repo/.venv-swift}
req=$here/requirements-swift.txt
python=${HEARTH_PYTHON:-python3}
start_timeout=${SWIFT_START_TIMEOUT:-60}
stop_timeout=${SWIFT_STOP_TIMEOUT:-10}
use_memcached=${SWIFT_MEMCACHED:-auto}
watch_pid=${SWIFT_WATCH_PID:-}
servers=(account container object proxy)

dir=""

die() {
    echo "swift.sh: $*" >&2
    exit 1
}

usage() {
    sed -n '5,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

for v in start_timeout stop_timeout; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number of seconds, not '${!v}'"
done
[[ $use_memcached =~ ^(auto|0|1)$ ]] || die "SWIFT_MEMCACHED must be auto, 0 or 1, not '$use_memcached'"
[[ -z $watch_pid || $watch_pid =~ ^[0-9]+$ ]] || die "SWIFT_WATCH_PID must be a pid, not '$watch_pid'"
[[ ${SWIFT_TLS:-0} =~ ^[01]$ ]] || die "SWIFT_TLS must be 0 or 1, not '$SWIFT_TLS'"
[[ ${SWIFT_S3_MAX_LISTING:-1000} =~ ^[1-9][0-9]*$ ]] || die "SWIFT_S3_MAX_LISTING must be a positive number, not '$SWIFT_S3_MAX_LISTING'"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

cmd_setup() {
    HEARTH_VENV=$venv HEARTH_PYTHON=$python HEARTH_VENV_REQUIREMENTS=$req \
        HEARTH_VENV_TOOLS="swift-proxy-server swift-account-server swift-container-server swift-object-server" \
        HEARTH_VENV_IMPORT="import swift.common.middleware.s3api.s3api, swift.common.ring, boto3" \
        "$repo/scripts/setup-venv.sh"
}

# ---------------------------------------------------------------------------
# helpers for start/stop
# ---------------------------------------------------------------------------

# Is PID a live (not zombie) process whose command line contains WORD?
is_running() {
    local pid=$1 word=$2 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$word"
}

# The program a recorded name runs (what its command line must contain).
program() {
    case $1 in
        memcached) echo memcached ;;
        watch) echo "tail --pid" ;;
        *) echo "swift-$1-server" ;;
    esac
}

# "NAME PID" lines of DIR/swift.pids whose process still runs that program.
running() {
    local pidf=$1/swift.pids name pid
    [[ -f $pidf ]] || return 0
    while read -r name pid; do
        if is_running "$pid" "$(program "$name")"; then echo "$name $pid"; fi
    done <"$pidf"
}

# SIGTERM the recorded pids, wait, then SIGKILL. Each Swift server and memcached is
# signalled alone (a server signals its own group); the watcher with its group (the
# bash that runs `tail --pid` and that tail, in a session of their own).
signal_one() {
    if [[ $1 == watch ]]; then kill "-$2" -- "-$3" 2>/dev/null || true; fi
    kill "-$2" "$3" 2>/dev/null || true
}

stop_pids() {
    local -a names=() pids=()
    local name pid deadline left
    while read -r name pid; do
        [[ -n $name ]] || continue
        names+=("$name")
        pids+=("$pid")
    done
    ((${#pids[@]})) || return 0
    for i in "${!pids[@]}"; do signal_one "${names[$i]}" TERM "${pids[$i]}"; done
    deadline=$((SECONDS + stop_timeout))
    while :; do
        left=0
        for i in "${!pids[@]}"; do
            if is_running "${pids[$i]}" "$(program "${names[$i]}")"; then left=1; fi
        done
        ((left)) || return 0
        ((SECONDS < deadline)) || break
        sleep 0.05
    done
    for i in "${!pids[@]}"; do
        if is_running "${pids[$i]}" "$(program "${names[$i]}")"; then
            echo "swift.sh: ${names[$i]} (pid ${pids[$i]}) did not exit within ${stop_timeout}s of SIGTERM: SIGKILL" >&2
            signal_one "${names[$i]}" KILL "${pids[$i]}"
        fi
    done
    deadline=$((SECONDS + 5))
    while ((SECONDS < deadline)); do
        left=0
        for i in "${!pids[@]}"; do
            if is_running "${pids[$i]}" "$(program "${names[$i]}")"; then left=1; fi
        done
        ((left)) || return 0
        sleep 0.05
    done
    echo "swift.sh: some of ${names[*]} still run after SIGKILL" >&2
    return 1
}

abs_dir() {
    mkdir -p "$1" || die "cannot create $1"
    (cd "$1" && pwd)
}

# ---------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------

cmd_start() {
    [[ $# -ge 1 && $# -le 2 ]] || usage
    local port=${2:-0} t0
    if ! [[ $port =~ ^[0-9]+$ ]] || ((port > 65535)); then die "PORT must be 0..65535, not '$port'"; fi
    dir=$(abs_dir "$1")
    t0=$(now)

    local old
    old=$(running "$dir")
    [[ -z $old ]] || die "a Swift started from $dir is still running ($(tr '\n' ' ' <<<"$old")): run '$0 stop $dir' first"

    # The venv; in a subshell so that its lock is released before the servers start.
    (cmd_setup) >/dev/null

    local memcached=""
    case $use_memcached in
        1) memcached=$(command -v memcached) || die "SWIFT_MEMCACHED=1 but there is no memcached (apt-get install memcached)" ;;
        auto) memcached=$(command -v memcached || true) ;;
    esac

    rm -rf "${dir:?}/etc" "$dir/devices" "$dir/log" "$dir/swift.pids" "$dir/secret" \
        "$dir/objectstore.env" "$dir/objectstore.json"
    mkdir -p "$dir/log"

    # shellcheck disable=SC2034 # PORT_ACCOUNT, _CONTAINER, _OBJECT are read as ${!var}
    local build PORT_PROXY PORT_ACCOUNT PORT_CONTAINER PORT_OBJECT PORT_MEMCACHED=""
    build=$("$venv/bin/python" "$here/swift_helper.py" build "$dir" "$port" "$([[ -n $memcached ]] && echo 1 || echo 0)") ||
        die "could not prepare the configuration and rings in $dir"
    eval "$build"

    # From here on, a failure stops what was started.
    trap 'running "$dir" | stop_pids || true' EXIT

    local ready_args=() pid name
    : >"$dir/swift.pids"
    if [[ -n $memcached ]]; then
        local as_root=()
        [[ $(id -u) -ne 0 ]] || as_root=(-u root)
        setsid "$memcached" -l 127.0.0.1 -p "$PORT_MEMCACHED" -U 0 -m 64 "${as_root[@]}" \
            </dev/null >>"$dir/log/memcached.log" 2>&1 9>&- &
        pid=$!
        echo "memcached $pid" >>"$dir/swift.pids"
        ready_args+=("memcached=$pid:$PORT_MEMCACHED")
    fi
    for name in "${servers[@]}"; do
        local var=PORT_${name^^}
        # In its own session (a server signals its process group on SIGTERM), with no
        # fd of ours: a caller reading our stdout through a pipe sees it close.
        PYTHONDONTWRITEBYTECODE=1 setsid "$venv/bin/swift-$name-server" "$dir/etc/$name-server.conf" -v \
            </dev/null >>"$dir/log/$name.log" 2>&1 9>&- &
        pid=$!
        echo "$name $pid" >>"$dir/swift.pids"
        ready_args+=("$name=$pid:${!var}")
    done

    "$venv/bin/python" "$here/swift_helper.py" ready "$dir" "$start_timeout" "${ready_args[@]}" ||
        die "Swift in $dir did not become ready (logs in $dir/log)"

    if [[ -n $watch_pid ]]; then
        # Stops the store when the watched process exits (tail polls it each second).
        # shellcheck disable=SC2016 # expanded by that bash
        SWIFT_WATCH_PID="" setsid bash -c 'tail --pid="$1" -f /dev/null; exec "$2" stop "$3"' \
            swift-watch "$watch_pid" "$here/swift.sh" "$dir" </dev/null >>"$dir/log/watch.log" 2>&1 9>&- &
        echo "watch $!" >>"$dir/swift.pids"
    fi
    trap - EXIT
    local mc=""
    [[ -z $memcached ]] || mc=", memcached"
    local scheme=http
    [[ ${SWIFT_TLS:-0} != 1 ]] || scheme=https
    echo "swift: ready at $scheme://127.0.0.1:$PORT_PROXY (bucket ${SWIFT_BUCKET:-hearth-test}$mc) in $(elapsed "$t0") s; $dir/objectstore.env"
}

# ---------------------------------------------------------------------------
# stop
# ---------------------------------------------------------------------------

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    local dir=$1 live
    [[ -d $dir ]] || { echo "swift.sh: no directory $dir: nothing to stop" >&2; return 0; }
    dir=$(cd "$dir" && pwd)
    [[ -f $dir/swift.pids ]] || { echo "swift.sh: no $dir/swift.pids: nothing to stop" >&2; return 0; }
    # Not the watcher when it is the watcher that runs this stop.
    live=$(running "$dir" | awk -v self=$$ '$2 != self')
    if [[ -n $live ]]; then
        stop_pids <<<"$live" || die "could not stop the Swift of $dir"
    fi
    rm -f "$dir/swift.pids"
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
    setup) [[ $# -eq 0 ]] || usage; cmd_setup ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    -h | --help | help) usage ;;
    *) echo "swift.sh: unknown command '$cmd'" >&2; usage ;;
esac
