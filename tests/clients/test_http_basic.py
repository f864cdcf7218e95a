"""auth_strategy = "http_basic": accounts in an htpasswd file (bcrypt), used by the
openstack CLI, the cinder CLI and openstacksdk through keystoneauth's http_basic
plugin. A member works in its project; another project's volumes are invisible; a
reader cannot write; wrong passwords and unknown users are 401."""

from __future__ import annotations

import warnings

import pytest

from support import FIXTURES_DIR, WAIT_TIMEOUT, Clients, wait_for

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

ACCOUNTS = {
    # user: (password, project, roles)
    "alice": ("alice-secret-pw", "proj-a", ["member"]),
    "bob": ("bob-secret-pw", "proj-b", ["member"]),
    "rita": ("rita-secret-pw", "proj-a", ["reader"]),
}


def bcrypt_hash(password: str) -> str:
    # glibc's libxcrypt makes bcrypt ($2b$) hashes; cost 4 keeps the test fast.
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))


@pytest.fixture
def basic_daemon(hearthd_factory, tmp_path):
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("".join(f"{u}:{bcrypt_hash(p)}\n" for u, (p, _, _) in ACCOUNTS.items()))
    users = "".join(f'{u} = {{ project_id = "{proj}", roles = {roles!r} }}\n'.replace("'", '"')
                    for u, (_, proj, roles) in ACCOUNTS.items())
    cfg = tmp_path / "basic.toml"
    base = (FIXTURES_DIR / "file.toml").read_text().replace('auth_strategy = "noauth"\n', "")
    head, tables = base.split("[quota]", 1)
    cfg.write_text(f'auth_strategy = "http_basic"\nhttp_basic_auth_user_file = "{htpasswd}"\n'
                   f"{head}[http_basic_users]\n{users}[quota]{tables}")
    return hearthd_factory(config=cfg)


def osc(c: Clients, user: str, *args: str, password: str | None = None, **kw):
    pw = password or ACCOUNTS[user][0]
    argv = [str(c.bin / "openstack"), "--debug", "--os-auth-type", "http_basic",
            "--os-endpoint", f"{c.daemon.base_url}/v3", "--os-username", user,
            "--os-password", pw, *args]
    return c.run(argv, **kw)


def cinder(c: Clients, user: str, *args: str, **kw):
    # cinderclient insists on a project with any auth type but noauth: the account's.
    argv = [str(c.bin / "cinder"), "--debug", "--os-auth-type", "http_basic",
            "--os-endpoint", f"{c.daemon.base_url}/v3", "--os-username", user,
            "--os-password", ACCOUNTS[user][0], "--os-project-id", ACCOUNTS[user][1], *args]
    return c.run(argv, **kw)


def test_openstack_and_cinder_cli_with_http_basic(basic_daemon, tmp_path):
    c = Clients(basic_daemon, tmp_path / "home")
    v = osc(c, "alice", "volume", "create", "--size", "1", "basic1", "-f", "json").json()
    wait_for(lambda: osc(c, "alice", "volume", "show", v["id"], "-f", "json").json()["status"],
             lambda s: s == "available", "basic1 available", bad=lambda s: s == "error")
    assert v["id"] in cinder(c, "alice", "list").stdout
    cinder(c, "alice", "snapshot-create", "--name", "s1", v["id"])

    # bob (another project) does not see it; rita (reader of proj-a) sees it, cannot write.
    assert v["id"] not in osc(c, "bob", "volume", "list").stdout
    r = osc(c, "bob", "volume", "show", v["id"], expect_fail=True)
    assert "No volume with a name or ID" in r.stderr or "404" in r.stderr, r.report("bob saw it")
    assert osc(c, "rita", "volume", "show", v["id"], "-f", "json").json()["id"] == v["id"]
    r = osc(c, "rita", "volume", "create", "--size", "1", "nope", expect_fail=True)
    assert "403" in r.stderr, r.report("a reader created a volume")
    r = cinder(c, "rita", "delete", v["id"], expect_fail=True)
    assert "403" in r.stderr or "Policy doesn't allow" in r.stderr + r.stdout, r.report("a reader deleted")

    # Wrong password and unknown user: 401.
    r = osc(c, "alice", "volume", "list", password="wrong", expect_fail=True)
    assert "401" in r.stderr, r.report("a wrong password was let in")
    argv = [str(c.bin / "openstack"), "--os-auth-type", "http_basic", "--os-endpoint",
            f"{c.daemon.base_url}/v3", "--os-username", "mallory", "--os-password", "x", "volume", "list"]
    r = c.run(argv, expect_fail=True)
    assert "401" in r.stderr, r.report("an unknown user was let in")

    # No password appears in hearthd's log.
    log = basic_daemon.stderr_text()
    for _, (pw, _, _) in ACCOUNTS.items():
        assert pw not in log


def test_openstacksdk_with_http_basic(basic_daemon):
    import openstack

    conn = openstack.connect(auth_type="http_basic",
                             auth={"endpoint": f"{basic_daemon.base_url}/v3", "username": "alice",
                                   "password": ACCOUNTS["alice"][0]},
                             block_storage_endpoint_override=f"{basic_daemon.base_url}/v3",
                             load_yaml_config=False, load_envvars=False)
    v = conn.block_storage.create_volume(name="basic2", size=1)
    v = conn.block_storage.wait_for_status(v, status="available", failures=["error"],
                                           interval=0.5, wait=WAIT_TIMEOUT)
    names = [x.name for x in conn.block_storage.volumes()]
    assert "basic2" in names
    conn.block_storage.delete_volume(v)
    conn.block_storage.wait_for_delete(v, interval=0.5, wait=WAIT_TIMEOUT)
