#!/bin/bash
# iscsi-compute.sh: the compute guest of the two-guest iSCSI scenario
# (vm-tests/two-guests.sh boots it with --role compute --ip 169.254.10.2/16).
#
#   iscsi-compute.sh RENDEZVOUS-DIR [compute.py options, e.g. --only attach,extend]
#
# 1. loads dm_multipath, dm_round_robin, dm_service_time and scsi_dh_alua (the tables
#    multipathd builds for LIO disks name the service-time selector and the alua
#    handler; without them the map load fails with EINVAL),
#    writes /etc/multipath.conf and starts multipathd. find_multipaths strict:
#    only WWIDs os-brick adds (multipath -a, on a multipath attach) get a map, so
#    single-path attachments stay plain /dev/sdX as on a compute node without
#    multipath, and multipathd does not cut their iSCSI recovery timeout to
#    fast_io_fail_tmo (5 s);
# 2. starts iscsid and waits until iscsiadm reaches it;
# 3. runs vm-tests/scenarios/compute.py with /opt/hearth-venv's Python against
#    hearthd on the storage guest (http://169.254.10.1:8776/v3), talking to its
#    storage agent through RENDEZVOUS-DIR; exits with compute.py's exit code.
#    Options given after RENDEZVOUS-DIR come after this script's own, so an
#    --endpoint there wins (vm-tests/guest/fleet-compute.sh runs this twice, with
#    another node's API; steps 1 and 2 are done once per boot).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rdv=${1:?usage: iscsi-compute.sh RENDEZVOUS-DIR [compute.py options]}
shift
say() { echo "[compute] $(date +%H:%M:%S) $*"; }

if [ ! -e /run/hearth-compute-ready ]; then
    modprobe -a iscsi_tcp dm_multipath dm_round_robin dm_service_time scsi_dh_alua
    cat >/etc/multipath.conf <<'CONF'
defaults {
    user_friendly_names no
    find_multipaths strict
}
blacklist {
    device {
        vendor "QEMU"
        product ".*"
    }
}
CONF
    multipathd
    say "multipathd started"

    iscsid
    # Ready when iscsiadm can reach iscsid (21 = no sessions yet).
    for ((i = 0; ; i++)); do
        rc=0; iscsiadm -m session >/dev/null 2>&1 || rc=$?
        [ $rc = 0 ] || [ $rc = 21 ] && break
        [ $i -lt 200 ] || { say "iscsid did not come up"; exit 1; }
        sleep 0.1
    done
    say "iscsid up; initiator $(sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi)"
    touch /run/hearth-compute-ready
fi

rc=0
/opt/hearth-venv/bin/python -W ignore "$repo/vm-tests/scenarios/compute.py" --dir "$rdv" \
    --endpoint http://169.254.10.1:8776/v3 --vg hearth-volumes "$@" || rc=$?
if [ $rc != 0 ]; then
    say "sessions left:"; iscsiadm -m session 2>&1 || true
    multipath -ll 2>&1 | head -20 || true
fi
say "exit $rc"
exit $rc
