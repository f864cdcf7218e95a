#!/usr/bin/env bash
# tempest's volume API tests (tempest.api.volume.*) against one running hearthd.
#
#   tests/tempest/run.sh [options] KEYSTONE_DIR HEARTH_URL
#   tests/tempest/run.sh --setup          # only make the tempest venv; prints its path
#
# KEYSTONE_DIR is a Keystone started by scripts/identity/keystone.sh (its
# identity.json gives the URL and the admin); HEARTH_URL is hearthd's base URL
# (http://127.0.0.1:PORT, no /v3). tempest authenticates with Keystone and finds
# hearthd in the token's catalog (services block-storage and volumev3) under one
# region: --region R when the caller registered it (scripts/identity/catalog.py);
# otherwise this script registers region `tempest-<port>` with
# HEARTH_URL/v3/%(project_id)s and removes it at the end.
#
# What it does: the venv (tests/tempest/requirements-tempest.txt, pinned; installed
# only when that file changed, like scripts/setup-venv.sh); a workspace in a temp dir
# (`tempest init`, HOME inside it); etc/tempest.conf (identity v3, the Keystone admin,
# dynamic credentials, only cinder available, microversions 3.0-3.67, the features
# hearth has: see write_conf below); then
#   tempest run --regex '^tempest\.api\.volume\.' --exclude-list tests/tempest/exclude.txt
#               --concurrency 2
# with an overall timeout; then a summary (tests/tempest/summarize.py): counts, the
# failing tests with their errors, written to the workspace's results/ too.
# Exit code: 0 when every test that ran passed; 1 on any failure (or none ran); 2 on
# bad usage. The workspace is removed after a clean run, kept (and its path printed)
# after a failure or with --keep.
#
# Options:
#   --region R           the catalog region of this hearthd (registered by the caller)
#   --regex RE           tests to run (default '^tempest\.api\.volume\.')
#   --exclude-list FILE  (default tests/tempest/exclude.txt; '' for none)
#   --concurrency N      stestr workers (default 2)
#   --workspace DIR      make the workspace here (must not exist); kept
#   --keep               keep the temp workspace after a clean run too
#   --no-cinder-enforce-scope  tempest's [enforce_scope] cinder = False (default True:
#                        tempest reads through a separate user with the `reader` role
#                        on the same project, as Cinder's new default policies allow.
#                        With False and Glance unavailable, tempest 47's
#                        VolumesGetTest and VolumesNegativeTest cannot even set up:
#                        they use images_client, which exists only with Glance)
# Environment:
#   HEARTH_TEMPEST_VENV      venv path (default <repo>/.venv-tempest)
#   HEARTH_KEYSTONE_VENV     keystone venv, for catalog.py (default <repo>/.venv-keystone)
#   HEARTH_PYTHON            interpreter that makes the venv (default python3)
#   TEMPEST_TIMEOUT          seconds for the whole tempest run (default 3600)
#   TEMPEST_BUILD_TIMEOUT    seconds tempest waits for one status change (default 120)
#   TEMPEST_STORAGE_PROTOCOL, TEMPEST_VENDOR_NAME, TEMPEST_BACKEND_NAMES
#                            what hearthd's pools report (default local, hearth, file:
#                            the file backend of fixtures/file.toml)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${HEARTH_TEMPEST_VENV:-$repo/.venv-tempest}
ks_venv=${HEARTH_KEYSTONE_VENV:-$repo/.venv-keystone}
req=$here/requirements-tempest.txt
python=${HEARTH_PYTHON:-python3}
run_timeout=${TEMPEST_TIMEOUT:-3600}
build_timeout=${TEMPEST_BUILD_TIMEOUT:-120}
storage_protocol=${TEMPEST_STORAGE_PROTOCOL:-local}
vendor_name=${TEMPEST_VENDOR_NAME:-hearth}
backend_names=${TEMPEST_BACKEND_NAMES:-file}
if [[ $backend_names == *,* ]]; then multi_backend=True; else multi_backend=False; fi

log=""
die() {
    echo "tempest/run.sh: $*" >&2
    if [[ -n $log && -s $log ]]; then
        echo "---- $log (last 60 lines) ----" >&2
        tail -n 60 "$log" >&2
    fi
    exit 1
}
usage() {
    sed -n '2,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    echo "(options: see the head of $0)" >&2
    exit 2
}

for v in run_timeout build_timeout; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a whole number of seconds, not '${!v}'"
done

# ---------------------------------------------------------------------------
# the venv (as scripts/setup-venv.sh)
# ---------------------------------------------------------------------------

setup_venv() {
    HEARTH_VENV=$venv HEARTH_PYTHON=$python HEARTH_VENV_REQUIREMENTS=$req \
        HEARTH_VENV_TOOLS="tempest stestr subunit2pyunit" "$repo/scripts/setup-venv.sh" >/dev/null
}

