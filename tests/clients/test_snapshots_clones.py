"""Snapshots, volumes made from a snapshot, clones of a volume, revert and
cascade delete, through the openstack CLI, the cinder CLI and openstacksdk.

What hearth promises (and Cinder does): a volume made from a snapshot or a
source volume gets the source's size unless a size is given; a smaller size is
refused with 400; the type must be the source's or omitted (a type pinned to
another backend cannot be used: 400); the copy lives on the source's pool; a
snapshot with volumes made from it can still be deleted (the copies are
independent files); a volume with snapshots is deleted only with cascade
(OSC `--purge`/`--cascade`, cinder `--cascade`). The contents of the copies are
checked in test_clone_data.py.
"""

from __future__ import annotations

import pytest
from openstack import exceptions as sdk_exc

from support import WAIT_TIMEOUT, parse_kv, parse_table, sdk_connect, wait_for, wait_volume_status

HOST_KEY = "os-vol-host-attr:host"


# --------------------------------------------------------------------------
# openstack CLI
# --------------------------------------------------------------------------


def _osc_volume(clients, ref):
    return clients.openstack_json("volume", "show", ref)


def _osc_snapshot(clients, ref):
    return clients.openstack_json("volume", "snapshot", "show", ref)


def _osc_wait_volume(clients, ref, what):
    return wait_for(lambda: _osc_volume(clients, ref), lambda v: v["status"] == "available",
                    what, bad=lambda v: v["status"].startswith("error"))


def _osc_wait_snapshot(clients, ref, what):
    return wait_for(lambda: _osc_snapshot(clients, ref), lambda s: s["status"] == "available",
                    what, bad=lambda s: s["status"].startswith("error"))


def _osc_wait_gone(clients, kind: list[str], ref, what):
    res = wait_for(lambda: clients.openstack(*kind, "show", ref, check=False),
                   lambda r: r.returncode != 0, what)
    assert "No " in res.stderr and "exists" in res.stderr or "404" in res.stderr, \
        res.report(f"`{' '.join(kind)} show` failed after delete, but not with not-found")


def _osc_refused(res, code: int, what: str) -> None:
    """OSC reports an HTTP error as '(HTTP 400)' (cinderclient-based commands)
    or 'BadRequestException: 400: Client Error ...' (SDK-based ones)."""
    assert f"(HTTP {code})" in res.stderr or f"Exception: {code}: Client Error" in res.stderr, \
        res.report(f"{what}: expected HTTP {code}")


