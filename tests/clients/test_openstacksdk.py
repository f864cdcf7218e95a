"""openstacksdk's block_storage proxy against a real hearthd, no Keystone:
openstack.connect(auth_type='none', auth={'endpoint': EP},
block_storage_endpoint_override=EP).

Quotas go through the block_storage proxy with the project's ID
(get_quota_set / get_quota_set_defaults / update_quota_set), which needs no
identity service. Not used: the cloud layer's get_volume_quotas() /
set_volume_quotas(), which first look the project up in Keystone
(`GET /v3/projects/<id>`), and so cannot work without one.
"""

from __future__ import annotations

import pytest
from openstack import exceptions as sdk_exc

from support import PROJECT_ID, WAIT_TIMEOUT, wait_for


def test_sdk_volume_lifecycle(sdk):
    bs = sdk.block_storage

    # --- pools --------------------------------------------------------------
    pools = list(bs.backend_pools())
    assert pools, "no pools"
    for p in pools:
        assert "@" in p.name and "#" in p.name, p.name
        assert p.capabilities.get("volume_backend_name"), p.capabilities
    backend = pools[0].capabilities["volume_backend_name"]

    # --- types --------------------------------------------------------------
    specs = {"volume_backend_name": backend}
    t = bs.create_type(name="st1", description="sdk type", extra_specs=specs)
    assert t.id and t.name == "st1" and t.extra_specs == specs, t
    assert bs.get_type(t.id).name == "st1"
    assert bs.find_type("st1").id == t.id
    type_names = [x.name for x in bs.types()]
    assert "st1" in type_names and "__DEFAULT__" in type_names, type_names

    # --- create -------------------------------------------------------------
    v = bs.create_volume(name="s1", size=1, volume_type="st1", description="sdk vol",
                         metadata={"a": "b"})
    assert v.id and v.name == "s1" and v.size == 1, v
    assert v.status in ("creating", "available"), v
    v = bs.wait_for_status(v, status="available", failures=["error"], interval=0.5,
                           wait=WAIT_TIMEOUT)
    assert v.volume_type == "st1", v
    assert v.metadata == {"a": "b"}, v
    assert v.description == "sdk vol", v
    assert v.is_bootable is False and v.is_encrypted is False, v
    assert v.attachments == [], v
    assert v.availability_zone, v

    # --- get / find / list ----------------------------------------------------
    assert bs.get_volume(v.id).name == "s1"
    assert bs.find_volume("s1").id == v.id
    assert bs.find_volume(v.id).id == v.id
    assert bs.find_volume("no-such-volume", ignore_missing=True) is None
    assert [x.id for x in bs.volumes()] == [v.id]
    assert [(x.id, x.name) for x in bs.volumes(details=False)] == [(v.id, "s1")]
    assert [x.id for x in bs.volumes(name="s1")] == [v.id]
    assert list(bs.volumes(name="no-such-volume")) == []

    # --- metadata ---------------------------------------------------------------
    bs.set_volume_metadata(v, k="v")
    assert bs.get_volume(v.id).metadata == {"a": "b", "k": "v"}

    # --- extend -----------------------------------------------------------------
    bs.extend_volume(v, 2)
    wait_for(lambda: bs.get_volume(v.id),
             lambda x: x.size == 2 and x.status == "available",
             "s1 to be extended to 2 GiB", bad=lambda x: x.status.startswith("error"))

    # --- zones, services ----------------------------------------------------------
    zones = [(z.name, z.state) for z in bs.availability_zones()]
    assert (v.availability_zone, {"available": True}) in zones, zones
    services = [s for s in bs.services() if s.binary == "cinder-volume"]
    assert services and all(s.state == "up" and s.status == "enabled" for s in services), \
        [s.to_dict() for s in bs.services()]

    # --- limits ---------------------------------------------------------------------
    a = bs.get_limits().absolute
    assert (a.max_total_volumes, a.max_total_volume_gigabytes, a.max_total_snapshots) == \
        (10, 1000, 10), a
    assert (a.total_volumes_used, a.total_gigabytes_used) == (1, 2), a

    # --- quotas (by project id; no identity lookup) -------------------------------------
    q = bs.get_quota_set(PROJECT_ID)
    assert (q.volumes, q.gigabytes, q.snapshots, q.backups) == (10, 1000, 10, 10), q
    qu = bs.get_quota_set(PROJECT_ID, usage=True)
    assert qu.usage["volumes"] == 1 and qu.usage["gigabytes"] == 2, qu
    assert qu.volumes == 10, qu
    d = bs.get_quota_set_defaults(PROJECT_ID)
    assert (d.volumes, d.gigabytes, d.per_volume_gigabytes) == (10, 1000, -1), d
    u = bs.update_quota_set(PROJECT_ID, volumes=15)
    assert u.volumes == 15, u
    assert bs.get_quota_set(PROJECT_ID).volumes == 15
    assert bs.get_quota_set_defaults(PROJECT_ID).volumes == 10
    assert bs.get_limits().absolute.max_total_volumes == 15

    # --- summary ------------------------------------------------------------------------
    s = bs.summary(False)
    assert (s.total_count, s.total_size) == (1, 2), s

    # --- delete -----------------------------------------------------------------------
    bs.delete_volume(v)
    bs.wait_for_delete(v, interval=0.5, wait=WAIT_TIMEOUT)
    with pytest.raises(sdk_exc.NotFoundException):
        bs.get_volume(v.id)
    assert list(bs.volumes()) == []
    assert bs.get_limits().absolute.total_volumes_used == 0

    # the type is unused now and can go
    bs.delete_type(t)
    assert bs.find_type("st1", ignore_missing=True) is None