# ---------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------

region="" regex='^tempest\.api\.volume\.' exclude=$here/exclude.txt concurrency=2
workspace="" keep=0 enforce_scope=True
args=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --setup) setup_venv; echo "$venv"; exit 0 ;;
        --region) region=${2:?--region needs a value}; shift 2 ;;
        --regex) regex=${2:?--regex needs a value}; shift 2 ;;
        --exclude-list) exclude=${2?--exclude-list needs a value}; shift 2 ;;
        --concurrency) concurrency=${2:?--concurrency needs a value}; shift 2 ;;
        --workspace) workspace=${2:?--workspace needs a value}; shift 2 ;;
        --keep) keep=1; shift ;;
        --no-cinder-enforce-scope) enforce_scope=False; shift ;;
        -h | --help) usage ;;
        --) shift; args+=("$@"); break ;;
        -*) echo "tempest/run.sh: unknown option $1" >&2; usage ;;
        *) args+=("$1"); shift ;;
    esac
done
[[ ${#args[@]} -eq 2 ]] || usage
ks_dir=${args[0]}
hearth_url=${args[1]%/}
[[ $concurrency =~ ^[1-9][0-9]*$ ]] || die "--concurrency must be a positive number"
[[ -f $ks_dir/identity.json ]] || die "no $ks_dir/identity.json: start Keystone with scripts/identity/keystone.sh start $ks_dir"
ks_dir=$(cd "$ks_dir" && pwd)
[[ $hearth_url =~ ^http://127\.0\.0\.1:([0-9]+)$ ]] ||
    die "HEARTH_URL must be http://127.0.0.1:PORT (loopback, no path), not '$hearth_url'"
hearth_port=${BASH_REMATCH[1]}
if [[ -n $exclude ]]; then
    [[ -f $exclude ]] || die "no exclude list $exclude"
    exclude=$(cd "$(dirname "$exclude")" && pwd)/$(basename "$exclude")
fi
[[ -x $ks_venv/bin/python ]] || die "no keystone venv at $ks_venv (scripts/identity/keystone.sh setup)"

setup_venv

# ---------------------------------------------------------------------------
# the workspace, the catalog, tempest.conf
# ---------------------------------------------------------------------------

if [[ -n $workspace ]]; then
    [[ ! -e $workspace ]] || die "--workspace $workspace already exists"
    mkdir -p "$workspace"
    workspace=$(cd "$workspace" && pwd)
    keep=1
else
    workspace=$(mktemp -d "${TMPDIR:-/tmp}/hearth-tempest.XXXXXX")
fi
ws=$workspace/tempest
results=$workspace/results
mkdir -p "$workspace/home" "$results"

own_region=""
finish() {
    local rc=$?
    if [[ -n $own_region ]]; then
        "$ks_venv/bin/python" "$repo/scripts/identity/catalog.py" "$ks_dir" remove --region "$own_region" >/dev/null ||
            echo "tempest/run.sh: could not remove catalog region $own_region" >&2
    fi
    if [[ $rc -eq 0 && $keep -eq 0 ]]; then
        rm -rf "$workspace"
    else
        echo "tempest/run.sh: workspace kept: $workspace (tempest.conf, logs/tempest.log, results/)" >&2
    fi
    exit "$rc"
}
trap finish EXIT

# Is hearthd there? GET / answers without authentication.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$hearth_url/" || true)
[[ $code == 300 || $code == 200 ]] || die "hearthd at $hearth_url/ answered '$code' (expected 300): is it running?"

if [[ -z $region ]]; then
    region=tempest-$hearth_port
    own_region=$region
    "$ks_venv/bin/python" "$repo/scripts/identity/catalog.py" "$ks_dir" add --region "$region" \
        --url "$hearth_url/v3/%(project_id)s" >/dev/null || die "catalog.py add --region $region failed"
fi

export HOME=$workspace/home
export TEMPEST_CONFIG_DIR=$ws/etc TEMPEST_CONFIG=tempest.conf
log=$results/tempest-init.log
"$venv/bin/tempest" init --workspace-path "$workspace/workspace.yaml" "$ws" >"$log" 2>&1 ||
    die "tempest init $ws failed"

# [key] = value from identity.json
ident() { "$venv/bin/python" -c 'import json, sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    d = d[k]
print(d)' "$ks_dir/identity.json" "$1"; }
auth_url=$(ident auth_url)
admin_user=$(ident users.admin.name)
admin_password=$(ident users.admin.password)
admin_project=$(ident projects.admin.name)
identity_region=$(ident region)

# Each option below is checked against tempest/config.py (tempest 47.0.0).
write_conf() {
    cat <<EOF
# Written by tests/tempest/run.sh for hearthd at $hearth_url (region $region).
[DEFAULT]
debug = True
use_stderr = False
log_dir = $ws/logs
log_file = tempest.log

[oslo_concurrency]
lock_path = $ws/tempest_lock

[auth]
# tempest makes a project and users per test class, with the Keystone admin
use_dynamic_credentials = True
admin_username = $admin_user
admin_password = $admin_password
admin_project_name = $admin_project
admin_domain_name = Default
# Keystone 30 enforces scope: identity administration needs a system-scoped token
admin_system = all
create_isolated_networks = False

[identity]
uri_v3 = $auth_url
auth_version = v3
region = $identity_region
v3_endpoint_type = public

[identity-feature-enabled]
api_v2 = False
api_v3 = True

[enforce_scope]
keystone = True
# True: reads go through a project-reader user (see --no-cinder-enforce-scope)
cinder = $enforce_scope

[service_available]
cinder = True
nova = False
# There is no Glance. True only so that tempest 47 can set up VolumesGetTest and
# VolumesNegativeTest, whose setup_clients take an image client unconditionally (the
# class fails with AttributeError otherwise); every test that calls Glance is in
# tests/tempest/exclude.txt.
glance = True
# No Neutron: the classes with create_default_network (VolumesActionsTest,
# VolumesSnapshotTestJSON, VolumesBackupsTest, ...) are skipped by tempest.
neutron = False
swift = False
horizon = False

[volume]
catalog_type = block-storage
endpoint_type = publicURL
region = $region
min_microversion = 3.0
max_microversion = 3.67
build_interval = 1
build_timeout = $build_timeout
volume_size = 1
volume_size_extend = 1
# what hearthd's pools report (scheduler-stats/get_pools capabilities)
storage_protocol = $storage_protocol
vendor_name = $vendor_name
backend_names = $backend_names

[compute-feature-enabled]
# hearth attaches one volume to several hosts (multiattach types); tempest's volume
# tests read this flag for the retype of multiattach volumes
volume_multiattach = True

[volume-feature-enabled]
# True when hearthd has two or more backends (TEMPEST_BACKEND_NAMES)
multi_backend = $multi_backend
# backups (posix repository under hearthd's data dir)
backup = True
snapshot = True
clone = True
# no manage/unmanage of existing volumes or snapshots, no replication
manage_volume = False
manage_snapshot = False
replication = False
# every extension (tempest then expects the "Hosts" extension in GET /extensions)
api_extensions = all
# online extend (3.42); the tests that use it need Nova, which is not available
extend_attached_volume = True
extend_attached_encrypted_volume = False
extend_volume_with_snapshot = True
# In tempest.api.volume this only gates test_volume_from_snapshot_cascade_delete
# (delete a volume with its snapshot while a volume made from that snapshot exists),
# which hearth supports: its volumes do not depend on the snapshot they came from.
enable_volume_image_dep_tests = True
EOF
}
write_conf >"$ws/etc/tempest.conf"
chmod 600 "$ws/etc/tempest.conf"
cp "$ws/etc/tempest.conf" "$results/tempest.conf"

# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------

cd "$ws"
run_args=(run --config-file "$ws/etc/tempest.conf" --regex "$regex" --concurrency "$concurrency")
[[ -z $exclude ]] || run_args+=(--exclude-list "$exclude")
echo "tempest/run.sh: tempest ${run_args[*]} (hearthd $hearth_url, region $region, Keystone $auth_url)"
t0=$(date +%s.%N)
rc=0
timeout --kill-after=30 "$run_timeout" "$venv/bin/tempest" "${run_args[@]}" >"$results/tempest-run.log" 2>&1 || rc=$?
wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
tail -n 25 "$results/tempest-run.log"
[[ $rc -ne 124 && $rc -ne 137 ]] || echo "tempest/run.sh: tempest run was stopped after ${run_timeout}s (TEMPEST_TIMEOUT)" >&2

# The results of the last run, from stestr's repository.
src=0
"$venv/bin/stestr" last --subunit >"$results/tempest.subunit" 2>"$results/stestr-last.err" || src=$?
[[ $src -eq 0 || -s $results/tempest.subunit ]] ||
    { log=$results/stestr-last.err; die "no results: stestr last failed (tempest run exited $rc)"; }
cp "$ws/logs/tempest.log" "$results/" 2>/dev/null || true
src=0
"$venv/bin/python" "$here/summarize.py" "$results/tempest.subunit" --out "$results" --wall "$wall" \
    --expected-skips "$here/skips.txt" || src=$?
if [[ $rc -eq 0 && $src -ne 0 ]]; then rc=$src; fi
if [[ $rc -ne 0 && $src -eq 0 ]]; then
    echo "tempest/run.sh: tempest run exited $rc although no test failed (see $results/tempest-run.log)" >&2
fi
[[ $rc -eq 0 ]] || exit 1