def test_openstack_snapshots_and_clones(clients):
    # --- the source -------------------------------------------------------------
    clients.openstack_json("volume", "create", "--size", "1", "--property", "a=b", "v1")
    v1 = _osc_wait_volume(clients, "v1", "v1 to become available")

    # --- snapshot create / show / list ---------------------------------------
    s1 = clients.openstack_json("volume", "snapshot", "create", "--volume", "v1",
                                "--description", "first", "s1")
    assert s1["id"] and s1["name"] == "s1", s1
    assert s1["volume_id"] == v1["id"], s1
    assert s1["size"] == 1, s1
    assert s1["status"] in ("creating", "available"), s1
    s1 = _osc_wait_snapshot(clients, "s1", "snapshot s1 to become available")
    assert s1["description"] == "first" and s1["volume_id"] == v1["id"] and s1["size"] == 1, s1
    assert s1["properties"] in ({}, "", None), s1

    listed = clients.openstack_json("volume", "snapshot", "list")
    assert [(s["ID"], s["Name"], s["Status"], s["Size"]) for s in listed] == \
        [(s1["id"], "s1", "available", 1)], listed
    long = clients.openstack_json("volume", "snapshot", "list", "--long")
    assert len(long) == 1 and long[0]["ID"] == s1["id"], long
    # OSC shows the volume's name in tables; -f json keeps the id
    assert long[0]["Volume"] == v1["id"], long

    # the source is still available (a snapshot does not change its status)
    assert _osc_volume(clients, "v1")["status"] == "available"

    # --- snapshot update and metadata -------------------------------------------
    clients.openstack("volume", "snapshot", "set", "--description", "first snap",
                      "--property", "k=v", "--property", "k2=v2", "s1")
    shown = _osc_snapshot(clients, "s1")
    assert shown["description"] == "first snap", shown
    assert shown["properties"] == {"k": "v", "k2": "v2"}, shown
    clients.openstack("volume", "snapshot", "unset", "--property", "k2", "s1")
    assert _osc_snapshot(clients, "s1")["properties"] == {"k": "v"}

    # --- volumes from the snapshot and from the volume ---------------------
    v2 = clients.openstack_json("volume", "create", "--snapshot", "s1", "v2")
    assert v2["name"] == "v2" and v2["size"] == 1, v2
    v2 = _osc_wait_volume(clients, "v2", "v2 (from snapshot s1) to become available")
    assert v2["size"] == 1, v2
    assert v2["snapshot_id"] == s1["id"], v2
    assert v2["source_volid"] in (None, ""), v2
    assert v2[HOST_KEY] == v1[HOST_KEY], (v2[HOST_KEY], v1[HOST_KEY])
    assert v2["type"] == v1["type"], v2

    v3 = clients.openstack_json("volume", "create", "--source", "v1", "v3")
    assert v3["name"] == "v3" and v3["size"] == 1, v3
    v3 = _osc_wait_volume(clients, "v3", "v3 (clone of v1) to become available")
    assert v3["size"] == 1, v3
    assert v3["source_volid"] == v1["id"], v3
    assert v3["snapshot_id"] in (None, ""), v3
    assert v3[HOST_KEY] == v1[HOST_KEY], (v3[HOST_KEY], v1[HOST_KEY])

    # a larger size than the source's is fine
    clients.openstack_json("volume", "create", "--snapshot", "s1", "--size", "2", "v4")
    v4 = _osc_wait_volume(clients, "v4", "v4 (2 GiB from snapshot s1) to become available")
    assert v4["size"] == 2 and v4["snapshot_id"] == s1["id"], v4
    clients.openstack_json("volume", "create", "--source", "v1", "--size", "2", "v5")
    v5 = _osc_wait_volume(clients, "v5", "v5 (2 GiB clone of v1) to become available")
    assert v5["size"] == 2 and v5["source_volid"] == v1["id"], v5

    # --- a type pinned to another backend cannot be used for a copy ----------
    clients.openstack_json("volume", "type", "create", "--property",
                           "volume_backend_name=no-such-backend", "elsewhere")
    for src in (["--snapshot", "s1"], ["--source", "v1"]):
        res = clients.openstack("volume", "create", *src, "--type", "elsewhere", "bad",
                                expect_fail=True)
        _osc_refused(res, 400, f"create {src} with a type pinned to another backend")
    assert "bad" not in [v["Name"] for v in clients.openstack_json("volume", "list")]

    # --- deleting a snapshot that volumes were made from -----------------------
    clients.openstack("volume", "snapshot", "delete", "s1")
    _osc_wait_gone(clients, ["volume", "snapshot"], "s1", "snapshot s1 to be deleted")
    assert clients.openstack_json("volume", "snapshot", "list") == []
    assert _osc_volume(clients, "v2")["status"] == "available"
    assert _osc_volume(clients, "v4")["status"] == "available"

    # --- a volume with snapshots: delete only with --purge (cascade) ----------
    clients.openstack_json("volume", "snapshot", "create", "--volume", "v1", "s2")
    s2 = _osc_wait_snapshot(clients, "s2", "snapshot s2 to become available")
    clients.openstack_json("volume", "snapshot", "create", "--volume", "v1", "s3")
    s3 = _osc_wait_snapshot(clients, "s3", "snapshot s3 to become available")

    res = clients.openstack("volume", "delete", "v1", expect_fail=True)
    _osc_refused(res, 400, "delete of a volume with snapshots")
    assert _osc_volume(clients, "v1")["status"] == "available"
    assert {s["ID"] for s in clients.openstack_json("volume", "snapshot", "list")} == \
        {s2["id"], s3["id"]}

    clients.openstack("volume", "delete", "--purge", "v1")
    _osc_wait_gone(clients, ["volume"], v1["id"], "v1 to be deleted with --purge")
    _osc_wait_gone(clients, ["volume", "snapshot"], s2["id"], "s2 to go with v1")
    _osc_wait_gone(clients, ["volume", "snapshot"], s3["id"], "s3 to go with v1")
    assert clients.openstack_json("volume", "snapshot", "list") == []

    # the copies are independent of their source
    left = {v["Name"]: v for v in clients.openstack_json("volume", "list")}
    assert sorted(left) == ["v2", "v3", "v4", "v5"], left
    assert all(v["Status"] == "available" for v in left.values()), left
    assert [left[n]["Size"] for n in ("v2", "v3", "v4", "v5")] == [1, 1, 2, 2], left


