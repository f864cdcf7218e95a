"""Volume transfers with the real clients: the openstack CLI's `volume transfer
request create/list/show/accept/delete` (openstacksdk underneath: `/volume-transfers`
at 3.55) and the cinder CLI's `transfer-create/list/show/accept/delete` (at the
server's newest microversion, and at 3.0 on `/os-volume-transfer`).

hearthd runs noauth, where the URL names the project: the accepter is the same CLIs
pointed at an endpoint with another project id (`Clients.as_project`). Every project
is an admin there (no `admin_projects`), so policy is not what these tests check (the
API tests in tests/api_transfers.rs do that); the clients' requests and the answers
they need are.
"""

from __future__ import annotations

from support import PROJECT_ID, parse_kv, parse_table, wait_for

OTHER_PROJECT = "0a1b2c3d4e5f40718293a4b5c6d7e8f9"


def _volume_status(clients, ref) -> str:
    return clients.openstack_json("volume", "show", ref)["status"]


def _os_create_volume(clients, name: str) -> str:
    vid = clients.openstack_json("volume", "create", "--size", "1", name)["id"]
    wait_for(lambda: _volume_status(clients, vid), lambda s: s == "available",
             f"{name} to become available", bad=lambda s: s.startswith("error"))
    return vid


def _owner(clients, vid) -> str:
    return parse_kv(clients.cinder("show", vid).stdout)["os-vol-tenant-attr:tenant_id"]


def _in_use(clients, project) -> dict[str, int]:
    rows = parse_table(clients.cinder("quota-usage", project).stdout)
    return {r["Type"]: int(r["In_use"]) for r in rows if r["Type"] in ("volumes", "gigabytes", "snapshots")}


def test_openstack_volume_transfer_requests(clients):
    other = clients.as_project(OTHER_PROJECT, user="alt")
    vid = _os_create_volume(clients, "tv1")

    # --- create: the auth key is in this answer only -----------------------------
    created = clients.openstack_json("volume", "transfer", "request", "create", "--name", "tr1", "tv1")
    assert created["name"] == "tr1" and created["volume_id"] == vid, created
    assert created["auth_key"] and created["created_at"], created
    tid, key = created["id"], created["auth_key"]
    assert _volume_status(clients, vid) == "awaiting-transfer"

    # --- list, show by name and by id ---------------------------------------------
    listed = clients.openstack_json("volume", "transfer", "request", "list")
    assert [(t["ID"], t["Name"], t["Volume"]) for t in listed] == [(tid, "tr1", vid)], listed
    for ref in ("tr1", tid):
        shown = clients.openstack_json("volume", "transfer", "request", "show", ref)
        assert (shown["id"], shown["name"], shown["volume_id"]) == (tid, "tr1", vid), shown
        assert "auth_key" not in shown or not shown["auth_key"], shown

    # --- accept from the other project: a wrong key first ------------------------
    res = other.openstack("volume", "transfer", "request", "accept", "--auth-key", "wrong", tid,
                          expect_fail=True)
    assert "Invalid auth key" in res.stderr, res.report("the refusal does not say why")
    accepted = other.openstack_json("volume", "transfer", "request", "accept", "--auth-key", key, tid)
    assert (accepted["id"], accepted["name"], accepted["volume_id"]) == (tid, "tr1", vid), accepted
    assert _volume_status(other, vid) == "available"
    assert _owner(clients, vid) == OTHER_PROJECT
    assert other.openstack_json("volume", "list") == [
        {"ID": vid, "Name": "tv1", "Status": "available", "Size": 1, "Attached to": []}]
    assert clients.openstack_json("volume", "transfer", "request", "list") == []

    # --- delete: the offer is withdrawn and the volume is available again --------
    v2 = _os_create_volume(clients, "tv2")
    t2 = clients.openstack_json("volume", "transfer", "request", "create", "--name", "tr2", "tv2")["id"]
    assert _volume_status(clients, v2) == "awaiting-transfer"
    # By id: openstacksdk's delete_transfer does not look names up (with Cinder neither).
    clients.openstack("volume", "transfer", "request", "delete", t2)
    assert _volume_status(clients, v2) == "available"
    assert clients.openstack_json("volume", "transfer", "request", "list") == []

    # --- --no-snapshots (3.55): the snapshot stays ---------------------------------
    snap = clients.openstack_json("volume", "snapshot", "create", "--volume", "tv2", "s2")["id"]
    wait_for(lambda: clients.openstack_json("volume", "snapshot", "show", snap)["status"],
             lambda s: s == "available", "s2 to become available", bad=lambda s: s.startswith("error"))
    created = clients.openstack_json("--os-volume-api-version", "3.55", "volume", "transfer", "request",
                                     "create", "--no-snapshots", "tv2")
    other.openstack("volume", "transfer", "request", "accept", "--auth-key", created["auth_key"],
                    created["id"])
    assert _owner(clients, v2) == OTHER_PROJECT
    assert clients.openstack_json("volume", "snapshot", "show", snap)["volume_id"] == v2
    assert _in_use(clients, PROJECT_ID) == {"volumes": 0, "gigabytes": 1, "snapshots": 1}
    assert _in_use(clients, OTHER_PROJECT) == {"volumes": 2, "gigabytes": 2, "snapshots": 0}


