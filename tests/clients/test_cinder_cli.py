"""The cinder CLI (python-cinderclient) against a real hearthd, Cinder's noauth
convention: `cinder --os-auth-type noauth --os-endpoint .../v3/<project>
--os-user-id demo --os-project-id <project> ...` (token `demo:<project>`).

cinder has no machine-readable output, so the tables it prints are parsed
(support.parse_table / parse_kv / parse_tables).
"""

from __future__ import annotations

import ast

from support import PROJECT_ID, parse_kv, parse_table, parse_tables, wait_for


def _show(clients, ref) -> dict[str, str]:
    return parse_kv(clients.cinder("show", ref).stdout)


def _metadata(shown: dict[str, str]) -> dict[str, str]:
    """`cinder show` prints metadata as 'k : v' lines."""
    out = {}
    for line in shown["metadata"].splitlines():
        if line.strip():
            k, _, v = line.partition(" : ")
            out[k.strip()] = v.strip()
    return out


def _wait_available(clients, ref, what, ok=lambda v: True):
    return wait_for(lambda: _show(clients, ref),
                    lambda v: v["status"] == "available" and ok(v), what,
                    bad=lambda v: v["status"].startswith("error"))


def _wait_gone(clients, vid, name):
    res = wait_for(lambda: clients.cinder("show", vid, check=False),
                   lambda r: r.returncode != 0, f"volume {name} to be deleted")
    assert any("No volume with a name or ID" in l for l in res.error_lines()), \
        res.report("cinder show after delete failed, but not with not-found")


def _quota(clients, verb="quota-show") -> dict[str, int]:
    return {k: int(v) for k, v in parse_kv(clients.cinder(verb, PROJECT_ID).stdout).items()}


def _usage(clients) -> dict[str, dict[str, str]]:
    return {r["Type"]: r for r in parse_table(clients.cinder("quota-usage", PROJECT_ID).stdout)}


def _limits(clients) -> dict[str, int]:
    return {k: int(v) for k, v in parse_kv(clients.cinder("absolute-limits").stdout).items()}


def test_cinder_volume_lifecycle(clients):
    # --- pools -----------------------------------------------------------------
    pools = parse_tables(clients.cinder("get-pools").stdout)
    assert pools, "cinder get-pools printed no pool"
    names = [{r["Property"]: r["Value"] for r in t}["name"] for t in pools]
    assert all("@" in n and "#" in n for n in names), names

    detailed = [{r["Property"]: r["Value"] for r in t}
                for t in parse_tables(clients.cinder("get-pools", "--detail").stdout)]
    assert sorted(d["name"] for d in detailed) == sorted(names)
    for d in detailed:
        assert d.get("volume_backend_name"), d
        for cap in ("total_capacity_gb", "free_capacity_gb", "storage_protocol"):
            assert cap in d, f"pool capability {cap} missing: {d}"
    backend = detailed[0]["volume_backend_name"]

    # --- types -----------------------------------------------------------------
    created_type = parse_table(clients.cinder("type-create", "ct1").stdout)
    assert [r["Name"] for r in created_type] == ["ct1"], created_type
    type_id = created_type[0]["ID"]
    clients.cinder("type-key", "ct1", "set", f"volume_backend_name={backend}")

    types = {r["Name"]: r for r in parse_table(clients.cinder("type-list").stdout)}
    assert "ct1" in types and types["ct1"]["ID"] == type_id, types
    assert types["ct1"]["Is_Public"] == "True", types

    specs = {r["Name"]: r for r in parse_table(clients.cinder("extra-specs-list").stdout)}
    assert ast.literal_eval(specs["ct1"]["extra_specs"]) == {"volume_backend_name": backend}, specs

    # --- create --------------------------------------------------------------
    created = parse_kv(clients.cinder("create", "--name", "c1", "--metadata", "a=b", "1").stdout)
    vid = created["id"]
    assert created["name"] == "c1" and created["size"] == "1", created
    assert created["status"] in ("creating", "available"), created

    vol = _wait_available(clients, vid, "c1 to become available")
    assert vol["id"] == vid and vol["size"] == "1"
    assert vol["bootable"] == "false", vol
    assert vol["availability_zone"], vol

    # --- list / show by name -----------------------------------------------------
    listed = parse_table(clients.cinder("list").stdout)
    assert [(r["ID"], r["Name"], r["Status"], r["Size"]) for r in listed] == \
        [(vid, "c1", "available", "1")], listed

    shown = _show(clients, "c1")
    assert shown["id"] == vid
    assert _metadata(shown) == {"a": "b"}, shown
    assert shown["os-vol-tenant-attr:tenant_id"] == PROJECT_ID, shown

    # --- metadata ------------------------------------------------------------------
    clients.cinder("metadata", "c1", "set", "k1=v1")
    assert _metadata(_show(clients, "c1")) == {"a": "b", "k1": "v1"}

    # --- extend --------------------------------------------------------------------
    clients.cinder("extend", "c1", "2")
    _wait_available(clients, vid, "c1 to be extended to 2 GiB", ok=lambda v: v["size"] == "2")

    # --- quotas ----------------------------------------------------------------------
    defaults = _quota(clients, "quota-defaults")
    assert {k: defaults[k] for k in ("volumes", "snapshots", "gigabytes", "backups",
                                      "backup_gigabytes", "per_volume_gigabytes")} == \
        {"volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10,
         "backup_gigabytes": 1000, "per_volume_gigabytes": -1}, defaults

    quota = _quota(clients)
    assert quota["volumes"] == 10 and quota["gigabytes"] == 1000, quota

    usage = _usage(clients)
    assert usage["volumes"]["In_use"] == "1" and usage["volumes"]["Limit"] == "10", usage
    assert usage["gigabytes"]["In_use"] == "2" and usage["gigabytes"]["Limit"] == "1000", usage

    updated = parse_kv(clients.cinder("quota-update", "--volumes", "20", PROJECT_ID).stdout)
    assert updated["volumes"] == "20", updated
    assert _quota(clients)["volumes"] == 20
    assert _quota(clients, "quota-defaults")["volumes"] == 10  # defaults unchanged

    limits = _limits(clients)
    assert limits["maxTotalVolumes"] == 20, limits
    assert limits["maxTotalVolumeGigabytes"] == 1000, limits
    assert limits["totalVolumesUsed"] == 1, limits
    assert limits["totalGigabytesUsed"] == 2, limits

    # --- zones, pools, services ------------------------------------------------------
    zones = parse_table(clients.cinder("availability-zone-list").stdout)
    assert {"Name": vol["availability_zone"], "Status": "available"} in zones, zones

    services = parse_table(clients.cinder("service-list").stdout)
    vol_services = [s for s in services if s["Binary"] == "cinder-volume"]
    assert vol_services, services
    assert all(s["Status"] == "enabled" and s["State"] == "up" for s in vol_services), services

    # --- a volume of the new type lands on that backend ---------------------------------
    c2 = parse_kv(clients.cinder("create", "--volume-type", "ct1", "--name", "c2", "1").stdout)
    c2 = _wait_available(clients, c2["id"], "c2 to become available")
    assert c2["volume_type"] == "ct1", c2
    host = c2.get("os-vol-host-attr:host", "")
    assert host in names, f"c2 placed on {host!r}, not one of the pools {names}"

    # --- delete ------------------------------------------------------------------------
    for ref, name in ((vid, "c1"), (c2["id"], "c2")):
        out = clients.cinder("delete", name)
        assert "accepted" in out.stdout, out.report("unexpected delete output")
        _wait_gone(clients, ref, name)
    assert parse_table(clients.cinder("list").stdout) == []
    assert _limits(clients)["totalVolumesUsed"] == 0


