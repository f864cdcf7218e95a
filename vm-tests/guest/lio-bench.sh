#!/bin/sh
# lio-bench.sh: hearth's LIO export benchmark in the guest (figures for the README):
#   cargo bench --bench lio --no-run            # on the host; prints the binary
#   vm-tests/run.sh -- vm-tests/guest/lio-bench.sh target/release/deps/lio-<hash>
# targetcli needs a system D-Bus; start one when the guest has it.
set -eu
if command -v dbus-daemon >/dev/null 2>&1; then
    mkdir -p /run/dbus
    dbus-daemon --system --fork 2>/dev/null || true
fi
"$1" --bench
