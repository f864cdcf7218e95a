"""Attach and detach through the clients, without Nova: the attachments API
(3.27+, os-complete 3.44, mode 3.54) with the cinder CLI, the openstack CLI
(all but `volume attachment create`, which looks the server up in Nova) and
openstacksdk, and the legacy os-* actions with openstacksdk.

The volume status follows its attachments as Cinder computes it (reserved →
attaching → in-use → available); connection_info is the file backend's
"local" export: {"driver_volume_type": "local", "device_path": <the volume's
file>, "access_mode": ...}, flat on attachments, under "data" from
os-initialize_connection. Reading and writing through it is in
test_os_brick_local.py and test_clone_data.py.
"""

from __future__ import annotations

import ast
import os

import pytest
from openstack import exceptions as sdk_exc

from support import (INSTANCE_UUID, parse_kv, parse_table, parse_tables, wait_for,
                     wait_volume_status)

MV = ("--os-volume-api-version", "3.54")
INSTANCE2 = "8a1b2c3d-2222-4333-8444-955566667777"
INITIATOR = "iqn.1994-05.com.redhat:abc"
# what the cinder CLI sends in attachment-update / attachment-create --connect
# (recorded): {host, initiator, ip, mountpoint, multipath, os_type, platform}
CONNECT = ("--initiator", INITIATOR, "--ip", "127.0.0.1", "--host", "myhost")


# --------------------------------------------------------------------------
# cinder CLI
# --------------------------------------------------------------------------


def _show(clients, ref) -> dict[str, str]:
    return parse_kv(clients.cinder("show", ref).stdout)


def _listish(value: str) -> list[str]:
    """cinder prints attached_servers / attachment_ids as a Python list."""
    return ast.literal_eval(value)


def _create_volume(clients, name, *extra) -> str:
    vid = parse_kv(clients.cinder("create", "--name", name, *extra, "1").stdout)["id"]
    wait_for(lambda: _show(clients, vid), lambda v: v["status"] == "available",
             f"{name} to become available", bad=lambda v: v["status"].startswith("error"))
    return vid


def _attachment_tables(res) -> tuple[dict[str, str], dict[str, str] | None]:
    """attachment-create/-update/-show print the attachment, then the
    connection_info as a second table when there is one."""
    tables = [{r["Property"]: r["Value"] for r in t} for t in parse_tables(res.stdout)]
    assert tables and len(tables) <= 2, res.report(f"expected 1 or 2 tables, got {len(tables)}")
    return tables[0], (tables[1] if len(tables) == 2 else None)


def _check_local_info(info, vid, res, mode="rw"):
    assert info is not None, res.report("no connection_info printed")
    assert info["driver_volume_type"] == "local", info
    assert info["volume_id"] == vid, info
    assert info["access_mode"] == mode, info
    path = info["device_path"]
    assert os.path.isabs(path) and vid in os.path.basename(path), info
    assert os.path.isfile(path), f"device_path {path} is not the volume's file"


def _http_error(res, code: int) -> None:
    assert any(f"(HTTP {code})" in l for l in res.error_lines()), \
        res.report(f"expected the client to report HTTP {code}")


