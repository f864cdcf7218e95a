#!/usr/bin/env bash
# tempest's volume API tests against hearthd, end to end: a fresh Keystone
# (scripts/identity/keystone.sh) and a fresh hearthd, each in a temp dir, on loopback;
# tests/tempest/run.sh; then both are stopped.
#
#   tests/tempest/run-hearth.sh [--hearthd BIN] [--auth keystone|noauth-admin|noauth-all] [run.sh options]
#
# hearthd runs with a config like fixtures/file.toml: listen 127.0.0.1:0, data_dir in
# the temp dir, and
#   --auth keystone      (default) auth_strategy = "keystone": tokens validated with that
#                        Keystone by hearth's service user `hearth`; roles decide
#   --auth noauth-admin  noauth (the project comes from the URL /v3/<project_id>/...),
#                        admin_projects = ["<Keystone's admin project id>"]
#   --auth noauth-all    noauth, admin_projects = [] (every project is admin). tempest's
#                        dynamic credentials give its admin user a NEW project per test
#                        class, which a noauth hearthd cannot know: with noauth-admin,
#                        every admin test runs as a non-admin.
# --hearthd BIN (or HEARTHD): the daemon (default <repo>/target/debug/hearthd).
# Other options go to run.sh (--regex, --keep, --workspace ...). Exit code: run.sh's.
# HEARTH_START_TIMEOUT: seconds for hearthd to print "listening on" (default 30).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
hearthd=${HEARTHD:-$repo/target/debug/hearthd}
auth="keystone"
start_timeout=${HEARTH_START_TIMEOUT:-30}
stop_timeout=20
pass=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --hearthd) hearthd=${2:?--hearthd needs a path}; shift 2 ;;
        --auth) auth=${2:?--auth needs keystone, noauth-admin or noauth-all}; shift 2 ;;
        -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2 ;;
        *) pass+=("$1"); shift ;;
    esac
done
case $auth in keystone | noauth-admin | noauth-all) ;; *) echo "run-hearth.sh: --auth keystone|noauth-admin|noauth-all" >&2; exit 2 ;; esac
[[ -x $hearthd ]] || { echo "run-hearth.sh: no hearthd at $hearthd (cargo build --bin hearthd, or --hearthd BIN)" >&2; exit 1; }
[[ $start_timeout =~ ^[0-9]+$ ]] || { echo "run-hearth.sh: HEARTH_START_TIMEOUT must be seconds" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hearth-tempest.XXXXXX")
ks_dir=$tmp/keystone
hearth_pid=""
keep_tmp=0

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    local rc=$?
    if [[ -n $hearth_pid ]] && kill -0 "$hearth_pid" 2>/dev/null; then
        kill -TERM "$hearth_pid" 2>/dev/null || true
        local deadline=$((SECONDS + stop_timeout))
        while kill -0 "$hearth_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        if kill -0 "$hearth_pid" 2>/dev/null; then
            echo "run-hearth.sh: hearthd (pid $hearth_pid) did not exit within ${stop_timeout}s of SIGTERM: SIGKILL" >&2
            kill -KILL "$hearth_pid" 2>/dev/null || true
        fi
        wait "$hearth_pid" 2>/dev/null || true
    fi
    "$repo/scripts/identity/keystone.sh" stop "$ks_dir" >/dev/null 2>&1 || true
    if [[ $rc -eq 0 && $keep_tmp -eq 0 ]]; then
        rm -rf "$tmp"
    else
        echo "run-hearth.sh: kept $tmp (keystone/, hearthd.stdout, hearthd.stderr, hearthd.toml)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT

"$repo/scripts/identity/keystone.sh" start "$ks_dir"
# shellcheck disable=SC1091 # written by keystone.sh
. "$ks_dir/identity.env"

case $auth in
    keystone)
        auth_toml="auth_strategy = \"keystone\""
        ks_toml="[keystone_authtoken]
www_authenticate_uri = \"$OS_AUTH_URL\"
auth_url = \"$OS_AUTH_URL\"
username = \"$HEARTH_USERNAME\"
password = \"$HEARTH_PASSWORD\"
project_name = \"$SERVICE_PROJECT_NAME\"
user_domain_name = \"Default\"
project_domain_name = \"Default\""
        ;;
    noauth-admin) auth_toml="auth_strategy = \"noauth\"
admin_projects = [\"$ADMIN_PROJECT_ID\"]"; ks_toml="" ;;
    noauth-all) auth_toml="auth_strategy = \"noauth\"
admin_projects = []"; ks_toml="" ;;
esac
mkdir -p "$tmp/data"
(umask 077 && cat >"$tmp/hearthd.toml") <<EOF
# hearthd for tempest (tests/tempest/run-hearth.sh): one file-backed pool.
listen = "127.0.0.1:0"
data_dir = "$tmp/data"
storage_availability_zone = "nova"
$auth_toml

[quota]
quota_volumes = 10
quota_gigabytes = 1000

[backends.file-1]
driver = "file"
volume_backend_name = "file"
reserved_percentage = 0
max_over_subscription_ratio = 20.0
volume_clear = "zero"

[backends.file-2]
driver = "file"
volume_backend_name = "file2"
reserved_percentage = 0
max_over_subscription_ratio = 20.0
volume_clear = "zero"

$ks_toml
EOF

RUST_LOG=${RUST_LOG:-info} "$hearthd" --config "$tmp/hearthd.toml" </dev/null >"$tmp/hearthd.stdout" 2>"$tmp/hearthd.stderr" &
hearth_pid=$!
deadline=$((SECONDS + start_timeout))
hearth_url=""
while :; do
    hearth_url=$(grep -m1 -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$tmp/hearthd.stdout" 2>/dev/null | sed 's/^listening on //' || true)
    [[ -z $hearth_url ]] || break
    if ! kill -0 "$hearth_pid" 2>/dev/null; then
        echo "run-hearth.sh: hearthd exited before listening; its stderr:" >&2
        tail -n 40 "$tmp/hearthd.stderr" >&2
        exit 1
    fi
    if ((SECONDS >= deadline)); then
        echo "run-hearth.sh: hearthd did not print 'listening on' within ${start_timeout}s" >&2
        tail -n 40 "$tmp/hearthd.stderr" >&2
        exit 1
    fi
    sleep 0.05
done
echo "run-hearth.sh: hearthd $hearth_url (pid $hearth_pid, --auth $auth), Keystone $OS_AUTH_URL"

rc=0
# Two backends: tempest's multi-backend tests place volumes on each by
# volume_backend_name.
TEMPEST_BACKEND_NAMES=${TEMPEST_BACKEND_NAMES:-file,file2} "$here/run.sh" "${pass[@]}" "$ks_dir" "$hearth_url" || rc=$?
if grep -q panicked "$tmp/hearthd.stderr"; then
    echo "run-hearth.sh: hearthd panicked during the run (see $tmp/hearthd.stderr)" >&2
    keep_tmp=1
    [[ $rc -ne 0 ]] || rc=1
fi
[[ $rc -eq 0 ]] || keep_tmp=1
exit "$rc"
