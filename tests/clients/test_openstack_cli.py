"""The openstack CLI (python-openstackclient) against a real hearthd, no Keystone:
`openstack --os-auth-type none --os-endpoint http://127.0.0.1:PORT/v3/<project> ...`.

Not covered here because the CLI itself needs other services without Keystone
(see shared notes/clients.md): `openstack quota show <project>` (looks the
project up in identity) and `volume attachment create` (looks the server up in
Nova). Quotas are exercised through the cinder CLI and the SDK instead.
"""

from __future__ import annotations

from support import wait_for


def _pools(clients):
    pools = clients.openstack_json("volume", "backend", "pool", "list", "--long")
    assert isinstance(pools, list) and pools, f"no pools reported: {pools!r}"
    for p in pools:
        # host@backend#pool
        assert "@" in p["Name"] and "#" in p["Name"], f"pool name not host@backend#pool: {p!r}"
        assert isinstance(p["Capabilities"], dict), p
        assert p["Capabilities"].get("volume_backend_name"), f"pool without volume_backend_name: {p!r}"
    return pools


def _show(clients, ref):
    return clients.openstack_json("volume", "show", ref)


def test_openstack_volume_lifecycle(clients):
    # --- pools: the backend name to pin a type to -------------------------
    pools = _pools(clients)
    backend = pools[0]["Capabilities"]["volume_backend_name"]
    short = clients.openstack_json("volume", "backend", "pool", "list")
    assert sorted(p["Name"] for p in short) == sorted(p["Name"] for p in pools)

    # --- volume type --------------------------------------------------------
    t1 = clients.openstack_json(
        "volume", "type", "create", "--property", f"volume_backend_name={backend}", "t1")
    assert t1["name"] == "t1"
    assert t1["id"]
    assert t1["properties"] == {"volume_backend_name": backend}, t1

    # --- create -------------------------------------------------------------
    created = clients.openstack_json(
        "volume", "create", "--size", "1", "--type", "t1", "--property", "a=b", "v1")
    vid = created["id"]
    assert vid and created["name"] == "v1", created
    assert created["size"] == 1, created
    assert created["type"] == "t1", created
    assert created["properties"] == {"a": "b"}, created
    assert created["status"] in ("creating", "available"), created

    vol = wait_for(lambda: _show(clients, vid), lambda v: v["status"] == "available",
                   "v1 to become available", bad=lambda v: v["status"].startswith("error"))
    assert vol["size"] == 1 and vol["name"] == "v1"

    # --- list / show by name ------------------------------------------------
    listed = clients.openstack_json("volume", "list")
    assert [(v["ID"], v["Name"], v["Status"], v["Size"]) for v in listed] == \
        [(vid, "v1", "available", 1)], listed

    by_name = _show(clients, "v1")
    assert by_name["id"] == vid
    assert by_name["type"] == "t1"
    assert by_name["properties"] == {"a": "b"}
    assert by_name["availability_zone"], by_name
    assert by_name["bootable"] is False, by_name  # OSC turns the API's "false" into a bool
    assert by_name["encrypted"] is False, by_name
    assert by_name["attachments"] == [], by_name

    # --- metadata -----------------------------------------------------------
    clients.openstack("volume", "set", "--property", "k=v", "v1")
    assert _show(clients, "v1")["properties"] == {"a": "b", "k": "v"}

    # --- extend -------------------------------------------------------------
    clients.openstack("volume", "set", "--size", "2", "v1")
    vol = wait_for(lambda: _show(clients, vid),
                   lambda v: v["size"] == 2 and v["status"] == "available",
                   "v1 to be extended to 2 GiB", bad=lambda v: v["status"].startswith("error"))
    assert vol["properties"] == {"a": "b", "k": "v"}  # extend keeps metadata

    # --- types --------------------------------------------------------------
    types = clients.openstack_json("volume", "type", "list", "--long")
    mine = [t for t in types if t["Name"] == "t1"]
    assert len(mine) == 1, types
    assert mine[0]["ID"] == t1["id"]
    assert mine[0]["Properties"] == {"volume_backend_name": backend}, mine
    assert mine[0]["Is Public"] is True, mine

    shown = clients.openstack_json("volume", "type", "show", "t1")
    assert shown["id"] == t1["id"] and shown["name"] == "t1"
    assert shown["properties"] == {"volume_backend_name": backend}, shown

    # --- zones, pools, services, summary -----------------------------------
    zones = clients.openstack_json("availability", "zone", "list", "--volume")
    assert {"Zone Name": vol["availability_zone"], "Zone Status": "available"} in \
        [{k: z[k] for k in ("Zone Name", "Zone Status")} for z in zones], zones

    _pools(clients)

    services = clients.openstack_json("volume", "service", "list")
    vol_services = [s for s in services if s["Binary"] == "cinder-volume"]
    assert vol_services, services
    assert all(s["Status"] == "enabled" and s["State"] == "up" for s in vol_services), services
    assert all(s["Zone"] for s in vol_services), services

    summary = clients.openstack_json("volume", "summary")
    assert summary["Total Count"] == 1, summary
    assert summary["Total Size"] == 2, summary

    # --- delete -------------------------------------------------------------
    clients.openstack("volume", "delete", "v1")

    def gone():
        return clients.openstack("volume", "show", vid, check=False)

    res = wait_for(gone, lambda r: r.returncode != 0, "v1 to be deleted",
                   bad=lambda r: r.returncode == 0 and r.json()["status"].startswith("error"))
    assert "No volume" in res.stderr or "could not be found" in res.stderr or "404" in res.stderr, \
        res.report("volume show after delete failed, but not with not-found")
    assert clients.openstack_json("volume", "list") == []
    assert clients.openstack_json("volume", "summary")["Total Count"] == 0