def test_cinder_attachments(clients):
    vid = _create_volume(clients, "v2")

    # --- reserve: attachment-create without a connector ---------------------------------
    res = clients.cinder(*MV, "attachment-create", vid, INSTANCE_UUID)
    att, info = _attachment_tables(res)
    aid = att["id"]
    assert att["status"] == "reserved" and att["volume_id"] == vid, att
    assert att["instance"] == INSTANCE_UUID, att
    assert info is None, res.report("connection_info printed for a bare reservation")
    assert _show(clients, vid)["status"] == "reserved"

    # --- connect: attachment-update with a connector ------------------------------------
    res = clients.cinder(*MV, "attachment-update", *CONNECT, "--mountpoint", "/dev/vdb", aid)
    att, info = _attachment_tables(res)
    assert att["id"] == aid and att["status"] == "attaching", att
    _check_local_info(info, vid, res)
    assert _show(clients, vid)["status"] == "attaching"

    # --- complete ---------------------------------------------------------------------------
    clients.cinder(*MV, "attachment-complete", aid)
    vol = _show(clients, vid)
    assert vol["status"] == "in-use", vol
    assert _listish(vol["attachment_ids"]) == [aid], vol
    assert _listish(vol["attached_servers"]) == [INSTANCE_UUID], vol

    rows = parse_table(clients.cinder(*MV, "attachment-list").stdout)
    assert [(r["ID"], r["Volume ID"], r["Status"], r["Server ID"]) for r in rows] == \
        [(aid, vid, "attached", INSTANCE_UUID)], rows
    rows = parse_table(clients.cinder(*MV, "attachment-list", "--volume-id", vid).stdout)
    assert [r["ID"] for r in rows] == [aid], rows

    res = clients.cinder(*MV, "attachment-show", aid)
    att, info = _attachment_tables(res)
    assert att["status"] == "attached" and att["attach_mode"] == "rw", att
    assert att["attached_at"], att
    _check_local_info(info, vid, res)

    # an attached volume cannot be deleted (cinder delete prints the per-volume
    # failure on stdout)
    res = clients.cinder("delete", vid, expect_fail=True)
    assert "failed" in res.stdout and "(HTTP 400)" in res.stdout, res.report("delete of an attached volume")

    # snapshots of an in-use volume: refused before 3.66 unless forced; allowed after
    res = clients.cinder("--os-volume-api-version", "3.65", "snapshot-create", "--name", "s-no", vid,
                         expect_fail=True)
    _http_error(res, 400)
    forced = parse_kv(clients.cinder("--os-volume-api-version", "3.65", "snapshot-create",
                                     "--force", "True", "--name", "s-forced", vid).stdout)
    plain = parse_kv(clients.cinder("snapshot-create", "--name", "s-366", vid).stdout)  # 3.67
    for snap in (forced, plain):
        wait_for(lambda: parse_kv(clients.cinder("snapshot-show", snap["id"]).stdout),
                 lambda x: x["status"] == "available", f"snapshot {snap['name']} of an in-use volume",
                 bad=lambda x: x["status"].startswith("error"))
        clients.cinder("snapshot-delete", snap["id"])
    wait_for(lambda: parse_table(clients.cinder("snapshot-list").stdout), lambda rows: rows == [],
             "the snapshots of the in-use volume to be deleted")
    assert _show(clients, vid)["status"] == "in-use"

    # --- a second host for a non-multiattach volume is refused --------------------
    # Cinder (api.attachment_create → _attachment_reserve) refuses to reserve a
    # volume that is not multiattach and not available, for another instance, with
    # InvalidVolume, which the attachments API returns as 400.
    res = clients.cinder(*MV, "attachment-create", "--connect", "True", "--initiator",
                         "iqn.1994-05.com.redhat:other", "--ip", "127.0.0.2", "--host", "otherhost",
                         "--mode", "rw", vid, INSTANCE2, expect_fail=True)
    _http_error(res, 400)
    vol = _show(clients, vid)
    assert vol["status"] == "in-use" and _listish(vol["attachment_ids"]) == [aid], vol

    # --- detach: attachment-delete ---------------------------------------------------------
    clients.cinder(*MV, "attachment-delete", aid)
    vol = _show(clients, vid)
    assert vol["status"] == "available", vol
    assert _listish(vol["attachment_ids"]) == [] and _listish(vol["attached_servers"]) == [], vol
    assert parse_table(clients.cinder(*MV, "attachment-list").stdout) == []
    res = clients.cinder(*MV, "attachment-show", aid, expect_fail=True)
    _http_error(res, 404)

    # --- attachment-create --connect: reserved and connected at once --------------------
    res = clients.cinder(*MV, "attachment-create", "--connect", "True", *CONNECT,
                         "--mode", "rw", "v2", INSTANCE_UUID)
    att, info = _attachment_tables(res)
    aid2 = att["id"]
    assert att["status"] == "attaching" and att["attach_mode"] == "rw", att
    _check_local_info(info, vid, res)
    assert _show(clients, vid)["status"] == "attaching"
    clients.cinder(*MV, "attachment-complete", aid2)
    assert _show(clients, vid)["status"] == "in-use"

    # the same instance from another host (Nova's live migration) is allowed
    res = clients.cinder(*MV, "attachment-create", "--connect", "True", "--initiator",
                         "iqn.1994-05.com.redhat:dest", "--ip", "127.0.0.3", "--host", "desthost",
                         vid, INSTANCE_UUID)
    att3, info3 = _attachment_tables(res)
    _check_local_info(info3, vid, res)
    assert att3["status"] == "attaching", att3
    vol = _show(clients, vid)
    # a volume lists only its attached attachments (as Cinder's view does)
    assert vol["status"] == "in-use" and _listish(vol["attachment_ids"]) == [aid2], vol
    rows = parse_table(clients.cinder(*MV, "attachment-list", "--volume-id", vid).stdout)
    assert sorted((r["ID"], r["Status"]) for r in rows) == \
        sorted([(aid2, "attached"), (att3["id"], "attaching")]), rows
    clients.cinder(*MV, "attachment-complete", att3["id"])
    vol = _show(clients, vid)
    assert sorted(_listish(vol["attachment_ids"])) == sorted([aid2, att3["id"]]), vol
    clients.cinder(*MV, "attachment-delete", aid2)  # the migration source goes
    vol = _show(clients, vid)
    assert vol["status"] == "in-use" and _listish(vol["attachment_ids"]) == [att3["id"]], vol
    clients.cinder(*MV, "attachment-delete", att3["id"])
    assert _show(clients, vid)["status"] == "available"

    # read-only mode (3.54)
    res = clients.cinder(*MV, "attachment-create", "--connect", "True", *CONNECT,
                         "--mode", "ro", vid, INSTANCE_UUID)
    att, info = _attachment_tables(res)
    assert att["attach_mode"] == "ro", att
    _check_local_info(info, vid, res, mode="ro")
    clients.cinder(*MV, "attachment-delete", att["id"])
    assert _show(clients, vid)["status"] == "available"

    # a read-only volume is attached read-only when no mode is asked for
    clients.cinder("readonly-mode-update", vid, "True")
    res = clients.cinder(*MV, "attachment-create", "--connect", "True", *CONNECT, vid, INSTANCE_UUID)
    att, info = _attachment_tables(res)
    assert att["attach_mode"] == "ro", att
    _check_local_info(info, vid, res, mode="ro")
    clients.cinder(*MV, "attachment-delete", att["id"])
    clients.cinder("readonly-mode-update", vid, "False")
    assert _show(clients, vid)["status"] == "available"

    clients.cinder("delete", vid)
    wait_for(lambda: clients.cinder("show", vid, check=False), lambda r: r.returncode != 0,
             "v2 to be deleted")


