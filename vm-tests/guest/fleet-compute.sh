#!/bin/bash
# fleet-compute.sh: the compute guest of the fleet scenario (vm-tests/fleet.sh boots
# it with --role compute --ip 169.254.10.2/16 on one segment with two storage guests).
#
#   fleet-compute.sh RENDEZVOUS-DIR
#
# The storage guests share one PostgreSQL store: storage-a (169.254.10.1, zone
# zone-a) serves its agent in RENDEZVOUS-DIR/a, storage-b (169.254.10.4, zone-b) in
# RENDEZVOUS-DIR/b. With vm-tests/guest/iscsi-compute.sh (os-brick, iscsid,
# multipathd as in the two-guest scenario), twice:
# 1. through storage-b's API, volumes in zone-a, which only storage-a's pool is in:
#    fleet, attach, legacy against storage-a's agent: each volume is placed on
#    storage-a, its LV is there, its export (attachment update, then
#    os-initialize_connection) is made by storage-a's LIO with storage-a's portal,
#    and the data written over iSCSI is read back from storage-a's LV;
# 2. the other way round: through storage-a's API, volumes in zone-b: fleet, attach
#    against storage-b's agent.
# Then writes DIR/a/done and DIR/b/done, which end both storage agents (each node's
# API serves both runs). Exit 0 only when both passed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
rdv=${1:?usage: fleet-compute.sh RENDEZVOUS-DIR}
say() { echo "[compute] $(date +%H:%M:%S) $*"; }

rc=0
say "through storage-b's API, volumes made and exported by storage-a"
"$here/iscsi-compute.sh" "$rdv/a" --endpoint http://169.254.10.4:8776/v3 \
    --availability-zone zone-a --expect-host storage-a --only fleet,attach,legacy --leave-agent || rc=1
say "through storage-a's API, volumes made and exported by storage-b"
"$here/iscsi-compute.sh" "$rdv/b" --endpoint http://169.254.10.1:8776/v3 \
    --availability-zone zone-b --expect-host storage-b --only fleet,attach --leave-agent || rc=1
touch "$rdv/a/done" "$rdv/b/done"
say "exit $rc"
exit $rc
