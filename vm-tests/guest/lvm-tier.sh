#!/bin/sh
# lvm-tier.sh: hearth's VM tier, run inside the guest by scripts/test.sh:
#   vm-tests/run.sh --disk-size 16G --second-disk -- vm-tests/guest/lvm-tier.sh TEST-BINARY...
#
# 1. smoke.sh: the guest can do LVM, configfs/LIO and iSCSI at all;
# 2. volume groups: hearth-volumes on /dev/sdb, hearth-second on /dev/sdc;
# 3. for lvm_type thin, then thick: every given test binary (hearth's
#    scenario tests, built on the host) runs against hearthd on that volume group, the
#    LVM-only scenarios (ignored elsewhere) included. What does not depend on LVM runs
#    once, or not here: api_volumes' lifecycle on thin; api_lio and api_attach
#    (exports) on thick;
#    api_backups runs only its tests that read, snapshot or reconcile LVs (its S3
#    scenario and the crash on thin), since the rest (policy, export/import, corruption,
#    cancel, reconcile of records) ran on the host's file backend in the unit tier.
#    reliability's kill -9 campaign runs on thin, with LIO exports on real configfs.
#    api_backups' S3 scenario needs HEARTH_TEST_OBJECTSTORE (the host's Swift, see
#    scripts/test.sh tier_vm); it fails without it.
# Exits non-zero when anything failed; prints a summary line per run.
#
# To run less while working on one test (run.sh -e):
#   HEARTH_VM_LVM_TYPES   the provisioning types, in order (default "thin thick")
#   HEARTH_VM_TEST_ARGS   more arguments for every test binary, split on spaces
#                         (a name filter, say: "full_incremental")
set -u
here=$(cd "$(dirname "$0")" && pwd)

echo "== smoke"
sh "$here/smoke.sh" || { echo "smoke failed"; exit 1; }

echo "== volume groups"
pvcreate -ff -y /dev/sdb /dev/sdc >/dev/null
vgcreate hearth-volumes /dev/sdb >/dev/null
vgcreate hearth-second /dev/sdc >/dev/null
vgs

failed=0
passed=0
for lvm_type in ${HEARTH_VM_LVM_TYPES:-thin thick}; do
    cfg=/tmp/backends-$lvm_type.toml
    cat >"$cfg" <<TOML
[backends.lvm-1]
driver = "lvm"
volume_backend_name = "lvm"
volume_group = "hearth-volumes"
lvm_type = "$lvm_type"
volume_clear = "zero"
volume_clear_size = 16
TOML
    export HEARTH_TEST_BACKENDS="$cfg" HEARTH_TEST_VG=hearth-volumes HEARTH_TEST_VG2=hearth-second
    export HEARTH_TEST_LIGHT=1 CI=${CI:-}
    for bin in "$@"; do
        name=$(basename "$bin" | sed 's/-[0-9a-f]*$//')
        # What this binary runs on this type: "skip" for nothing, else test filters.
        sel=''
        case "$name/$lvm_type" in
            api_volumes/thick | api_lio/thin | api_attach/thin) sel=skip ;;
            # The rest of api_volumes (views, pagination, microversions, request ids)
            # is the API's, run in the unit tier.
            api_volumes/thin) sel='volume_lifecycle' ;;
            api_backups/thin)
                # full_incremental_restore_and_delete names its _on_s3 twin too.
                # Its SIGKILL test runs on the host: reliability's kill -9 campaign
                # kills amid backups, restores and deletes on thin LVM here.
                sel='full_incremental_restore_and_delete snapshots_and_in_use_volumes' ;;
            api_backups/thick)
                sel='full_incremental_restore_and_delete snapshots_and_in_use_volumes --skip on_s3' ;;
            api_snapshots/thick) sel='--skip snapshot_rules_for_in_use_volumes_and_bad_requests' ;;
            # The kill -9 campaign on LVM with LIO exports (its fault-injection tests
            # are the file backend's, run in the unit tier).
            reliability/thin) sel='fifty_sigkills_in_a_mixed_workload_lose_nothing' ;;
            reliability/thick) sel=skip ;;
        esac
        [ "$sel" != skip ] || continue
        # HEARTH_VM_TEST_ARGS, when given, chooses instead.
        [ -z "${HEARTH_VM_TEST_ARGS:-}" ] || sel=''
        echo "== $lvm_type: $name"
        t0=$(cut -d' ' -f1 /proc/uptime)
        # One test at a time: every test runs its own hearthd on the same groups, and
        # each reconciles the groups at start-up.
        # A binary that hangs fails alone (after 30 minutes; api_backups, the longest,
        # took 19 minutes on thin in 2026-12-04's CI with all its tests, and over 20
        # with 4 of them while a second guest shared the cores) instead of eating the
        # guest's hour. api_backups prints its steps as they happen.
        show=''
        case "$name ${HEARTH_VM_TEST_ARGS:-}" in
            *--nocapture*) ;;
            api_backups* | reliability*) show=--nocapture ;;
        esac
        # shellcheck disable=SC2086 # $sel and HEARTH_VM_TEST_ARGS: one argument per word
        if timeout --kill-after=30 1800 "$bin" --include-ignored --test-threads=1 $show $sel ${HEARTH_VM_TEST_ARGS:-} 2>&1; then
            passed=$((passed + 1))
            echo "== $lvm_type: $name passed in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.0f", b-a}') s"
        else
            rc=$?
            failed=$((failed + 1))
            echo "!! $lvm_type: $name FAILED (exit $rc; 124: it ran out of its 30 minutes)"
            lvs -a hearth-volumes 2>&1 | head -40
        fi
    done
    # Start the next provisioning type from an empty group.
    lvremove -f -y hearth-volumes >/dev/null 2>&1
    lvremove -f -y hearth-second >/dev/null 2>&1
done
echo "lvm tier: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
