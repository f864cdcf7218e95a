"""os-brick's LOCAL connector (what Nova and other consumers use to reach a
volume) on the connection_info hearth's file backend hands out:
{"driver_volume_type": "local", "device_path": <the volume's file>, ...}.

Two ways to get it, both as the clients do it:
- attachments API (openstacksdk): create with the connector → connection_info
  with its keys at the top level → connect_volume(connection_info) →
  os-complete → ... → disconnect_volume → delete the attachment;
- legacy actions (raw HTTP with the bodies cinderclient/Nova send, no
  microversion header): os-reserve → os-initialize_connection →
  connect_volume(connection_info["data"]) → os-attach → os-begin_detaching →
  disconnect_volume → os-terminate_connection → os-detach.

Data written through one connection is read back through the other, and
through a clone made afterwards: what the connector reaches is the volume.
"""

from __future__ import annotations

import os

from support import (INSTANCE_UUID, GiB, MiB, LocalAttach, brick_connector_properties, read_at,
                     sha256_file, wait_volume_status, write_at)

# the connector Nova sends with the legacy actions (recorded from cinderclient)
NOVA_CONNECTOR = {"do_local_attach": False, "found_dsc": "", "host": "compute1",
                  "initiator": "iqn.1993-08.org.debian:01:deadbeef", "ip": "127.0.0.1",
                  "multipath": False, "nqn": None, "os_type": "linux", "platform": "x86_64",
                  "system uuid": "abc", "uuid": "abc"}

PATTERN_OFFSETS = (0, 3 * MiB + 17, 512 * MiB, GiB - MiB)  # 1 MiB each, apart


def _patterns(tag: bytes) -> dict[int, bytes]:
    return {off: (tag * 1024)[:1024] + os.urandom(MiB - 1024) for off in PATTERN_OFFSETS}


def _write_all(path, patterns):
    for off, data in patterns.items():
        write_at(path, off, data)


def _check_all(path, patterns, what):
    for off, data in patterns.items():
        assert read_at(path, off, len(data)) == data, f"{what}: data at offset {off} differs"


def _action(bs, vid, body, expect: int):
    """POST /volumes/{id}/action without a microversion header (as Nova and
    cinderclient's legacy calls send it)."""
    resp = bs.post(f"/volumes/{vid}/action", json=body, microversion=None)
    assert resp.status_code == expect, \
        f"POST /volumes/{vid}/action {body!r}: expected {expect}, got {resp.status_code} {resp.text}"
    return resp


def _volume(bs, vid) -> dict:
    resp = bs.get(f"/volumes/{vid}", microversion=None)
    assert resp.status_code == 200, (resp.status_code, resp.text)
    return resp.json()["volume"]


def test_os_brick_local_attachments_api(sdk, brick):
    bs = sdk.block_storage
    v = wait_volume_status(bs, bs.create_volume(name="brick", size=1).id, "available")
    pats = _patterns(b"attachments-api ")

    with LocalAttach(bs, brick, v.id) as a:
        info = a.info
        # the attachments API flattens connection_info: data keys at the top level
        assert info["driver_volume_type"] == "local" and info["access_mode"] == "rw", info
        assert info["volume_id"] == v.id, info
        assert a.path == info["device_path"] and os.path.isfile(a.path), info
        assert brick.get_volume_paths(info) == [a.path]
        assert os.path.getsize(a.path) == GiB

        vol = bs.get_volume(v.id)
        assert vol.status == "in-use", vol
        assert [x["attachment_id"] for x in vol.attachments] == [a.attachment.id], vol.attachments
        assert bs.get_attachment(a.attachment.id).status == "attached"

        _write_all(a.path, pats)
        _check_all(a.path, pats, "read back through the same connection")

    # LocalAttach's exit: disconnect_volume, delete the attachment, available
    vol = bs.get_volume(v.id)
    assert vol.status == "available" and vol.attachments == [], vol
    assert list(bs.attachments()) == []

    # a new attachment reaches the same data
    with LocalAttach(bs, brick, v.id, instance="8a1b2c3d-2222-4333-8444-955566667777") as a:
        _check_all(a.path, pats, "read through a second attachment")