# --------------------------------------------------------------------------
# cinder CLI
# --------------------------------------------------------------------------


def _cinder_show(clients, ref):
    return parse_kv(clients.cinder("show", ref).stdout)


def _cinder_snap(clients, ref):
    return parse_kv(clients.cinder("snapshot-show", ref).stdout)


def _cinder_wait(fetch, what):
    return wait_for(fetch, lambda x: x["status"] == "available", what,
                    bad=lambda x: x["status"].startswith("error"))


def _http_error(res, code: int) -> None:
    assert any(f"(HTTP {code})" in l for l in res.error_lines()), \
        res.report(f"expected the client to report HTTP {code}")


def test_cinder_snapshots_sizes_and_cascade(clients):
    vid = parse_kv(clients.cinder("create", "--name", "big", "2").stdout)["id"]
    big = _cinder_wait(lambda: _cinder_show(clients, vid), "big to become available")
    assert big["size"] == "2"

    # --- snapshot-create / show / list ------------------------------------------
    created = parse_kv(clients.cinder("snapshot-create", "--name", "sbig",
                                      "--metadata", "m=1", "big").stdout)
    sid = created["id"]
    assert created["volume_id"] == vid and created["size"] == "2", created
    snap = _cinder_wait(lambda: _cinder_snap(clients, sid), "snapshot sbig to become available")
    assert snap["name"] == "sbig" and snap["volume_id"] == vid, snap
    rows = parse_table(clients.cinder("snapshot-list").stdout)
    assert [(r["ID"], r["Volume ID"], r["Status"], r["Name"], r["Size"]) for r in rows] == \
        [(sid, vid, "available", "sbig", "2")], rows
    by_volume = parse_table(clients.cinder("snapshot-list", "--volume-id", vid).stdout)
    assert [r["ID"] for r in by_volume] == [sid], by_volume

    # --- smaller than the source: 400 ---------------------------------------------
    for args in (["--snapshot-id", sid, "1"], ["--source-volid", vid, "1"]):
        res = clients.cinder("create", "--name", "small", *args, expect_fail=True)
        _http_error(res, 400)
    res = clients.cinder("create", "--name", "zero", "--snapshot-id", sid, "0", expect_fail=True)
    _http_error(res, 400)
    names = [r["Name"] for r in parse_table(clients.cinder("list").stdout)]
    assert names == ["big"], names

    # --- no size: the source's; a larger one is kept -------------------------------
    from_snap = parse_kv(clients.cinder("create", "--name", "fromsnap", "--snapshot-id", sid).stdout)
    shown = _cinder_wait(lambda: _cinder_show(clients, from_snap["id"]), "fromsnap to become available")
    assert shown["size"] == "2" and shown["snapshot_id"] == sid, shown
    assert shown["os-vol-host-attr:host"] == big["os-vol-host-attr:host"], shown
    clone = parse_kv(clients.cinder("create", "--name", "clone", "--source-volid", vid, "3").stdout)
    shown = _cinder_wait(lambda: _cinder_show(clients, clone["id"]), "clone to become available")
    assert shown["size"] == "3" and shown["source_volid"] == vid, shown

    # --- rename, metadata, reset-state ---------------------------------------------
    clients.cinder("snapshot-rename", sid, "sbig2", "--description", "renamed")
    clients.cinder("snapshot-metadata", "sbig2", "set", "k=v")
    snap = _cinder_snap(clients, sid)
    assert snap["name"] == "sbig2" and snap["description"] == "renamed", snap
    meta = parse_kv(clients.cinder("snapshot-metadata-show", sid).stdout)
    assert meta == {"m": "1", "k": "v"}, meta
    clients.cinder("snapshot-metadata", sid, "unset", "m")
    assert parse_kv(clients.cinder("snapshot-metadata-show", sid).stdout) == {"k": "v"}

    clients.cinder("snapshot-reset-state", "--state", "error", sid)
    assert _cinder_snap(clients, sid)["status"] == "error"
    # a snapshot in error makes no volume
    res = clients.cinder("create", "--name", "fromerr", "--snapshot-id", sid, expect_fail=True)
    _http_error(res, 400)
    clients.cinder("snapshot-reset-state", sid)  # default: available
    assert _cinder_snap(clients, sid)["status"] == "available"

    # --- revert to the (latest) snapshot (3.40) --------------------------------------
    clients.cinder("revert-to-snapshot", sid)
    _cinder_wait(lambda: _cinder_show(clients, vid), "big to be available after revert")

    # --- delete: refused while snapshots exist, unless --cascade ----------------------
    res = clients.cinder("delete", vid, expect_fail=True)
    # cinder prints "Delete for volume <id> failed: ... (HTTP 400)" (stdout) and then
    # "ERROR: Unable to delete any of the specified volumes." (stderr)
    assert "(HTTP 400)" in res.stdout and any("Unable to delete" in l for l in res.error_lines()), \
        res.report("cinder delete of a volume with snapshots was not refused with 400")
    assert _cinder_show(clients, vid)["status"] == "available"
    assert _cinder_snap(clients, sid)["status"] == "available"

    clients.cinder("delete", "--cascade", vid)
    wait_for(lambda: clients.cinder("show", vid, check=False), lambda r: r.returncode != 0,
             "big to be deleted with --cascade")
    wait_for(lambda: clients.cinder("snapshot-show", sid, check=False), lambda r: r.returncode != 0,
             "sbig2 to go with big")
    assert parse_table(clients.cinder("snapshot-list").stdout) == []
    left = {r["Name"]: r for r in parse_table(clients.cinder("list").stdout)}
    assert sorted(left) == ["clone", "fromsnap"], left
    assert all(r["Status"] == "available" for r in left.values()), left


