"""auth_strategy = "keystone" against a real Keystone: the clients log in with
passwords (clouds.yaml), find hearth in the catalog and run the lifecycle; projects
are isolated (404), readers cannot write and members cannot do admin actions (403);
revoked and bogus tokens are 401; service tokens are validated; a stopped Keystone
is 503 and nothing changes."""

from __future__ import annotations

import time

import pytest
import requests

from keystone import (  # noqa: F401 (fixtures)
    KeystoneClients, hearthd_config, keystone, ks_clients, ks_daemon, start_keystone, stop_keystone)
from support import WAIT_TIMEOUT, parse_tables, wait_for


def status(c: KeystoneClients, cloud: str, vid: str) -> str:
    return c.osc_json(cloud, "volume", "show", vid)["status"]


def wait_available(c: KeystoneClients, cloud: str, vid: str) -> None:
    wait_for(lambda: status(c, cloud, vid), lambda s: s == "available", f"{vid} available",
             bad=lambda s: s.startswith("error"))


def test_lifecycle_with_password_auth_and_the_catalog(ks_clients):
    c = ks_clients
    v = c.osc_json("demo", "volume", "create", "--size", "1", "--property", "owner=demo", "ks1")
    wait_available(c, "demo", v["id"])
    c.osc("demo", "volume", "set", "--size", "2", v["id"])
    wait_for(lambda: c.osc_json("demo", "volume", "show", v["id"])["size"], lambda s: s == 2, "extended")
    s = c.osc_json("demo", "volume", "snapshot", "create", "--volume", v["id"], "ks1-snap")
    wait_for(lambda: c.osc_json("demo", "volume", "snapshot", "show", s["id"])["status"],
             lambda x: x == "available", "snapshot available")
    v2 = c.osc_json("demo", "volume", "create", "--snapshot", s["id"], "ks2")
    wait_available(c, "demo", v2["id"])
    listed = {x["ID"] for x in c.osc_json("demo", "volume", "list")}
    assert {v["id"], v2["id"]} <= listed
    # The volume's user and project are the token's, as Keystone said.
    shown = c.osc_json("admin", "volume", "show", v["id"])
    assert shown["os-vol-tenant-attr:tenant_id"] == c.ks.project_id("demo"), shown
    assert shown["user_id"] == c.ks.user("demo")["id"], shown
    # The cinder CLI with password auth, through the catalog: list, then attach and
    # detach as Nova does (attachments API, a connector, complete, delete).
    assert v["id"] in c.cinder_as("demo", "list").stdout
    mv = ("--os-volume-api-version", "3.54")
    server = "5d4f4b8e-2a7c-4c52-9b1e-2f0d6b1a7c11"
    res = c.cinder_as("demo", *mv, "attachment-create", "--connect", "True", "--initiator",
                      "iqn.1994-05.com.redhat:ks", "--ip", "127.0.0.1", "--host", "ks-host", v["id"], server)
    tables = [{r["Property"]: r["Value"] for r in t} for t in parse_tables(res.stdout)]
    aid = tables[0]["id"]
    assert tables[1]["driver_volume_type"] == "local", res.report("no connection_info")
    c.cinder_as("demo", *mv, "attachment-complete", aid)
    assert status(c, "demo", v["id"]) == "in-use"
    c.cinder_as("demo", *mv, "attachment-delete", aid)
    assert status(c, "demo", v["id"]) == "available"
    c.osc("demo", "volume", "delete", v2["id"])
    c.osc("demo", "volume", "snapshot", "delete", s["id"])
    wait_for(lambda: c.osc("demo", "volume", "snapshot", "list", "-f", "value").stdout.strip(),
             lambda x: x == "", "snapshot deleted")
    c.osc("demo", "volume", "delete", v["id"])


def test_openstacksdk_with_password_auth(ks_clients):
    import openstack

    c = ks_clients
    u = c.ks.user("demo")
    conn = openstack.connect(auth_url=c.ks.auth_url, username=u["name"], password=u["password"],
                             project_id=u["project_id"], user_domain_id="default",
                             region_name=c.region, load_yaml_config=False, load_envvars=False)
    v = conn.block_storage.create_volume(name="ks-sdk", size=1)
    v = conn.block_storage.wait_for_status(v, status="available", failures=["error"], interval=0.5,
                                           wait=WAIT_TIMEOUT)
    conn.block_storage.delete_volume(v)
    conn.block_storage.wait_for_delete(v, interval=0.5, wait=WAIT_TIMEOUT)


