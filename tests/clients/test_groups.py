"""Generic volume groups through the openstack CLI (`--os-volume-api-version
3.14`) and the cinder CLI: group types, groups (create, list, show, set, add and
remove volumes, delete with its volumes), group snapshots, and groups made from
a group snapshot or another group.

OSC has no way to make a volume in a group, so that step uses the cinder CLI
(`cinder create --group-id`, 3.13).
"""

from __future__ import annotations

from support import parse_kv, parse_table, wait_for


def _osc(clients, *args, check=True):
    return clients.openstack("--os-volume-api-version", "3.14", *args, check=check)


def _osc_json(clients, *args):
    return clients.openstack_json("--os-volume-api-version", "3.14", *args)


def _group(clients, ref):
    return _osc_json(clients, "volume", "group", "show", ref)


def _wait_group(clients, ref, what):
    return wait_for(lambda: _group(clients, ref), lambda g: g["Status"] == "available", what,
                    bad=lambda g: g["Status"].startswith("error"))


def _volumes_of(clients, group_id):
    ids = [v["ID"] for v in clients.openstack_json("volume", "list")]
    return [i for i in ids if clients.openstack_json("volume", "show", i).get("group_id") == group_id]


def test_openstack_cli_groups(clients):
    # --- types -----------------------------------------------------------------
    clients.openstack_json("volume", "type", "create", "vt1")
    gt = _osc_json(clients, "volume", "group", "type", "create", "--description", "generic", "gt1")
    assert gt["Name"] == "gt1" and gt["Is Public"] is True and gt["Description"] == "generic", gt
    listed = _osc_json(clients, "volume", "group", "type", "list")
    assert [t["Name"] for t in listed] == ["gt1"], listed
    _osc(clients, "volume", "group", "type", "set", "--property", "k=v", "gt1")
    shown = _osc_json(clients, "volume", "group", "type", "show", "gt1")
    assert shown["Properties"] == {"k": "v"}, shown

    # --- a group, a volume in it (cinder CLI), show and list ------------------------
    _osc_json(clients, "volume", "group", "create", "--volume-group-type", "gt1",
              "--volume-type", "vt1", "--name", "g1", "--description", "first")
    g = _wait_group(clients, "g1", "group g1 to be available")
    assert g["Name"] == "g1" and g["Description"] == "first", g
    vt1 = clients.openstack_json("volume", "type", "show", "vt1")["id"]
    assert g["Volume Types"] == [vt1] and g["Group Type"] == gt["ID"], g
    made = parse_kv(clients.cinder("--os-volume-api-version", "3.13", "create", "--volume-type", "vt1",
                                   "--group-id", g["ID"], "--name", "gv1", "1").stdout)
    assert made["group_id"] == g["ID"], made
    wait_for(lambda: clients.openstack_json("volume", "show", "gv1"),
             lambda v: v["status"] == "available", "gv1 to be available",
             bad=lambda v: v["status"].startswith("error"))
    listed = _osc_json(clients, "volume", "group", "list")
    assert [(x["Name"], x["Status"]) for x in listed] == [("g1", "available")], listed

    # --- set, remove and add a volume ------------------------------------------
    _osc(clients, "volume", "group", "set", "--name", "g1b", "--description", "renamed", "g1")
    g = _group(clients, "g1b")
    assert g["Description"] == "renamed", g
    _osc(clients, "volume", "group", "remove", "volume", "g1b", "gv1")
    assert _volumes_of(clients, g["ID"]) == []
    _osc(clients, "volume", "group", "add", "volume", "g1b", "gv1")
    assert len(_volumes_of(clients, g["ID"])) == 1

    # A volume of a group cannot be deleted on its own.
    res = clients.openstack("volume", "delete", "gv1", expect_fail=True)
    assert "group" in res.stderr, res.report("expected the group refusal")

    # --- a group snapshot, and groups made from it and from the group ------------
    _osc_json(clients, "volume", "group", "snapshot", "create", "--name", "gs1", "g1b")
    wait_for(lambda: _osc_json(clients, "volume", "group", "snapshot", "show", "gs1"),
             lambda s: s["Status"] == "available", "gs1 to be available",
             bad=lambda s: (s["Status"] or "").startswith("error"))
    listed = _osc_json(clients, "volume", "group", "snapshot", "list")
    assert [(s["Name"], s["Status"]) for s in listed] == [("gs1", "available")], listed
    _osc_json(clients, "volume", "group", "create", "--group-snapshot", "gs1", "--name", "from-snap")
    _osc_json(clients, "volume", "group", "create", "--source-group", "g1b", "--name", "from-group")
    for name in ("from-snap", "from-group"):
        copy = _wait_group(clients, name, f"group {name} to be available")
        assert len(_volumes_of(clients, copy["ID"])) == 1, name

    # --- deletes: refused while things depend, then everything goes ---------------
    res = _osc(clients, "volume", "group", "delete", "--force", "g1b", check=False)
    assert res.returncode != 0 and "snapshots" in res.stderr, res.report("expected a refusal")
    _osc(clients, "volume", "group", "snapshot", "delete", "gs1")
    wait_for(lambda: _osc(clients, "volume", "group", "snapshot", "list", "-f", "json").json(),
             lambda l: l == [], "gs1 to be deleted")
    res = _osc(clients, "volume", "group", "delete", "from-snap", check=False)
    assert res.returncode != 0 and "delete-volumes" in res.stderr, res.report("expected a refusal")
    for name in ("g1b", "from-snap", "from-group"):
        _osc(clients, "volume", "group", "delete", "--force", name)
    wait_for(lambda: _osc(clients, "volume", "group", "list", "-f", "json").json(),
             lambda l: l == [], "the groups to be deleted")
    wait_for(lambda: clients.openstack_json("volume", "list"), lambda l: l == [],
             "the groups' volumes to be deleted")
    _osc(clients, "volume", "group", "type", "delete", "gt1")
    assert _osc_json(clients, "volume", "group", "type", "list") == []


def test_cinder_cli_groups(clients):
    c = lambda *a, **k: clients.cinder("--os-volume-api-version", "3.14", *a, **k)  # noqa: E731
    c("type-create", "vt1")
    (gt,) = parse_table(c("group-type-create", "gt1").stdout)
    assert gt["Name"] == "gt1", gt
    g = parse_kv(c("group-create", "--name", "g1", "gt1", "vt1").stdout)
    wait_for(lambda: parse_kv(c("group-show", g["id"]).stdout), lambda s: s["status"] == "available",
             "g1 to be available", bad=lambda s: s["status"].startswith("error"))
    v = parse_kv(c("create", "--volume-type", "vt1", "--group-id", g["id"], "--name", "gv1", "1").stdout)
    wait_for(lambda: parse_kv(c("show", v["id"]).stdout), lambda s: s["status"] == "available",
             "gv1 to be available", bad=lambda s: s["status"].startswith("error"))
    s = parse_kv(c("group-snapshot-create", "--name", "gs1", g["id"]).stdout)
    wait_for(lambda: parse_kv(c("group-snapshot-show", s["id"]).stdout),
             lambda x: x["status"] == "available", "gs1 to be available",
             bad=lambda x: x["status"].startswith("error"))
    c("group-snapshot-delete", s["id"])
    wait_for(lambda: c("group-snapshot-show", s["id"], check=False), lambda r: r.returncode != 0,
             "gs1 to be deleted")
    c("group-delete", "--delete-volumes", g["id"])
    wait_for(lambda: c("group-show", g["id"], check=False), lambda r: r.returncode != 0,
             "g1 to be deleted")
    c("group-type-delete", "gt1")
