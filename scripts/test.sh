#!/usr/bin/env bash
# hearth's test command: every tier, installing what it needs (apt, pip).
#
#   scripts/test.sh            # all tiers
#   scripts/test.sh lint unit  # only some: lint unit fuzz clients tempest vm
#
# Tiers:
#   lint     every .nix file parses (nix-instantiate --parse, Debian's nix-bin),
#            cargo fmt --check, cargo clippy -D warnings
#   unit     cargo test: unit tests, API tests against the real daemon over HTTP,
#            scheduler and crash tests (file backend, temp dirs, ephemeral ports);
#            every exchange of the API tests is then held to docs/openapi.json; then
#            the tests of hearthd again with the store in PostgreSQL (Debian's
#            postgresql, a server of the tier's own: scripts/postgres/server.sh)
#   fuzz     every libFuzzer target in fuzz/ for a few seconds each (scripts/fuzz.sh,
#            stable toolchain); the kept corpus and regressions run in the unit tier too
#   clients  the real openstack and cinder CLIs and openstacksdk (pip, in .venv)
#            driving hearthd, with the store in SQLite then in PostgreSQL; a real Keystone (scripts/identity/keystone.sh, pip, in
#            .venv-keystone) runs for the tier, for the tests of auth_strategy keystone;
#            then the API contract: docs/openapi.json against a real lifecycle's
#            responses and schemathesis against hearthd (tests/openapi/run.sh)
#   tempest  tempest's volume API tests (pip, in .venv-tempest) against hearthd with
#            keystone auth and a Keystone of its own (tests/tempest/run-hearth.sh)
#   vm       a QEMU/Debian guest with real LVM, LIO and open-iscsi (vm-tests/): the
#            scenario tests run there against the lvm backend, thin then thick (what
#            depends on LVM; see vm-tests/guest/lvm-tier.sh), and
#            api_lio against real configfs; reliability's kill -9 campaign on thin LVM
#            with LIO exports; api_backups' S3 scenario against a Swift
#            started here for the tier (scripts/objectstore/swift.sh, reached from the
#            guest through vm-tests/run.sh --host-port); then two guests (vm-tests/two-guests.sh):
#            hearthd with the LIO export on one, os-brick attaching over iSCSI on the
#            other (vm-tests/scenarios/, shared with the NixOS tests); then a fleet
#            (vm-tests/fleet.sh): two storage guests sharing a PostgreSQL on the host,
#            a compute guest attaching each node's volumes asked of the other's API
#
# The last line is "N passed, N failed" over the tiers; the exit code is non-zero
# when any tier failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
tiers=("$@")
[[ ${#tiers[@]} -gt 0 ]] || tiers=(lint unit fuzz clients tempest vm)
passed=0
failed=0
failures=()

say() { printf '\n=== %s ===\n' "$*"; }

# Free GiB on the file system of $1.
free_gib() { df -P -BG "$1" | awk 'NR == 2 { print $4 + 0 }'; }

# A full run builds about 15 GiB under target/ and the tests make volumes of several
# GiB in temp dirs: on a disk that runs low, tests that measure free space (the
# scheduler's capacity) fail for a reason that is not theirs. Say so before a tier.
check_space() {
    local path avail
    for path in "$repo" "${TMPDIR:-/tmp}"; do
        avail=$(free_gib "$path")
        if [[ $avail -lt 25 ]]; then
            echo "test.sh: WARNING: only $avail GiB free on $path; a full run wants about 25: the capacity tests may fail for want of space" >&2
        fi
    done
}

ensure_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "test.sh: cargo is missing; install Rust (rustup) first" >&2
        exit 2
    fi
    # SQLite is bundled (built with cc) and jemalloc is built with make: make sure a
    # C toolchain exists.
    if ! command -v cc >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q build-essential
    fi
}

tier_lint() {
    # Every .nix file (flake.nix, nixos/, vm-tests/nixos/) must parse. Only parse: these
    # machines have no binary cache and no network, so nothing is built or evaluated.
    # nix-instantiate comes from Debian's nix-bin; a scratch state directory and an
    # empty build-users-group let it run without root and without the nixbld group.
    apt_install nix-instantiate nix-bin || return 1
    if ! command -v nix-instantiate >/dev/null 2>&1; then
        echo "test.sh: nix-instantiate (Debian's nix-bin) is missing: cannot parse the .nix files" >&2
        return 1
    fi
    local nix_state f nix_failed=0 nix_count=0
    nix_state=$(mktemp -d)
    # Tracked files, and new ones not yet committed (not the ignored ones).
    while IFS= read -r f; do
        nix_count=$((nix_count + 1))
        if ! NIX_STATE_DIR=$nix_state NIX_CONFIG='build-users-group =' \
            nix-instantiate --parse "$f" >/dev/null; then
            echo "test.sh: $f does not parse (nix-instantiate --parse)" >&2
            nix_failed=1
        fi
    done < <(git ls-files --cached --others --exclude-standard -- '*.nix')
    rm -rf "$nix_state"
    echo "nix-instantiate --parse: $nix_count .nix files, $([[ $nix_failed -eq 0 ]] && echo ok || echo FAILED)"
    [[ $nix_failed -eq 0 ]] &&
        cargo fmt --all -- --check &&
        cargo clippy --all-targets --locked -- -D warnings
}

apt_install() {
    # Install Debian packages whose commands are missing: apt_install CMD PKG [CMD PKG...]
    local missing=()
    while [[ $# -gt 0 ]]; do
        command -v "$1" >/dev/null 2>&1 || missing+=("$2")
        shift 2
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $(id -u) -ne 0 ]]; then
        echo "test.sh: missing ${missing[*]} (run as root to install them)"
        return 0
    fi
    apt-get update -q >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

tier_unit() {
    # mkfs.xfs: the reflink tests mount an XFS image on a loop device.
    # memcached: Swift, the S3 backup target's tests' store, answers ~3x faster with it.
    # openssl: tests/postgres.rs makes a CA and certificates for TLS to PostgreSQL.
    apt_install mkfs.xfs xfsprogs memcached memcached openssl openssl || return 1
    # Every exchange of the API tests is recorded (tests/common/mod.rs) and held to
    # docs/openapi.json afterwards (tests/openapi/check-recorded.py, in .venv-openapi).
    local venv rec rc=0
    venv=$(scripts/openapi/setup-venv.sh) || return 1
    rec=$(mktemp -d "${TMPDIR:-/tmp}/hearth-exchanges.XXXXXX")
    HEARTH_RECORD_RESPONSES=$rec cargo test --locked || rc=1
    "$venv/bin/python" tests/openapi/check-recorded.py "$rec" || rc=1
    rm -rf "$rec"
    # The same tests of hearthd again with the store in PostgreSQL (a server of our
    # own, scripts/postgres/server.sh; a database per hearthd); the fleet tests run
    # their own servers.
    with_postgres cargo test --locked --tests || rc=1
    return $rc
}

# Run "$@" with HEARTH_TEST_POSTGRES naming a PostgreSQL server started for it.
with_postgres() {
    local pg url rc=0
    pg=$(mktemp -d "${TMPDIR:-/tmp}/hearth-postgres.XXXXXX")
    url=$(scripts/postgres/server.sh start "$pg" "$(free_port)") || { rm -rf "$pg"; return 1; }
    echo "test.sh: PostgreSQL at $url for: $*"
    HEARTH_TEST_POSTGRES=$url "$@" || rc=1
    scripts/postgres/server.sh stop "$pg" || rc=1
    rm -rf "$pg"
    return $rc
}

# A free TCP port on loopback.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

tier_fuzz() {
    # libfuzzer-sys builds libFuzzer with the C++ compiler.
    apt_install g++ g++ || return 1
    scripts/fuzz.sh --quick --seconds "${HEARTH_FUZZ_SECONDS:-10}"
}

tier_clients() {
    local venv ks rc=0
    venv=$(scripts/setup-venv.sh) || return 1
    cargo build --locked --bin hearthd || return 1
    # One Keystone for the tier; each keystone test's hearthd has its own catalog region.
    ks=$(mktemp -d "${TMPDIR:-/tmp}/hearth-keystone.XXXXXX")
    scripts/identity/keystone.sh start "$ks" || { rm -rf "$ks"; return 1; }
    # Two at a time (pytest-xdist): each test has its own hearthd, port, HOME and tmp dir.
    HEARTH_KEYSTONE_DIR=$ks HEARTHD="$repo/target/debug/hearthd" "$venv/bin/pytest" -q -n 2 tests/clients || rc=1
    # Again with the store in PostgreSQL (a database per hearthd), but for the tests
    # of configuration, authentication and HTTPS, which the store does not touch (to
    # keep the run within CI's time; the unit tier runs every hearthd test on both).
    with_postgres env HEARTH_KEYSTONE_DIR="$ks" HEARTHD="$repo/target/debug/hearthd" \
        "$venv/bin/pytest" -q -n 2 tests/clients --ignore=tests/clients/test_config.py \
        --ignore=tests/clients/test_http_basic.py --ignore=tests/clients/test_keystone.py \
        --ignore=tests/clients/test_tls.py || rc=1
    scripts/identity/keystone.sh stop "$ks" || rc=1
    [[ $rc -ne 0 ]] || rm -rf "$ks"
    # The API contract: docs/openapi.json held to a real lifecycle's responses, and
    # schemathesis against hearthd (pip, in .venv-openapi).
    tests/openapi/run.sh --hearthd "$repo/target/debug/hearthd" || rc=1
    return $rc
}

tier_tempest() {
    cargo build --locked --bin hearthd || return 1
    tests/tempest/run-hearth.sh --hearthd "$repo/target/debug/hearthd"
}

# The Swift of the VM tier (its state directory), stopped on the way out.
vm_swift=''
stop_vm_swift() {
    [[ -n $vm_swift ]] || return 0
    scripts/objectstore/swift.sh stop "$vm_swift" || return 1
    rm -rf "$vm_swift" "$vm_swift.json"
    vm_swift=''
}

tier_vm() {
    # The scenario tests, built here, run in the guest against real LVM.
    local bins
    bins=$(cargo test --locked --no-run --message-format=json \
        --test api_volumes --test api_snapshots --test api_attach --test api_lio --test lvm \
        --test api_backups --test reliability |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])') || return 1
    [[ -n $bins ]] || { echo "no test binaries were built"; return 1; }
    cargo build --locked --bin hearthd || return 1
    # api_backups' S3 scenario: Swift cannot run in the guest (it needs the host's
    # Python), so one runs here, plain HTTP on 127.0.0.1:PORT, and the guest reaches
    # it at 10.0.2.100:PORT (run.sh --host-port; HEARTH_VM_HOST_ADDR in the guest).
    # Its objectstore.json, with that endpoint, goes to the guest through the share
    # (under target/); each test makes its own bucket in it (tests/common/swift.rs).
    local port
    vm_swift=$(mktemp -d "$repo/target/vm-swift.XXXXXX") || return 1
    trap stop_vm_swift EXIT
    SWIFT_TLS=0 SWIFT_WATCH_PID=$$ scripts/objectstore/swift.sh start "$vm_swift" || { stop_vm_swift; return 1; }
    port=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["port"])' "$vm_swift/objectstore.json") &&
        sed "s|127\.0\.0\.1:$port|10.0.2.100:$port|g" "$vm_swift/objectstore.json" >"$vm_swift.json" ||
        { stop_vm_swift; return 1; }
    local rc=0
    # One guest, thin then thick: two at once were no faster (one guest already keeps
    # the 2 cores ~80% busy) and starved the host's Swift.
    # shellcheck disable=SC2086 # one argument per binary
    vm-tests/run.sh --disk-size 24G --second-disk --timeout 3600 --host-port "$port" \
        -e HEARTH_TEST_OBJECTSTORE="$vm_swift.json" -- vm-tests/guest/lvm-tier.sh $bins || rc=1
    stop_vm_swift || rc=1
    trap - EXIT
    # Two guests: hearthd with the LIO export on one, os-brick over iSCSI on the other.
    vm-tests/two-guests.sh || rc=1
    # A fleet: two storage guests on one PostgreSQL (started here), each node's volumes
    # made and exported through the other's API, attached by a compute guest.
    vm-tests/fleet.sh || rc=1
    return $rc
}

ensure_rust
for t in "${tiers[@]}"; do
    case $t in
        lint | unit | fuzz | clients | tempest | vm) ;;
        *) echo "test.sh: unknown tier '$t' (lint unit fuzz clients tempest vm)" >&2; exit 2 ;;
    esac
    say "tier $t ($(free_gib "${TMPDIR:-/tmp}") GiB free in ${TMPDIR:-/tmp})"
    check_space
    start=$SECONDS
    if "tier_$t"; then
        passed=$((passed + 1))
        echo "--- tier $t passed in $((SECONDS - start)) s"
    else
        failed=$((failed + 1))
        failures+=("$t")
        echo "--- tier $t FAILED after $((SECONDS - start)) s"
    fi
done

say "summary"
[[ $failed -eq 0 ]] || echo "failed tiers: ${failures[*]}"
echo "tiers: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