def test_projects_are_isolated_and_roles_decide(ks_clients):
    c = ks_clients
    v = c.osc_json("demo", "volume", "create", "--size", "1", "mine")
    wait_available(c, "demo", v["id"])

    # alt (another project) cannot list, show, change, attach, snapshot or delete it.
    assert v["id"] not in c.osc("alt", "volume", "list").stdout
    for args in (["volume", "show", v["id"]], ["volume", "set", "--name", "x", v["id"]],
                 ["volume", "delete", v["id"]],
                 ["volume", "snapshot", "create", "--volume", v["id"], "s"]):
        r = c.osc("alt", *args, expect_fail=True)
        assert "No volume with a name or ID" in r.stderr or "404" in r.stderr, r.report(f"alt: {args}")
    r = c.cinder_as("alt", "--os-volume-api-version", "3.27", "attachment-create", v["id"],
                    "0b8a9f4e-6a5d-4a5e-9b3f-6f1f0a8f7c21", expect_fail=True)
    assert "404" in r.stderr or "No volume with a name or ID" in r.stderr, r.report("alt attached")
    assert status(c, "demo", v["id"]) == "available"

    # reader (of demo) reads, and cannot write.
    assert c.osc_json("reader", "volume", "show", v["id"])["id"] == v["id"]
    for args in (["volume", "create", "--size", "1", "nope"], ["volume", "set", "--name", "x", v["id"]],
                 ["volume", "delete", v["id"]]):
        r = c.osc("reader", *args, expect_fail=True)
        assert "403" in r.stderr, r.report(f"reader: {args}")

    # demo (member) cannot do admin actions; admin can, across projects.
    for args in (["volume", "set", "--state", "error", v["id"]],
                 ["volume", "type", "create", "t1"],
                 ["volume", "service", "list"]):
        r = c.osc("demo", *args, expect_fail=True)
        assert "403" in r.stderr, r.report(f"demo: {args}")
    every = {x["ID"] for x in c.osc_json("admin", "volume", "list", "--all-projects")}
    assert v["id"] in every
    c.osc("admin", "volume", "set", "--state", "error", v["id"])
    assert status(c, "demo", v["id"]) == "error"
    c.osc("admin", "volume", "set", "--state", "available", v["id"])
    c.osc("demo", "volume", "delete", v["id"])


def api(d, project: str, token: str, path: str = "/volumes", method: str = "GET", **headers):
    h = {"X-Auth-Token": token, "OpenStack-API-Version": "volume 3.67", **headers}
    return requests.request(method, f"{d.base_url}/v3/{project}{path}", headers=h, timeout=60)


@pytest.mark.authtoken("token_cache_time = 1")
def test_tokens_revoked_bogus_and_of_another_project(ks_daemon, keystone):
    d, _ = ks_daemon
    demo = keystone.project_id("demo")
    token = keystone.token("demo")
    assert api(d, demo, token).status_code == 200
    # The URL's project must be the token's.
    r = api(d, keystone.project_id("alt"), token)
    assert r.status_code == 400 and "badRequest" in r.json(), r.text
    for bad in ("", "not-a-token", token[:-4] + "AAAA"):
        r = api(d, demo, bad)
        assert r.status_code == 401, (bad, r.status_code, r.text)
        assert r.headers["WWW-Authenticate"] == f'Keystone uri="{keystone.auth_url}"'
        assert r.json()["unauthorized"]["code"] == 401
    # Revoked: refused once the cached answer ends (token_cache_time, 300 s by default,
    # is set to 1 s here).
    fresh = keystone.token("demo")
    assert api(d, demo, fresh).status_code == 200
    keystone.revoke(fresh)
    deadline = time.monotonic() + 30
    while api(d, demo, fresh).status_code != 401:
        assert time.monotonic() < deadline, "a revoked token was still accepted after 30 s"
        time.sleep(0.5)



def test_service_tokens(ks_daemon, keystone):
    d, _ = ks_daemon
    demo = keystone.project_id("demo")
    user = keystone.token("demo")
    service = keystone.token("hearth")  # admin and service roles on the service project
    assert api(d, demo, user, **{"X-Service-Token": service}).status_code == 200
    r = api(d, demo, user, **{"X-Service-Token": "bogus"})
    assert r.status_code == 401, r.text
    # A service token is not a user token: it does not make the user an admin.
    r = api(d, demo, user, "/os-services", **{"X-Service-Token": service})
    assert r.status_code == 403, r.text


def test_a_stopped_keystone_is_503_and_nothing_changes(hearthd_factory, tmp_path):
    """With its own Keystone, which it stops half way."""
    ks_dir = tmp_path / "ks"
    ks = start_keystone(ks_dir)
    try:
        d = hearthd_factory(config=hearthd_config(ks, tmp_path))
        demo = ks.project_id("demo")
        cached = ks.token("demo")
        fresh = ks.token("demo")
        assert api(d, demo, cached).json()["volumes"] == []
    finally:
        stop_keystone(ks_dir)
    r = requests.post(f"{d.base_url}/v3/{demo}/volumes", json={"volume": {"size": 1}},
                      headers={"X-Auth-Token": fresh}, timeout=60)
    assert r.status_code == 503, r.text
    assert r.headers.get("Retry-After") and r.json()["serviceUnavailable"]["code"] == 503, r.headers
    # The cached token still reads: nothing was created.
    assert api(d, demo, cached).json()["volumes"] == []
    log = d.stderr_text()
    assert fresh not in log and cached not in log


def test_an_expired_token_is_401_even_when_cached(hearthd_factory, tmp_path):
    """With a Keystone of its own whose tokens live 15 s; hearth caches answers for
    300 s (the default), but never past the token's expiry."""
    ks_dir = tmp_path / "ks"
    ks = start_keystone(ks_dir, token_expiration=15)
    try:
        d = hearthd_factory(config=hearthd_config(ks, tmp_path))
        demo = ks.project_id("demo")
        token = ks.token("demo")
        issued = time.monotonic()
        assert api(d, demo, token).status_code == 200
        while time.monotonic() - issued < 16:
            time.sleep(0.5)
        r = api(d, demo, token)
        assert r.status_code == 401, r.text
        assert api(d, demo, ks.token("demo")).status_code == 200
    finally:
        stop_keystone(ks_dir)