# --------------------------------------------------------------------------
# openstacksdk
# --------------------------------------------------------------------------


def _sdk_wait_snapshot(bs, snap, status="available"):
    return bs.wait_for_status(snap, status=status, failures=["error"], interval=0.5, wait=WAIT_TIMEOUT)


def test_sdk_snapshots_and_copies(sdk):
    bs = sdk.block_storage
    src = bs.create_volume(name="src", size=2)
    src = wait_volume_status(bs, src.id, "available")

    # --- create / get / find / list ----------------------------------------------------
    s = bs.create_snapshot(volume_id=src.id, name="ss1", description="sdk snap", metadata={"a": "b"})
    assert s.id and s.name == "ss1" and s.volume_id == src.id, s
    s = _sdk_wait_snapshot(bs, s)
    assert s.size == 2 and s.description == "sdk snap" and s.metadata == {"a": "b"}, s
    assert bs.get_snapshot(s.id).name == "ss1"
    assert bs.find_snapshot("ss1").id == s.id
    assert [x.id for x in bs.snapshots()] == [s.id]
    assert [(x.id, x.name) for x in bs.snapshots(details=False)] == [(s.id, "ss1")]
    assert [x.id for x in bs.snapshots(volume_id=src.id)] == [s.id]
    assert list(bs.snapshots(name="no-such")) == []

    # --- update / metadata -----------------------------------------------------------------
    bs.update_snapshot(s, description="updated")
    assert bs.get_snapshot(s.id).description == "updated"
    bs.set_snapshot_metadata(s, k="v")
    assert bs.get_snapshot_metadata(s).metadata == {"a": "b", "k": "v"}
    bs.delete_snapshot_metadata(s, keys=["a"])
    assert bs.get_snapshot(s.id).metadata == {"k": "v"}

    # --- reset status (admin action) ------------------------------------------------------
    bs.reset_snapshot_status(s, "error")
    assert bs.get_snapshot(s.id).status == "error"
    bs.reset_snapshot_status(s, "available")
    assert bs.get_snapshot(s.id).status == "available"

    # --- volumes from it: no size → the source's; smaller → 400 ---------------------------
    v = bs.create_volume(name="from-snap", snapshot_id=s.id)
    v = wait_volume_status(bs, v.id, "available")
    assert v.size == 2 and v.snapshot_id == s.id, v
    assert v.host == src.host, (v.host, src.host)
    c = bs.create_volume(name="clone", source_volume_id=src.id)
    c = wait_volume_status(bs, c.id, "available")
    assert c.size == 2 and c.source_volume_id == src.id, c
    assert c.host == src.host, (c.host, src.host)
    for kw in ({"snapshot_id": s.id}, {"source_volume_id": src.id}):
        with pytest.raises(sdk_exc.BadRequestException):
            bs.create_volume(name="too-small", size=1, **kw)
    with pytest.raises(sdk_exc.NotFoundException):
        bs.create_volume(name="no-snap", snapshot_id="00000000-0000-4000-8000-000000000000")
    assert sorted(x.name for x in bs.volumes()) == ["clone", "from-snap", "src"]

    # --- revert (3.40) to the latest snapshot -------------------------------------------
    bs.revert_volume_to_snapshot(src, s)
    wait_volume_status(bs, src.id, "available", "src to be available after revert")
    # only the latest snapshot: after another, reverting to the first is refused
    s2 = _sdk_wait_snapshot(bs, bs.create_snapshot(volume_id=src.id, name="ss2"))
    with pytest.raises(sdk_exc.BadRequestException):
        bs.revert_volume_to_snapshot(src, s)
    assert bs.get_volume(src.id).status == "available"

    # --- os-update_snapshot_status (Nova's assisted snapshots) and force delete -------
    def snap_action(snap_id, body):
        return bs.post(f"/snapshots/{snap_id}/action", json=body, microversion=None)

    r = snap_action(s2.id, {"os-update_snapshot_status": {"status": "error"}})
    assert r.status_code == 400, (r.status_code, r.text)  # available → error is no update
    bs.reset_snapshot_status(s2, "creating")
    r = snap_action(s2.id, {"os-update_snapshot_status": {"status": "available", "progress": "90%"}})
    assert r.status_code == 202, (r.status_code, r.text)
    got = bs.get_snapshot(s2.id)
    assert got.status == "available" and got.progress == "90%", got

    s3 = _sdk_wait_snapshot(bs, bs.create_snapshot(volume_id=src.id, name="ss3"))
    bs.reset_snapshot_status(s3, "error_deleting")
    bs.delete_snapshot(s3, force=True)  # os-force_delete
    bs.wait_for_delete(s3, interval=0.5, wait=WAIT_TIMEOUT)

    # --- delete the snapshot (its copy stays) -----------------------------------------
    bs.delete_snapshot(s)
    bs.wait_for_delete(s, interval=0.5, wait=WAIT_TIMEOUT)
    assert bs.get_volume(v.id).status == "available"

    # --- delete with a snapshot: refused, then cascade ---------------------------------
    with pytest.raises(sdk_exc.BadRequestException):
        bs.delete_volume(src, ignore_missing=False)
    assert bs.get_snapshot(s2.id).status == "available"
    bs.delete_volume(src, cascade=True)
    bs.wait_for_delete(src, interval=0.5, wait=WAIT_TIMEOUT)
    with pytest.raises(sdk_exc.NotFoundException):
        bs.get_snapshot(s2.id)
    assert sorted((x.name, x.status) for x in bs.volumes()) == \
        [("clone", "available"), ("from-snap", "available")]


