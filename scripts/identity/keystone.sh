#!/usr/bin/env bash
# A real OpenStack Keystone (identity v3) on loopback for hearth's tests.
#
#   scripts/identity/keystone.sh setup             # the venv (idempotent); prints its path
#   scripts/identity/keystone.sh start DIR [PORT]  # a fresh Keystone whose state is in DIR
#   scripts/identity/keystone.sh stop DIR          # stop the Keystone started from DIR
#
# setup: creates (or refreshes) the venv with keystone + gunicorn pinned in
#   scripts/identity/requirements-keystone.txt, like scripts/setup-venv.sh: pip runs
#   only when that file (or the Python interpreter) changed since the last successful
#   install (stamp .hearth-requirements.sha256), one setup at a time per venv (flock).
#
# start: runs setup, then makes a NEW Keystone in DIR (any earlier Keystone state in
#   DIR is replaced; refused while one started from DIR still runs): keystone.conf
#   (SQLite, fernet tokens, keys under DIR, cheap bcrypt, in-memory cache),
#   keystone-manage db_sync / fernet_setup / credential_setup / bootstrap (user
#   `admin`, project `admin`, region RegionOne, identity endpoints), gunicorn on
#   127.0.0.1:PORT (0 or absent: a free port, chosen by the kernel: no race), waits
#   until it answers, then scripts/identity/bootstrap.py adds the projects demo, alt,
#   service and the users demo, alt, reader, hearth (see bootstrap.py), and writes
#     DIR/identity.env   shell KEY=value lines (OS_AUTH_URL, KEYSTONE_PORT,
#                        KEYSTONE_PID, every id and password): `. DIR/identity.env`
#     DIR/identity.json  the same data, structured
#   Logs: DIR/keystone.log (gunicorn + Keystone), DIR/keystone-manage.log.
#   It does not create the block-storage catalog entries: scripts/identity/catalog.py
#   adds and removes them per region once hearthd's port is known.
#   Prints one line: "keystone: ready at <url> (pid N) in T s; DIR/identity.env".
#
# stop: SIGTERM to the gunicorn master recorded in DIR/keystone.pid, waits, SIGKILL to
#   its process group after the timeout. Stopping a Keystone that is not running is
#   not an error.
#
# Measured (2 cores, Debian 12, 2026-12-02): setup from nothing 21 s (pip, no cache;
#   venv 204 MB); start with the venv present 6-11 s (up to 15 s while cargo builds
#   beside it): ~3.5 s db_sync beside the key setups, then ~5 s for gunicorn's worker to
#   load Keystone beside `keystone-manage bootstrap`, then <1 s for bootstrap.py;
#   stop ~2.5 s. Writes are serialized by keystone_wsgi.py (SQLite), reads are not.
#
# Environment:
#   HEARTH_KEYSTONE_VENV     venv path (default <repo>/.venv-keystone)
#   HEARTH_PYTHON            interpreter that makes the venv (default python3)
#   KEYSTONE_START_TIMEOUT   seconds from launching gunicorn to ready (default 90)
#   KEYSTONE_MANAGE_TIMEOUT  seconds one keystone-manage call may take (default 180)
#   KEYSTONE_STOP_TIMEOUT    seconds from SIGTERM to SIGKILL (default 20)
#   KEYSTONE_TOKEN_EXPIRATION  seconds a token lives (default Keystone's 3600)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${HEARTH_KEYSTONE_VENV:-$repo/.venv-keystone}
req=$here/requirements-keystone.txt
python=${HEARTH_PYTHON:-python3}
start_timeout=${KEYSTONE_START_TIMEOUT:-90}
manage_timeout=${KEYSTONE_MANAGE_TIMEOUT:-180}
stop_timeout=${KEYSTONE_STOP_TIMEOUT:-20}
token_expiration=${KEYSTONE_TOKEN_EXPIRATION:-3600}
region=RegionOne

log=""      # a file whose tail die() shows
started=""  # pid of a gunicorn that start launched and has not handed over yet
dir=""

die() {
    echo "keystone.sh: $*" >&2
    if [[ -n $log && -s $log ]]; then
        echo "---- $log (last 60 lines) ----" >&2
        tail -n 60 "$log" >&2
    fi
    exit 1
}