def test_os_brick_local_legacy_actions(sdk, brick):
    bs = sdk.block_storage
    v = wait_volume_status(bs, bs.create_volume(name="legacy", size=1).id, "available")
    vid = v.id

    # write a first pattern through the attachments API
    first = _patterns(b"first ")
    with LocalAttach(bs, brick, vid) as a:
        _write_all(a.path, first)

    # --- legacy attach, exactly the bodies cinderclient/Nova send -------------------
    _action(bs, vid, {"os-reserve": None}, 202)
    assert _volume(bs, vid)["status"] == "attaching"
    resp = _action(bs, vid, {"os-initialize_connection": {"connector": NOVA_CONNECTOR}}, 200)
    info = resp.json()["connection_info"]
    assert info["driver_volume_type"] == "local", info
    data = info["data"]  # legacy: the connection properties are under "data"
    assert data["access_mode"] == "rw" and os.path.isfile(data["device_path"]), info

    device = brick.connect_volume(data)
    assert device == {"type": "local", "path": data["device_path"]}, device
    path = device["path"]
    _check_all(path, first, "legacy connection reading what the attachments API wrote")

    _action(bs, vid, {"os-attach": {"instance_uuid": INSTANCE_UUID, "mode": "rw",
                                    "mountpoint": "/dev/vdb"}}, 202)
    vol = _volume(bs, vid)
    assert vol["status"] == "in-use", vol
    assert len(vol["attachments"]) == 1, vol["attachments"]
    att = vol["attachments"][0]
    assert att["server_id"] == INSTANCE_UUID and att["device"] == "/dev/vdb", att

    second = _patterns(b"second ")
    _write_all(path, second)
    _check_all(path, second, "read back through the legacy connection")

    _action(bs, vid, {"os-begin_detaching": None}, 202)
    assert _volume(bs, vid)["status"] == "detaching"
    brick.disconnect_volume(data, device)
    _action(bs, vid, {"os-terminate_connection": {"connector": NOVA_CONNECTOR}}, 202)
    _action(bs, vid, {"os-detach": {"attachment_id": att["attachment_id"]}}, 202)
    vol = _volume(bs, vid)
    assert vol["status"] == "available" and vol["attachments"] == [], vol

    # --- what was written is the volume's data: a clone made now has it -----------
    clone = wait_volume_status(bs, bs.create_volume(name="clone", source_volume_id=vid).id,
                               "available")
    with LocalAttach(bs, brick, vid) as a:
        source_hash = sha256_file(a.path)
    with LocalAttach(bs, brick, clone.id) as a:
        _check_all(a.path, second, "clone of the volume written through the legacy connection")
        assert sha256_file(a.path) == source_hash

    # --- os-initialize_connection needs a connector; an unknown action is a 400 ---
    _action(bs, vid, {"os-reserve": {}}, 202)  # {} is as good as null
    _action(bs, vid, {"os-initialize_connection": {}}, 400)
    _action(bs, vid, {"os-unreserve": None}, 202)
    _action(bs, vid, {"os-no-such-action": None}, 400)
    assert _volume(bs, vid)["status"] == "available"


def test_os_brick_connector_properties_accepted(sdk, brick):
    """The connector os-brick itself builds (platform, os_type, ip, host,
    multipath, enforce_multipath) is accepted by PUT /attachments."""
    bs = sdk.block_storage
    v = wait_volume_status(bs, bs.create_volume(name="props", size=1).id, "available")
    att = bs.create_attachment(v.id, connector=None, instance=INSTANCE_UUID)
    att = bs.update_attachment(att, connector=brick_connector_properties("vm"))
    assert att.connection_info["driver_volume_type"] == "local", att.connection_info
    device = brick.connect_volume(att.connection_info)
    write_at(device["path"], 0, b"hello from os-brick")
    assert read_at(device["path"], 0, 19) == b"hello from os-brick"
    brick.disconnect_volume(att.connection_info, device)
    bs.delete_attachment(att, ignore_missing=False)
    assert bs.get_volume(v.id).status == "available"