def test_cinder_multiattach(clients):
    clients.cinder("type-create", "ma")
    clients.cinder("type-key", "ma", "set", "multiattach=<is> True")
    specs = parse_table(clients.cinder("extra-specs-list").stdout)
    assert [r for r in specs if r["Name"] == "ma"], specs

    vid = _create_volume(clients, "shared", "--volume-type", "ma")
    assert _show(clients, vid)["multiattach"] == "True"

    hosts = [("hostA", "127.0.0.11", INSTANCE_UUID), ("hostB", "127.0.0.12", INSTANCE2)]
    ids = []
    for host, ip, instance in hosts:
        res = clients.cinder(*MV, "attachment-create", "--connect", "True", "--initiator",
                             f"iqn.1994-05.com.redhat:{host}", "--ip", ip, "--host", host,
                             "--mode", "rw", vid, instance)
        att, info = _attachment_tables(res)
        assert att["status"] == "attaching" and att["instance"] == instance, att
        _check_local_info(info, vid, res)
        clients.cinder(*MV, "attachment-complete", att["id"])
        ids.append(att["id"])

    vol = _show(clients, vid)
    assert vol["status"] == "in-use", vol
    assert sorted(_listish(vol["attachment_ids"])) == sorted(ids), vol
    assert sorted(_listish(vol["attached_servers"])) == sorted([INSTANCE_UUID, INSTANCE2]), vol
    rows = parse_table(clients.cinder(*MV, "attachment-list", "--volume-id", vid).stdout)
    assert sorted((r["ID"], r["Status"]) for r in rows) == sorted((i, "attached") for i in ids), rows

    clients.cinder(*MV, "attachment-delete", ids[0])
    vol = _show(clients, vid)
    assert vol["status"] == "in-use" and _listish(vol["attachment_ids"]) == [ids[1]], vol
    clients.cinder(*MV, "attachment-delete", ids[1])
    vol = _show(clients, vid)
    assert vol["status"] == "available" and _listish(vol["attachment_ids"]) == [], vol


# --------------------------------------------------------------------------
# openstack CLI (attachment set / complete / list / show / delete)
# --------------------------------------------------------------------------


