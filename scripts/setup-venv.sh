#!/usr/bin/env bash
# Create (or refresh) a pinned Python venv: by default the one with the OpenStack
# clients used by tests/clients/; scripts/identity/keystone.sh (Keystone) and
# tests/tempest/run.sh (tempest) use it for theirs. Idempotent: the requirements are
# installed only when the requirements file (or the Python interpreter) changed since
# the last successful install; one setup at a time per venv. Quiet on success; prints
# the venv path.
#
#   scripts/setup-venv.sh                  # venv at <repo>/.venv
#   HEARTH_VENV=/some/where scripts/setup-venv.sh
#   HEARTH_PYTHON=python3.11 scripts/setup-venv.sh   # interpreter to use
#   HEARTH_VENV_REQUIREMENTS=FILE          # requirements (default scripts/requirements-clients.txt)
#   HEARTH_VENV_TOOLS="a b"                # commands that must be in bin/ after the install
#   HEARTH_VENV_IMPORT="import x, y"       # Python that must run after the install
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${HEARTH_VENV:-$repo/.venv}
req=${HEARTH_VENV_REQUIREMENTS:-$repo/scripts/requirements-clients.txt}
tools=${HEARTH_VENV_TOOLS:-openstack cinder pytest}
import_check=${HEARTH_VENV_IMPORT:-}
python=${HEARTH_PYTHON:-python3}
stamp=$venv/.hearth-requirements.sha256
log=$(mktemp "${TMPDIR:-/tmp}/hearth-setup-venv.XXXXXX")
trap 'rm -f "$log"' EXIT

die() {
    echo "setup-venv: $*" >&2
    if [[ -s $log ]]; then
        echo "---- output ----" >&2
        tail -n 60 "$log" >&2
    fi
    exit 1
}

command -v "$python" >/dev/null 2>&1 || die "no $python on PATH"
[[ -f $req ]] || die "missing $req"

# One setup at a time per venv (two test runs starting together).
mkdir -p "$(dirname "$venv")"
if command -v flock >/dev/null 2>&1; then
    lockfile=${TMPDIR:-/tmp}/hearth-venv-$(printf %s "$venv" | sha256sum | cut -c1-16).lock
    exec 9>"$lockfile"
    flock 9
fi

# `python3 -m venv` needs ensurepip, which Debian ships separately.
if ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 || die "$python lacks venv/ensurepip and there is no apt-get"
    pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    {
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv "python$pyver-venv" ||
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
    } >>"$log" 2>&1 || die "apt-get install python3-venv failed"
    "$python" -c 'import venv, ensurepip' >/dev/null 2>&1 || die "$python still has no working venv"
fi

# (Re)create the venv when it is missing or its interpreter no longer runs
# (e.g. the base Python was replaced).
if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$venv"
    "$python" -m venv "$venv" >>"$log" 2>&1 || die "python -m venv $venv failed"
fi

want=$( { sha256sum "$req" | cut -d' ' -f1; "$venv/bin/python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)

if [[ $want != "$have" ]]; then
    rm -f "$stamp"
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        "$venv/bin/python" -m pip install -q -r "$req" >>"$log" 2>&1 ||
        die "pip install -r $req failed"
    for tool in $tools; do
        [[ -x $venv/bin/$tool ]] || die "$tool missing from $venv/bin after install"
    done
    if [[ -n $import_check ]]; then
        "$venv/bin/python" -c "$import_check" >>"$log" 2>&1 || die "'$import_check' fails in $venv"
    fi
    echo "$want" >"$stamp"
fi

echo "$venv"
