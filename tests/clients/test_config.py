"""hearthd's configuration as the clients see it: the backends, zone and
default quotas of a --config file show up in pools, zones and quota sets, and
volume types pinned with volume_backend_name land on the right backend.
Driven with openstacksdk (the fastest of the three clients)."""

from __future__ import annotations

import tomllib

import pytest

from support import FIXTURES_DIR, PROJECT_ID, WAIT_TIMEOUT, sdk_connect, wait_for

# Cinder's quota options -> quota-set keys
QUOTA_KEYS = {
    "quota_volumes": "volumes",
    "quota_snapshots": "snapshots",
    "quota_gigabytes": "gigabytes",
    "quota_backups": "backups",
    "quota_backup_gigabytes": "backup_gigabytes",
    "quota_groups": "groups",
    "per_volume_size_limit": "per_volume_gigabytes",
}


def _backend_of(pool_name: str) -> str:
    """host@backend#pool -> backend"""
    assert "@" in pool_name and "#" in pool_name, pool_name
    return pool_name.split("@", 1)[1].split("#", 1)[0]


def _check_config_visible(bs, cfg: dict):
    pools = list(bs.backend_pools())
    want = {name: b.get("volume_backend_name", name) for name, b in cfg["backends"].items()}
    got = {_backend_of(p.name): p.capabilities.get("volume_backend_name") for p in pools}
    assert got == want, f"pools {[(p.name, p.capabilities) for p in pools]} vs config {want}"

    zone = cfg.get("storage_availability_zone", "nova")
    zones = {z.name: z.state for z in bs.availability_zones()}
    assert zones.get(zone) == {"available": True}, zones

    defaults = bs.get_quota_set_defaults(PROJECT_ID)
    for opt, key in QUOTA_KEYS.items():
        if opt in cfg.get("quota", {}):
            assert getattr(defaults, key) == cfg["quota"][opt], (opt, defaults)
    return pools


@pytest.mark.hearthd_config("file.toml")
def test_fixture_file_toml(sdk):
    cfg = tomllib.loads((FIXTURES_DIR / "file.toml").read_text())
    bs = sdk.block_storage
    _check_config_visible(bs, cfg)
    v = bs.create_volume(name="cfg1", size=1)
    v = bs.wait_for_status(v, status="available", failures=["error"], interval=0.5,
                           wait=WAIT_TIMEOUT)
    assert v.availability_zone == cfg.get("storage_availability_zone", "nova"), v


def test_two_backends_zone_and_quotas(hearthd_factory, sdk_env, tmp_path):
    config = tmp_path / "two.toml"
    config.write_text(f"""
storage_availability_zone = "zone-a"

[quota]
quota_volumes = 3
quota_gigabytes = 7

[backends.alpha]
driver = "file"
volume_backend_name = "alpha-be"
path = "{tmp_path / 'alpha'}"

[backends.beta]
driver = "file"
volume_backend_name = "beta-be"
path = "{tmp_path / 'beta'}"
""")
    (tmp_path / "alpha").mkdir()
    (tmp_path / "beta").mkdir()
    cfg = tomllib.loads(config.read_text())

    d = hearthd_factory(config=config)
    conn = sdk_connect(d.endpoint)
    try:
        bs = conn.block_storage
        _check_config_visible(bs, cfg)
        assert bs.get_quota_set(PROJECT_ID).volumes == 3
        assert bs.get_limits().absolute.max_total_volume_gigabytes == 7

        # a type pinned to each backend places its volumes there
        for be_section, be_name in (("beta", "beta-be"), ("alpha", "alpha-be")):
            t = bs.create_type(name=f"on-{be_section}",
                               extra_specs={"volume_backend_name": be_name})
            v = bs.create_volume(name=f"v-{be_section}", size=1, volume_type=t.name)
            v = bs.wait_for_status(v, status="available", failures=["error"], interval=0.5,
                                   wait=WAIT_TIMEOUT)
            assert v.availability_zone == "zone-a", v
            host = v.host  # os-vol-host-attr:host, host@backend#pool
            assert host and _backend_of(host) == be_section, \
                f"volume of type on-{be_section} placed on {host!r}"

        # a type pinned to a backend that does not exist: no valid host -> error
        t = bs.create_type(name="nowhere", extra_specs={"volume_backend_name": "no-such-be"})
        v = bs.create_volume(name="v-nowhere", size=1, volume_type=t.name)
        wait_for(lambda: bs.get_volume(v.id), lambda x: x.status == "error",
                 "a volume with no matching backend to go to error",
                 bad=lambda x: x.status == "available")
    finally:
        conn.close()