def test_openstack_attachment_commands(clients):
    vid = _create_volume(clients, "ov")
    aid = _attachment_tables(clients.cinder(*MV, "attachment-create", vid, INSTANCE_UUID))[0]["id"]

    osc = ("--os-volume-api-version", "3.54")
    att = clients.openstack_json(*osc, "volume", "attachment", "set", "--initiator",
                                 "iqn.1993-08.org.debian:01:deadbeef", "--ip", "127.0.0.1",
                                 "--host", "compute1", aid)
    assert att["ID"] == aid and att["Status"] == "attaching", att
    assert att["Volume ID"] == vid and att["Instance ID"] == INSTANCE_UUID, att
    props = att["Properties"]
    assert props["driver_volume_type"] == "local" and os.path.isfile(props["device_path"]), att

    clients.openstack(*osc, "volume", "attachment", "complete", aid)
    listed = clients.openstack_json(*osc, "volume", "attachment", "list")
    assert [(a["ID"], a["Volume ID"], a["Server ID"], a["Status"]) for a in listed] == \
        [(aid, vid, INSTANCE_UUID, "attached")], listed
    shown = clients.openstack_json(*osc, "volume", "attachment", "show", aid)
    assert shown["Status"] == "attached" and shown["Attach Mode"] == "rw" and shown["Attached At"], shown
    vol = clients.openstack_json("volume", "show", vid)
    assert vol["status"] == "in-use", vol
    assert [a["attachment_id"] for a in vol["attachments"]] == [aid], vol

    clients.openstack(*osc, "volume", "attachment", "delete", aid)
    assert clients.openstack_json(*osc, "volume", "attachment", "list") == []
    vol = clients.openstack_json("volume", "show", vid)
    assert vol["status"] == "available" and vol["attachments"] == [], vol


# --------------------------------------------------------------------------
# openstacksdk
# --------------------------------------------------------------------------

# the connector openstacksdk users send (recorded from the SDK's own flow)
SDK_CONNECTOR = {"host": "compute1", "initiator": "iqn.1993-08.org.debian:01:deadbeef",
                 "ip": "127.0.0.1", "multipath": False, "os_type": "linux", "platform": "x86_64"}


def test_sdk_attachments(sdk):
    bs = sdk.block_storage
    v = wait_volume_status(bs, bs.create_volume(name="att", size=1).id, "available")

    # create (reserve) with connector null, as the SDK sends it
    att = bs.create_attachment(v.id, connector=None, instance=INSTANCE_UUID)
    assert att.id and att.status == "reserved" and att.volume_id == v.id, att
    assert att.instance == INSTANCE_UUID, att
    assert bs.get_volume(v.id).status == "reserved"

    att = bs.update_attachment(att, connector=SDK_CONNECTOR)
    info = att.connection_info
    assert att.status == "attaching", att
    assert info["driver_volume_type"] == "local" and os.path.isfile(info["device_path"]), info
    assert info["access_mode"] == "rw", info
    assert bs.get_volume(v.id).status == "attaching"

    bs.complete_attachment(att)  # {"os-complete": "<id>"}
    vol = bs.get_volume(v.id)
    assert vol.status == "in-use", vol
    assert [(a["attachment_id"], a["server_id"]) for a in vol.attachments] == \
        [(att.id, INSTANCE_UUID)], vol.attachments

    got = bs.get_attachment(att.id)
    assert got.status == "attached" and got.connection_info["device_path"] == info["device_path"], got
    assert [a.id for a in bs.attachments()] == [att.id]
    assert [a.id for a in bs.attachments(volume_id=v.id)] == [att.id]
    assert list(bs.attachments(volume_id="00000000-0000-4000-8000-000000000000")) == []

    # DELETE answers 200 with the volume's remaining attachments; a second
    # attachment of the same instance (what Nova makes during live migration)
    second = bs.create_attachment(v.id, connector=dict(SDK_CONNECTOR, host="compute2"),
                                  instance=INSTANCE_UUID)
    resp = bs.delete(f"/attachments/{att.id}", microversion="3.44")
    assert resp.status_code == 200, (resp.status_code, resp.text)
    remaining = resp.json()["attachments"]
    assert [a["id"] for a in remaining] == [second.id], remaining
    with pytest.raises(sdk_exc.NotFoundException):
        bs.get_attachment(att.id)
    assert bs.get_volume(v.id).status == "attaching"  # only the unfinished one is left

    bs.delete_attachment(second, ignore_missing=False)
    vol = bs.get_volume(v.id)
    assert vol.status == "available" and vol.attachments == [], vol
    with pytest.raises(sdk_exc.NotFoundException):
        bs.delete_attachment(second, ignore_missing=False)