usage() {
    sed -n '2,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

for v in start_timeout manage_timeout stop_timeout token_expiration; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number of seconds, not '${!v}'"
done

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------

cmd_setup() {
    HEARTH_VENV=$venv HEARTH_PYTHON=$python HEARTH_VENV_REQUIREMENTS=$req \
        HEARTH_VENV_TOOLS="keystone-manage gunicorn" HEARTH_VENV_IMPORT="import keystone.server.wsgi, requests" \
        "$repo/scripts/setup-venv.sh"
}

# ---------------------------------------------------------------------------
# helpers for start/stop
# ---------------------------------------------------------------------------

# Is PID a live (not zombie) gunicorn process?
is_gunicorn() {
    local pid=$1 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q gunicorn
}

# The pid recorded in DIR/keystone.pid when that process still runs, else nothing.
running_pid() {
    local pidf=$1/keystone.pid pid
    [[ -f $pidf ]] || return 0
    pid=$(cat "$pidf" 2>/dev/null || true)
    if is_gunicorn "$pid"; then echo "$pid"; fi
}

group_alive() { kill -0 -- "-$1" 2>/dev/null; }

# SIGTERM, wait up to stop_timeout, then SIGKILL the process group (gunicorn was
# started by setsid, so its group is its own: the master and its workers).
stop_pid() {
    local pid=$1 deadline
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + stop_timeout))
    while is_gunicorn "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if is_gunicorn "$pid"; then
        echo "keystone.sh: Keystone (pid $pid) did not exit within ${stop_timeout}s of SIGTERM: SIGKILL" >&2
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    # Workers left behind by a master that died: give them a moment, then kill them.
    deadline=$((SECONDS + 5))
    while group_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if group_alive "$pid"; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
    deadline=$((SECONDS + 5))
    while (is_gunicorn "$pid" || group_alive "$pid") && ((SECONDS < deadline)); do sleep 0.1; done
    if is_gunicorn "$pid"; then
        echo "keystone.sh: Keystone (pid $pid) still runs after SIGKILL" >&2
        return 1
    fi
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
    old=$(running_pid "$dir")
    [[ -z $old ]] || die "a Keystone started from $dir is still running (pid $old): run '$0 stop $dir' first"

    # The venv; in a subshell so that its lock is released before gunicorn starts.
    (cmd_setup) >/dev/null

    local conf=$dir/keystone.conf mlog=$dir/keystone-manage.log klog=$dir/keystone.log
    rm -rf "$dir/keystone.db" "$dir/keystone.db-journal" "$dir/keystone.db-wal" "$dir/keystone.db-shm" "$dir/fernet-keys" "$dir/fernet-receipts" \
        "$dir/credential-keys" "$dir/identity.env" "$dir/identity.json" "$dir/keystone.pid"
    mkdir -p "$dir/fernet-keys" "$dir/fernet-receipts" "$dir/credential-keys"
    chmod 0700 "$dir/fernet-keys" "$dir/fernet-receipts" "$dir/credential-keys"
    : >"$mlog"
    : >"$klog"

    cat >"$conf" <<EOF
# Written by scripts/identity/keystone.sh for a test Keystone on loopback.
[DEFAULT]
debug = false
use_stderr = true

[database]
connection = sqlite:///$dir/keystone.db

[token]
provider = fernet
expiration = $token_expiration

[fernet_tokens]
key_repository = $dir/fernet-keys

[fernet_receipts]
key_repository = $dir/fernet-receipts

[credential]
key_repository = $dir/credential-keys

[identity]
# bcrypt cost 4, not 12: ~350 ms less per login (applies to passwords set from now on)
password_hash_rounds = 4
# bcrypt's own limit; the default (4096) logs a warning on every login
max_password_length = 72

[cache]
# one gunicorn worker, so an in-process cache stays coherent
enabled = true
backend = dogpile.cache.memory
EOF

    # The database and the key repositories, side by side (gunicorn's worker cannot
    # load Keystone before the fernet keys exist: it exits and is restarted in a loop).
    local user group
    user=$(id -un)
    group=$(id -gn)
    log=$mlog
    manage() {
        timeout "$manage_timeout" "$venv/bin/keystone-manage" --config-file "$conf" "$@" >>"$mlog" 2>&1 9>&-
    }
    local p_db p_fernet p_cred
    manage db_sync & p_db=$!
    manage fernet_setup --keystone-user "$user" --keystone-group "$group" & p_fernet=$!
    manage credential_setup --keystone-user "$user" --keystone-group "$group" & p_cred=$!
    wait "$p_db" || die "keystone-manage db_sync failed (or took over ${manage_timeout}s)"
    wait "$p_fernet" || die "keystone-manage fernet_setup failed (or took over ${manage_timeout}s)"
    wait "$p_cred" || die "keystone-manage credential_setup failed (or took over ${manage_timeout}s)"
    grep -q . "$dir/fernet-keys/0" 2>/dev/null || die "keystone-manage fernet_setup made no key in $dir/fernet-keys"
    # WAL: readers (token validation) and the one writer at a time (keystone_wsgi.py)
    # do not block each other. The mode is kept in the database file.
    "$venv/bin/python" -c 'import sqlite3, sys
