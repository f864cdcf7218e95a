"""A real Keystone for the client tier, and hearthds that validate its tokens.

The test command (scripts/test.sh) starts one Keystone for the tier with
scripts/identity/keystone.sh and names its directory in HEARTH_KEYSTONE_DIR; run
alone, the session starts (and stops) its own. Each hearthd gets its own catalog
region (`hearth-<port>`), so tests running side by side never see each other's
endpoints. Users (from scripts/identity/bootstrap.py): demo (member of demo), alt
(member of alt), reader (reader of demo), admin (admin of admin), hearth (the service
user hearthd validates with: admin and service on service).
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from support import REPO_ROOT, Clients, Daemon

KEYSTONE_SH = REPO_ROOT / "scripts" / "identity" / "keystone.sh"
CATALOG_PY = REPO_ROOT / "scripts" / "identity" / "catalog.py"


def keystone_python() -> str:
    venv = Path(os.environ.get("HEARTH_KEYSTONE_VENV") or REPO_ROOT / ".venv-keystone")
    return str(venv / "bin" / "python")


@dataclass
class Keystone:
    dir: Path
    data: dict

    @property
    def auth_url(self) -> str:
        return self.data["auth_url"]

    def user(self, name: str) -> dict:
        return self.data["users"][name]

    def project_id(self, name: str) -> str:
        return self.data["projects"][name]["id"]

    def token(self, user: str) -> str:
        """A project-scoped token of `user` (password login)."""
        u = self.user(user)
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "id": u["id"], "password": u["password"]}}},
            "scope": {"project": {"id": u["project_id"]}}}}
        r = requests.post(f"{self.auth_url}/auth/tokens?nocatalog", json=body, timeout=30)
        r.raise_for_status()
        return r.headers["X-Subject-Token"]

    def revoke(self, token: str) -> None:
        r = requests.delete(f"{self.auth_url}/auth/tokens",
                            headers={"X-Auth-Token": token, "X-Subject-Token": token}, timeout=30)
        assert r.status_code == 204, (r.status_code, r.text)

    def catalog(self, action: str, region: str, url: str | None = None) -> None:
        argv = [keystone_python(), str(CATALOG_PY), str(self.dir), action, "--region", region]
        if url:
            argv += ["--url", url]
        subprocess.run(argv, check=True, capture_output=True, timeout=120)


def start_keystone(d: Path, token_expiration: int | None = None) -> Keystone:
    env = dict(os.environ)
    if token_expiration is not None:
        env["KEYSTONE_TOKEN_EXPIRATION"] = str(token_expiration)
    subprocess.run([str(KEYSTONE_SH), "start", str(d)], check=True, timeout=600,
                   stdout=subprocess.DEVNULL, env=env)
    return Keystone(d, json.loads((d / "identity.json").read_text()))


def stop_keystone(d: Path) -> None:
    subprocess.run([str(KEYSTONE_SH), "stop", str(d)], check=False, timeout=120,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def hearthd_config(ks: Keystone, tmp: Path, authtoken_extra: str = "") -> Path:
    """A config validating with `ks`; the service user's password is in a file of its
    own (password_file), as a systemd credential would be."""
    h = ks.user("hearth")
    secret = tmp / "keystone-password"
    secret.write_text(h["password"] + "\n")
    secret.chmod(0o600)
    cfg = tmp / "keystone.toml"
    cfg.write_text(
        'auth_strategy = "keystone"\n'
        "[backends.file-1]\n"
        'driver = "file"\n'
        'volume_backend_name = "file"\n'
        "[keystone_authtoken]\n"
        f'www_authenticate_uri = "{ks.auth_url}"\n'
        f'auth_url = "{ks.data["keystone_url"]}"\n'
        f'username = "{h["name"]}"\n'
        f'password_file = "{secret}"\n'
        'project_name = "service"\n'
        f"{authtoken_extra}\n"
    )
    cfg.chmod(0o600)
    return cfg


class KeystoneClients(Clients):
    """The CLIs with password auth from a clouds.yaml naming each test user; hearth
    is found in the catalog, in the daemon's region."""

    def __init__(self, daemon: Daemon, ks: Keystone, region: str, home: Path):
        super().__init__(daemon, home)
        self.ks = ks
        self.region = region
        clouds = {}
        for name in ("demo", "alt", "reader", "admin"):
            u = ks.user(name)
            clouds[name] = {
                "auth": {"auth_url": ks.auth_url, "username": u["name"], "password": u["password"],
                         "project_id": u["project_id"], "user_domain_id": "default"},
                "region_name": region,
                "identity_api_version": 3,
                "volume_api_version": 3,
            }
        cfg_dir = home / ".config" / "openstack"
        cfg_dir.mkdir(parents=True, exist_ok=True)
        (cfg_dir / "clouds.yaml").write_text(json.dumps({"clouds": clouds}))
        self.env["OS_CLIENT_CONFIG_FILE"] = str(cfg_dir / "clouds.yaml")
        # The cinder CLI takes the region from the environment only.
        self.env["OS_REGION_NAME"] = region

    def osc(self, cloud: str, *args: str, **kw):
        return self.run([str(self.bin / "openstack"), "--debug", "--os-cloud", cloud, *args], **kw)

    def osc_json(self, cloud: str, *args: str):
        return self.osc(cloud, *args, "-f", "json").json()

    def cinder_as(self, user: str, *args: str, **kw):
        u = self.ks.user(user)
        argv = [str(self.bin / "cinder"), "--debug", "--os-auth-url", self.ks.auth_url,
                # One argument: a generated password may begin with "-", which
                # argparse would take for an option (seen: "-IL8Zm4...").
                "--os-username", u["name"], f"--os-password={u['password']}",
                "--os-project-id", u["project_id"], "--os-user-domain-id", "default", *args]
        return self.run(argv, **kw)


@pytest.fixture(scope="session")
def keystone(tmp_path_factory):
    given = os.environ.get("HEARTH_KEYSTONE_DIR")
    if given:
        d = Path(given)
        yield Keystone(d, json.loads((d / "identity.json").read_text()))
        return
    d = tmp_path_factory.mktemp("keystone")
    ks = start_keystone(d)
    try:
        yield ks
    finally:
        stop_keystone(d)


@pytest.fixture
def ks_daemon(request, hearthd_factory, keystone, tmp_path):
    """A hearthd validating with the session's Keystone, in its own catalog region.
    A test may add [keystone_authtoken] lines with @pytest.mark.authtoken("...")."""
    marker = request.node.get_closest_marker("authtoken")
    d = hearthd_factory(config=hearthd_config(keystone, tmp_path, marker.args[0] if marker else ""))
    region = f"hearth-{d.port}"
    keystone.catalog("add", region, f"{d.base_url}/v3/%(project_id)s")
    yield d, region
    keystone.catalog("remove", region)


@pytest.fixture
def ks_clients(ks_daemon, keystone, tmp_path):
    d, region = ks_daemon
    return KeystoneClients(d, keystone, region, tmp_path / "home")