def test_cinder_transfers(clients):
    other = clients.as_project(OTHER_PROJECT, user="alt")
    clients.cinder("create", "--name", "cv1", "1")
    wait_for(lambda: parse_kv(clients.cinder("show", "cv1").stdout)["status"], lambda s: s == "available",
             "cv1 to become available", bad=lambda s: s.startswith("error"))
    vid = parse_kv(clients.cinder("show", "cv1").stdout)["id"]
    clients.cinder("snapshot-create", "--name", "cs1", "cv1")
    wait_for(lambda: parse_kv(clients.cinder("snapshot-show", "cs1").stdout)["status"],
             lambda s: s == "available", "cs1 to become available", bad=lambda s: s.startswith("error"))
    assert _in_use(clients, PROJECT_ID) == {"volumes": 1, "gigabytes": 2, "snapshots": 1}

    # --- create at the newest microversion (volume-transfers, 3.57 fields) -------
    created = parse_kv(clients.cinder("transfer-create", "--name", "ct1", "cv1").stdout)
    assert created["name"] == "ct1" and created["volume_id"] == vid, created
    assert created["source_project_id"] == PROJECT_ID, created
    assert created["accepted"] == "False" and created["no_snapshots"] == "False", created
    assert created["destination_project_id"] == "None", created
    tid, key = created["id"], created["auth_key"]
    assert parse_kv(clients.cinder("show", "cv1").stdout)["status"] == "awaiting-transfer"

    listed = parse_table(clients.cinder("transfer-list").stdout)
    assert [(r["ID"], r["Volume ID"], r["Name"]) for r in listed] == [(tid, vid, "ct1")], listed
    shown = parse_kv(clients.cinder("transfer-show", "ct1").stdout)
    assert shown["id"] == tid and "auth_key" not in shown, shown

    # --- accept from the other project: volume, snapshot and quota move ----------
    res = other.cinder("transfer-accept", tid, "not-the-key", expect_fail=True)
    assert any("Invalid auth key" in l for l in res.error_lines()), res.report("no reason given")
    accepted = parse_kv(other.cinder("transfer-accept", tid, key).stdout)
    assert (accepted["id"], accepted["name"], accepted["volume_id"]) == (tid, "ct1", vid), accepted
    vol = parse_kv(other.cinder("show", vid).stdout)
    assert vol["status"] == "available" and vol["user_id"] == "alt", vol
    assert vol["os-vol-tenant-attr:tenant_id"] == OTHER_PROJECT, vol
    assert _in_use(clients, PROJECT_ID) == {"volumes": 0, "gigabytes": 0, "snapshots": 0}
    assert _in_use(clients, OTHER_PROJECT) == {"volumes": 1, "gigabytes": 2, "snapshots": 1}
    assert parse_table(clients.cinder("transfer-list").stdout) == []

    # --- and back, through the original extension (3.0: os-volume-transfer) ------
    old = parse_kv(other.cinder("--os-volume-api-version", "3.0", "transfer-create", vid).stdout)
    assert set(old) == {"id", "name", "volume_id", "auth_key", "created_at"}, old
    clients.cinder("--os-volume-api-version", "3.0", "transfer-accept", old["id"], old["auth_key"])
    assert _owner(clients, vid) == PROJECT_ID
    assert _in_use(clients, PROJECT_ID) == {"volumes": 1, "gigabytes": 2, "snapshots": 1}

    # --- delete ----------------------------------------------------------------------
    clients.cinder("transfer-create", "--name", "ct2", "cv1")
    clients.cinder("transfer-delete", "ct2")
    assert parse_kv(clients.cinder("show", "cv1").stdout)["status"] == "available"
    assert parse_table(clients.cinder("transfer-list").stdout) == []