def test_sdk_legacy_attach(sdk):
    """openstacksdk's legacy flow, as recorded: reserve, initialize_connection,
    attach (no mode), begin_detaching, terminate_connection, detach; plus
    roll_detaching, unreserve and force_detach."""
    bs = sdk.block_storage
    v = wait_volume_status(bs, bs.create_volume(name="legacy", size=1).id, "available")

    bs.reserve_volume(v)  # {"os-reserve": null}
    assert bs.get_volume(v.id).status == "attaching"
    info = bs.init_volume_attachment(v, SDK_CONNECTOR)
    assert info["driver_volume_type"] == "local", info
    data = info["data"]
    assert os.path.isfile(data["device_path"]) and v.id in data["device_path"], info
    assert data["access_mode"] == "rw", info

    bs.attach_volume(v, "/dev/vdb", instance=INSTANCE_UUID)
    vol = bs.get_volume(v.id)
    assert vol.status == "in-use", vol
    assert len(vol.attachments) == 1, vol.attachments
    a = vol.attachments[0]
    assert a["server_id"] == INSTANCE_UUID and a["device"] == "/dev/vdb" and a["volume_id"] == v.id, a
    attachment_id = a["attachment_id"]
    assert attachment_id, a

    # a second reserve of a non-multiattach in-use volume is refused
    with pytest.raises(sdk_exc.BadRequestException):
        bs.reserve_volume(v)

    bs.begin_volume_detaching(v)
    assert bs.get_volume(v.id).status == "detaching"
    bs.abort_volume_detaching(v)  # os-roll_detaching
    assert bs.get_volume(v.id).status == "in-use"
    bs.begin_volume_detaching(v)
    bs.terminate_volume_attachment(v, SDK_CONNECTOR)
    bs.detach_volume(v, attachment_id)
    vol = bs.get_volume(v.id)
    assert vol.status == "available" and vol.attachments == [], vol

    # reserve + unreserve; reserve + initialize + unreserve drops the connection
    bs.reserve_volume(v)
    bs.unreserve_volume(v)
    assert bs.get_volume(v.id).status == "available"
    bs.reserve_volume(v)
    bs.init_volume_attachment(v, SDK_CONNECTOR)
    bs.unreserve_volume(v)
    vol = bs.get_volume(v.id)
    assert vol.status == "available" and vol.attachments == [], vol
    assert [x.id for x in bs.attachments()] == []

    # force detach (admin)
    bs.reserve_volume(v)
    bs.init_volume_attachment(v, SDK_CONNECTOR)
    bs.attach_volume(v, "/dev/vdc", instance=INSTANCE_UUID)
    vol = bs.get_volume(v.id)
    assert vol.status == "in-use", vol
    bs.detach_volume(v, vol.attachments[0]["attachment_id"], force=True, connector=SDK_CONNECTOR)
    vol = bs.get_volume(v.id)
    assert vol.status == "available" and vol.attachments == [], vol

    # os-attach by host name (no instance), and os-detach without an attachment
    # id (the volume's only attachment): both as Cinder takes them
    def action(body, expect=202):
        r = bs.post(f"/volumes/{v.id}/action", json=body, microversion=None)
        assert r.status_code == expect, (body, r.status_code, r.text)

    action({"os-reserve": None})
    action({"os-initialize_connection": {"connector": SDK_CONNECTOR}}, 200)
    action({"os-attach": {"host_name": "baremetal-1", "mountpoint": "/dev/sdb", "mode": "rw"}})
    vol = bs.get_volume(v.id)
    assert vol.status == "in-use" and len(vol.attachments) == 1, vol
    assert vol.attachments[0]["host_name"] == "baremetal-1", vol.attachments
    assert vol.attachments[0]["server_id"] is None, vol.attachments
    action({"os-begin_detaching": None})
    action({"os-terminate_connection": {"connector": SDK_CONNECTOR}})
    action({"os-detach": {"attachment_id": None}})
    vol = bs.get_volume(v.id)
    assert vol.status == "available" and vol.attachments == [], vol

    # an unknown volume is a 404 for the actions too
    with pytest.raises(sdk_exc.NotFoundException):
        bs.reserve_volume("00000000-0000-4000-8000-000000000000")