def test_cinder_quota_enforcement(clients):
    q1 = parse_kv(clients.cinder("create", "--name", "q1", "1").stdout)
    _wait_available(clients, q1["id"], "q1 to become available")
    assert _usage(clients)["volumes"]["In_use"] == "1"

    # volumes quota == current count: one more volume is over quota (413)
    updated = parse_kv(clients.cinder("quota-update", "--volumes", "1", PROJECT_ID).stdout)
    assert updated["volumes"] == "1", updated
    res = clients.cinder("create", "--name", "q2", "1", expect_fail=True)
    assert any("HTTP 413" in l for l in res.error_lines()), \
        res.report("create over the volumes quota did not fail with HTTP 413")
    assert [r["Name"] for r in parse_table(clients.cinder("list").stdout)] == ["q1"]
    assert _usage(clients)["volumes"]["In_use"] == "1"
    assert _limits(clients)["totalVolumesUsed"] == 1

    # gigabytes quota: extending past it is refused (413) and the size stays
    clients.cinder("quota-update", "--volumes", "10", "--gigabytes", "1", PROJECT_ID)
    res = clients.cinder("extend", "q1", "2", expect_fail=True)
    assert any("HTTP 413" in l for l in res.error_lines()), \
        res.report("extend over the gigabytes quota did not fail with HTTP 413")
    shown = _show(clients, "q1")
    assert shown["size"] == "1" and shown["status"] == "available", shown
    assert _usage(clients)["gigabytes"]["In_use"] == "1"

    # and a create that would pass the volume count but not the gigabytes
    res = clients.cinder("create", "--name", "q2", "1", expect_fail=True)
    assert any("HTTP 413" in l for l in res.error_lines()), \
        res.report("create over the gigabytes quota did not fail with HTTP 413")

    # raising the quota again lets the same request through: failed requests
    # did not consume quota
    clients.cinder("quota-update", "--gigabytes", "1000", PROJECT_ID)
    q2 = parse_kv(clients.cinder("create", "--name", "q2", "1").stdout)
    _wait_available(clients, q2["id"], "q2 to become available")
    usage = _usage(clients)
    assert usage["volumes"]["In_use"] == "2" and usage["gigabytes"]["In_use"] == "2", usage