mode = sqlite3.connect(sys.argv[1]).execute("PRAGMA journal_mode=WAL").fetchone()[0]
sys.exit(mode != "wal")' "$dir/keystone.db" >>"$mlog" 2>&1 || die "could not put $dir/keystone.db in WAL mode"

    # gunicorn, in its own session and process group (so stop can kill the group and
    # the caller's terminal or test harness signals do not reach it), with no fd of
    # ours: a caller reading our stdout through a pipe must see it close when we exit.
    log=$klog
    OS_KEYSTONE_CONFIG_DIR=$dir PYTHONDONTWRITEBYTECODE=1 setsid "$venv/bin/gunicorn" \
        --no-control-socket --workers 1 --worker-class gthread --threads 4 \
        --bind "127.0.0.1:$port" --timeout 120 --graceful-timeout 5 \
        --pythonpath "$here" --chdir "$dir" \
        keystone_wsgi:application </dev/null >>"$klog" 2>&1 9>&- &
    # The worker loads Keystone (~5 s) while bootstrap runs below.
    local pid=$! deadline=$((SECONDS + start_timeout))
    echo "$pid" >"$dir/keystone.pid"
    # From here on, a failure stops what was started.
    started=$pid
    trap 'if [[ -n $started ]]; then stop_pid "$started" || true; rm -f "$dir/keystone.pid"; fi' EXIT

    # The real port (and the master's pid) from gunicorn's "Listening at:" line.
    log=$klog
    local line=""
    while :; do
        line=$(grep -m1 -E 'Listening at: http://127\.0\.0\.1:[0-9]+ \([0-9]+\)' "$klog" || true)
        [[ -z $line ]] || break
        kill -0 "$pid" 2>/dev/null || die "gunicorn exited before listening on 127.0.0.1:$port"
        ((SECONDS < deadline)) || die "gunicorn did not listen within ${start_timeout}s"
        sleep 0.05
    done
    port=$(sed -E 's/.*Listening at: http:\/\/127\.0\.0\.1:([0-9]+) \(([0-9]+)\).*/\1/' <<<"$line")
    local master
    master=$(sed -E 's/.*Listening at: http:\/\/127\.0\.0\.1:([0-9]+) \(([0-9]+)\).*/\2/' <<<"$line")
    if [[ $master != "$pid" ]]; then
        is_gunicorn "$master" || die "gunicorn's master pid $master (from its log) is not running"
        pid=$master
        started=$pid
        echo "$pid" >"$dir/keystone.pid"
    fi

    # bootstrap: admin user/project/role (plus member, reader), RegionOne, identity
    # endpoints (the port is known now).
    local url=http://127.0.0.1:$port admin_password
    admin_password=$("$venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(18))')
    log=$mlog
    OS_BOOTSTRAP_PASSWORD=$admin_password manage bootstrap \
        --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
        --bootstrap-service-name keystone --bootstrap-region-id "$region" \
        --bootstrap-admin-url "$url/v3" --bootstrap-public-url "$url/v3" \
        --bootstrap-internal-url "$url/v3" ||
        die "keystone-manage bootstrap failed (or took over ${manage_timeout}s)"

    # Wait until it answers, then the projects, users and roles; identity.env/json.
    log=$klog
    local left=$((deadline - SECONDS))
    ((left > 0)) || left=1
    KEYSTONE_URL=$url KEYSTONE_PORT=$port KEYSTONE_PID=$pid KEYSTONE_REGION=$region \
        KEYSTONE_LOG=$klog KEYSTONE_ADMIN_PASSWORD=$admin_password KEYSTONE_READY_TIMEOUT=$left \
        "$venv/bin/python" "$here/bootstrap.py" "$dir" 9>&- ||
        die "bootstrap.py failed (Keystone at $url, pid $pid)"
    [[ -s $dir/identity.env && -s $dir/identity.json ]] || die "bootstrap.py wrote no identity.env/identity.json"

    started=""
    echo "keystone: ready at $url/v3 (pid $pid) in $(elapsed "$t0") s; $dir/identity.env"
}

# ---------------------------------------------------------------------------
# stop
# ---------------------------------------------------------------------------

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    local dir=$1 pid
    [[ -d $dir ]] || { echo "keystone.sh: no directory $dir: nothing to stop" >&2; return 0; }
    dir=$(cd "$dir" && pwd)
    if [[ ! -f $dir/keystone.pid ]]; then
        echo "keystone.sh: no $dir/keystone.pid: nothing to stop" >&2
        return 0
    fi
    pid=$(running_pid "$dir")
    if [[ -z $pid ]]; then
        echo "keystone.sh: the Keystone of $dir (pid $(cat "$dir/keystone.pid")) is not running" >&2
        rm -f "$dir/keystone.pid"
        return 0
    fi
    stop_pid "$pid" || die "could not stop Keystone pid $pid"
    rm -f "$dir/keystone.pid"
}

[[ $# -ge 1 ]] || usage
cmd=$1
shift
case $cmd in
    setup) [[ $# -eq 0 ]] || usage; cmd_setup ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    -h | --help | help) usage ;;
    *) echo "keystone.sh: unknown command '$cmd'" >&2; usage ;;
esac
