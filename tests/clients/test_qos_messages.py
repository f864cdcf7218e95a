"""QoS specs and user messages with the openstack CLI (noauth, so an admin):
`volume qos create/set/unset/associate/disassociate/show/list/delete` and
`--os-volume-api-version 3.3 volume message list/show/delete`; and the cinder
CLI's `qos-*` and `message-*` commands."""

from __future__ import annotations

from support import parse_tables, wait_for

MV = ("--os-volume-api-version", "3.3")


def test_openstack_qos(clients):
    q = clients.openstack_json("volume", "qos", "create", "--consumer", "front-end",
                               "--property", "read_iops_sec=2000", "gold")
    assert q["name"] == "gold" and q["consumer"] == "front-end", q
    assert q["properties"] == {"read_iops_sec": "2000"}, q
    qid = q["id"]

    clients.openstack("volume", "qos", "set", "--property", "write_iops_sec=1000", "gold")
    shown = clients.openstack_json("volume", "qos", "show", "gold")
    assert shown["id"] == qid
    assert shown["properties"] == {"read_iops_sec": "2000", "write_iops_sec": "1000"}, shown

    clients.openstack("volume", "qos", "unset", "--property", "read_iops_sec", "gold")
    shown = clients.openstack_json("volume", "qos", "show", qid)
    assert shown["properties"] == {"write_iops_sec": "1000"}, shown

    t = clients.openstack_json("volume", "type", "create", "limited")
    clients.openstack("volume", "qos", "associate", "gold", "limited")
    shown = clients.openstack_json("volume", "qos", "show", "gold")
    assert shown["associations"] == ["limited"], shown
    listed = clients.openstack_json("volume", "qos", "list")
    assert [(x["Name"], x["Consumer"], x["Associations"]) for x in listed] == [("gold", "front-end", ["limited"])]

    # in use: refused, then forced
    r = clients.openstack("volume", "qos", "delete", "gold", expect_fail=True)
    assert "in use" in r.stderr, r.error_lines()
    clients.openstack("volume", "qos", "disassociate", "--volume-type", "limited", "gold")
    assert "associations" not in clients.openstack_json("volume", "qos", "show", "gold")
    clients.openstack("volume", "qos", "associate", "gold", t["id"])
    clients.openstack("volume", "qos", "disassociate", "--all", "gold")
    clients.openstack("volume", "qos", "associate", "gold", "limited")
    clients.openstack("volume", "qos", "delete", "--force", "gold")
    assert clients.openstack_json("volume", "qos", "list") == []

    # --no-property clears every key; the default consumer of the CLI is both
    clients.openstack("volume", "qos", "create", "--property", "a=1", "--property", "b=2", "silver")
    clients.openstack("volume", "qos", "set", "--no-property", "silver")
    shown = clients.openstack_json("volume", "qos", "show", "silver")
    assert (shown["properties"], shown["consumer"]) == ({}, "both"), shown
    clients.openstack("volume", "qos", "delete", "silver")


def _failed_volume(clients):
    clients.openstack("volume", "type", "create", "--property", "storage_protocol=carrier-pigeon", "bogus")
    v = clients.openstack_json("volume", "create", "--size", "1", "--type", "bogus", "doomed")
    wait_for(lambda: clients.openstack_json("volume", "show", v["id"]), lambda x: x["status"] == "error",
             "the volume to fail scheduling")
    return v["id"]


def test_openstack_messages(clients):
    vid = _failed_volume(clients)
    listed = clients.openstack_json(*MV, "volume", "message", "list")
    assert len(listed) == 1, listed
    m = listed[0]
    assert m["Resource UUID"] == vid and m["Resource Type"] == "VOLUME", m
    assert m["Event ID"] == "VOLUME_VOLUME_001_003", m
    assert m["User Message"] == "schedule allocate volume:Could not find any available weighted backend.", m
    assert m["Request ID"].startswith("req-") and m["Guaranteed Until"], m

    # openstacksdk 4.22 reads a shown message under "messages", where Cinder (and
    # hearth, which tempest holds to Cinder's schema) answer "message": the CLI finds
    # the message but prints its fields as None, as it does against Cinder.
    shown = clients.openstack_json(*MV, "volume", "message", "show", m["ID"])
    assert shown["ID"] == m["ID"], shown

    clients.openstack(*MV, "volume", "message", "delete", m["ID"])
    assert clients.openstack_json(*MV, "volume", "message", "list") == []
    clients.openstack(*MV, "volume", "message", "show", m["ID"], expect_fail=True)
    # the API needs 3.3
    clients.openstack("--os-volume-api-version", "3.2", "volume", "message", "list", expect_fail=True)


def test_cinder_qos_and_messages(clients):
    out = clients.cinder("qos-create", "bronze", "consumer=back-end", "total_iops_sec=50").stdout
    row = {r["Property"]: r["Value"] for r in parse_tables(out)[0]}
    assert row["name"] == "bronze" and row["consumer"] == "back-end", row
    qid = row["id"]
    clients.cinder("type-create", "slow")
    tid = clients.openstack_json("volume", "type", "show", "slow")["id"]
    clients.cinder("qos-associate", qid, tid)
    assoc = parse_tables(clients.cinder("qos-get-association", qid).stdout)[0]
    assert [a["Name"] for a in assoc] == ["slow"], assoc
    clients.cinder("qos-key", qid, "set", "read_bytes_sec=100")
    clients.cinder("qos-key", qid, "unset", "total_iops_sec")
    row = {r["Property"]: r["Value"] for r in parse_tables(clients.cinder("qos-show", qid).stdout)[0]}
    assert "read_bytes_sec" in row["specs"] and "total_iops_sec" not in row["specs"], row
    clients.cinder("qos-disassociate-all", qid)
    clients.cinder("qos-delete", qid)
    assert parse_tables(clients.cinder("qos-list").stdout) in ([], [[]])

    vid = _failed_volume(clients)
    msgs = parse_tables(clients.cinder("message-list").stdout)[0]
    assert [m["Resource UUID"] for m in msgs] == [vid], msgs
    mid = msgs[0]["ID"]
    row = {r["Property"]: r["Value"] for r in parse_tables(clients.cinder("message-show", mid).stdout)[0]}
    assert row["event_id"] == "VOLUME_VOLUME_001_003", row
    clients.cinder("message-delete", mid)
    assert parse_tables(clients.cinder("message-list").stdout) in ([], [[]])