def test_sdk_revert_needs_the_snapshots_size(sdk):
    """Cinder (api/v3/volumes.py revert) refuses with 400 to revert a volume
    whose size is not the size it had at the snapshot ("The volume size must
    be equal to the snapshot size"), e.g. after an extend."""
    bs = sdk.block_storage
    v = wait_volume_status(bs, bs.create_volume(name="grown", size=1).id, "available")
    s = _sdk_wait_snapshot(bs, bs.create_snapshot(volume_id=v.id, name="at-1g"))
    bs.extend_volume(v, 2)
    wait_for(lambda: bs.get_volume(v.id), lambda x: x.size == 2 and x.status == "available",
             "the volume to be extended to 2 GiB", bad=lambda x: x.status.startswith("error"))
    with pytest.raises(sdk_exc.BadRequestException):
        bs.revert_volume_to_snapshot(v, s)
    vol = bs.get_volume(v.id)
    assert vol.size == 2 and vol.status == "available", vol
    assert bs.get_snapshot(s.id).status == "available"


def _backend_of(host: str) -> str:
    """host@backend#pool -> backend"""
    assert host and "@" in host and "#" in host, host
    return host.split("@", 1)[1].split("#", 1)[0]


def test_sdk_copies_stay_on_the_sources_pool(hearthd_factory, sdk_env, tmp_path):
    """Two file backends in two zones; alpha is much larger, so the scheduler
    prefers it for a volume with no zone. A volume made from a snapshot or a
    source volume on beta is made on beta, in beta's zone, whatever the
    scheduler would prefer; asking for another zone is refused (Cinder's
    cloned_volume_same_az: InvalidInput, 400)."""
    for d in ("alpha", "beta"):
        (tmp_path / d).mkdir()
    config = tmp_path / "two-zones.toml"
    config.write_text(f"""
storage_availability_zone = "zone-a"

[backends.alpha]
driver = "file"
path = "{tmp_path / 'alpha'}"
size_gb = 100000
backend_availability_zone = "zone-a"

[backends.beta]
driver = "file"
path = "{tmp_path / 'beta'}"
size_gb = 50
backend_availability_zone = "zone-b"
""")
    d = hearthd_factory(config=config)
    conn = sdk_connect(d.endpoint)
    try:
        bs = conn.block_storage
        plain = wait_volume_status(bs, bs.create_volume(name="plain", size=1).id, "available")
        assert _backend_of(plain.host) == "alpha", \
            f"precondition: a volume with no zone should go to the larger backend, went to {plain.host}"

        src = wait_volume_status(bs, bs.create_volume(name="src", size=1,
                                                      availability_zone="zone-b").id, "available")
        assert _backend_of(src.host) == "beta" and src.availability_zone == "zone-b", src
        snap = _sdk_wait_snapshot(bs, bs.create_snapshot(volume_id=src.id, name="on-beta"))

        for name, kw in (("from-snap", {"snapshot_id": snap.id}),
                         ("clone", {"source_volume_id": src.id})):
            v = wait_volume_status(bs, bs.create_volume(name=name, **kw).id, "available",
                                   f"{name} to become available")
            assert v.host == src.host, f"{name} made on {v.host}, its source is on {src.host}"
            assert v.availability_zone == "zone-b", v
            # another zone than the source's: 400
            with pytest.raises(sdk_exc.BadRequestException):
                bs.create_volume(name=f"{name}-elsewhere", availability_zone="zone-a", **kw)
        assert sorted(v.name for v in bs.volumes()) == ["clone", "from-snap", "plain", "src"]
    finally:
        conn.close()
