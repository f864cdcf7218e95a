"""Fill a freshly bootstrapped test Keystone and describe it for the tests.

Run by scripts/identity/keystone.sh start (with the keystone venv's python) once
gunicorn listens and `keystone-manage bootstrap` made the user `admin` (role `admin`
on project `admin` and on the system), the roles `admin`, `member`, `reader` and the
region RegionOne. This script:

1. waits until GET <url>/v3 answers 200 (each request with a timeout; fails when the
   gunicorn master dies or KEYSTONE_READY_TIMEOUT passes), then until the admin can
   log in;
2. with a system-scoped admin token, creates the role `service`, the projects `demo`,
   `alt`, `service` (domain `default`), the users with random passwords:
     demo    member on demo
     alt     member on alt
     reader  reader on demo
     hearth  admin and service on service (the service user hearthd validates with)
   (the bootstrap user `admin` keeps admin on project admin);
3. logs in as each user (project scope) to check the passwords and roles;
4. writes DIR/identity.json and DIR/identity.env (mode 0600, written then renamed).

Ids are random: tests read them from these files. Usage: bootstrap.py DIR, with the
environment KEYSTONE_URL, KEYSTONE_PORT, KEYSTONE_PID, KEYSTONE_REGION, KEYSTONE_LOG,
KEYSTONE_ADMIN_PASSWORD, KEYSTONE_READY_TIMEOUT (seconds).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import sys
import time
from pathlib import Path

import requests

DOMAIN = "default"
TIMEOUT = 30  # seconds for one request once Keystone is up

PROJECTS = ["demo", "alt", "service"]
# user -> (project, [roles])
USERS = {
    "demo": ("demo", ["member"]),
    "alt": ("alt", ["member"]),
    "reader": ("demo", ["reader"]),
    "hearth": ("service", ["admin", "service"]),
}


class Fail(Exception):
    pass


def env(name: str) -> str:
    v = os.environ.get(name, "")
    if not v:
        raise Fail(f"environment variable {name} is not set")
    return v


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def worker_deaths(log: str) -> int:
    """How often gunicorn reported a dead worker (a worker that cannot load Keystone
    is restarted in a loop while the master still accepts connections)."""
    try:
        with open(log, errors="replace") as f:
            return sum("exited with code" in line for line in f)
    except FileNotFoundError:
        return 0


def wait_ready(url: str, pid: int, log: str, deadline: float) -> None:
    """GET /v3 until 200 with a version document."""
    last = "no answer yet"
    while True:
        if not pid_alive(pid):
            raise Fail(f"the Keystone process (pid {pid}) exited while starting; last: {last}")
        if worker_deaths(log) >= 3:
            raise Fail(f"gunicorn's worker keeps dying (see {log}); last: {last}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise Fail(f"Keystone at {url} did not answer GET /v3 in time; last: {last}")
        try:
            r = requests.get(f"{url}/v3", timeout=min(5.0, max(left, 0.5)))
            if r.status_code == 200 and "version" in r.json():
                return
            last = f"HTTP {r.status_code}: {r.text[:200]}"
        except (requests.RequestException, ValueError) as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.1)


def password_auth(user: str, password: str, scope: dict) -> dict:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": DOMAIN}, "password": password}}}, "scope": scope}}


def project_scope(name: str) -> dict:
    return {"project": {"name": name, "domain": {"id": DOMAIN}}}


class Keystone:
    def __init__(self, url: str):
        self.url = url
        self.s = requests.Session()

    def login(self, user: str, password: str, scope: dict) -> tuple[str, dict]:
        r = self.s.post(f"{self.url}/v3/auth/tokens?nocatalog", json=password_auth(user, password, scope),
                        timeout=TIMEOUT)
        if r.status_code != 201:
            raise Fail(f"login of {user} with scope {scope} failed: HTTP {r.status_code}: {r.text[:500]}")
        return r.headers["X-Subject-Token"], r.json()["token"]

    def call(self, method: str, path: str, token: str, ok=(200,), **kw) -> dict:
        r = self.s.request(method, f"{self.url}/v3{path}", headers={"X-Auth-Token": token},
                           timeout=TIMEOUT, **kw)
        if r.status_code not in ok:
            raise Fail(f"{method} /v3{path} -> HTTP {r.status_code}: {r.text[:500]}")
        return r.json() if r.content else {}


def main() -> None:
    if len(sys.argv) != 2:
        raise Fail("usage: bootstrap.py DIR")
    d = Path(sys.argv[1]).resolve()
    url = env("KEYSTONE_URL").rstrip("/")
    pid = int(env("KEYSTONE_PID"))
    port = int(env("KEYSTONE_PORT"))
    region = env("KEYSTONE_REGION")
    admin_password = env("KEYSTONE_ADMIN_PASSWORD")
    deadline = time.monotonic() + float(env("KEYSTONE_READY_TIMEOUT"))

    wait_ready(url, pid, env("KEYSTONE_LOG"), deadline)
    ks = Keystone(url)
    # Ready for GET, and the admin can log in (bootstrap ran before we were called).
    token, _ = ks.login("admin", admin_password, {"system": {"all": True}})

    def find(kind: str, name: str, **filters) -> dict | None:
        params = {"name": name, **filters}
        items = ks.call("GET", f"/{kind}", token, params=params)[kind]
        return items[0] if items else None

    roles = {}
    for name in ("admin", "member", "reader", "service"):
        role = find("roles", name)
        if role is None:
            role = ks.call("POST", "/roles", token, ok=(201,), json={"role": {"name": name}})["role"]
        roles[name] = role["id"]

    projects = {"admin": find("projects", "admin", domain_id=DOMAIN)}
    if projects["admin"] is None:
        raise Fail("the bootstrap project 'admin' is missing")
    for name in PROJECTS:
        p = find("projects", name, domain_id=DOMAIN)
        if p is None:
            p = ks.call("POST", "/projects", token, ok=(201,), json={"project": {
                "name": name, "domain_id": DOMAIN, "description": f"hearth test project {name}",
                "enabled": True}})["project"]
        projects[name] = p

    admin_user = find("users", "admin", domain_id=DOMAIN)
    if admin_user is None:
        raise Fail("the bootstrap user 'admin' is missing")
    users = {"admin": {"id": admin_user["id"], "name": "admin", "password": admin_password,
                       "project": "admin", "project_id": projects["admin"]["id"], "roles": ["admin"]}}
    for name, (project, role_names) in USERS.items():
        password = secrets.token_urlsafe(18)
        body = {"user": {"name": name, "domain_id": DOMAIN, "password": password, "enabled": True,
                         "default_project_id": projects[project]["id"]}}
        u = find("users", name, domain_id=DOMAIN)
        if u is None:
            u = ks.call("POST", "/users", token, ok=(201,), json=body)["user"]
        else:
            ks.call("PATCH", f"/users/{u['id']}", token, json=body)
        for r in role_names:
            ks.call("PUT", f"/projects/{projects[project]['id']}/users/{u['id']}/roles/{roles[r]}", token,
                    ok=(204,))
        users[name] = {"id": u["id"], "name": name, "password": password, "project": project,
                       "project_id": projects[project]["id"], "roles": role_names}

    # Every user logs in with its password and gets its roles.
    for name, u in users.items():
        _, tok = ks.login(name, u["password"], project_scope(u["project"]))
        got = {r["name"] for r in tok.get("roles", [])}
        missing = set(u["roles"]) - got
        if missing:
            raise Fail(f"user {name} on project {u['project']} lacks roles {sorted(missing)} (has {sorted(got)})")

    auth_url = f"{url}/v3"
    flat = {
        "OS_AUTH_URL": auth_url,
        "OS_IDENTITY_API_VERSION": "3",
        "OS_REGION_NAME": region,
        "OS_USER_DOMAIN_ID": DOMAIN,
        "OS_PROJECT_DOMAIN_ID": DOMAIN,
        "KEYSTONE_URL": url,
        "KEYSTONE_PORT": str(port),
        "KEYSTONE_PID": str(pid),
        "KEYSTONE_DIR": str(d),
        "KEYSTONE_LOG": env("KEYSTONE_LOG"),
        "KEYSTONE_REGION": region,
        "DOMAIN_ID": DOMAIN,
    }
    for name, rid in roles.items():
        flat[f"{name.upper()}_ROLE_ID"] = rid
    for name, p in projects.items():
        flat[f"{name.upper()}_PROJECT_ID"] = p["id"]
        flat[f"{name.upper()}_PROJECT_NAME"] = p["name"]
    for name, u in users.items():
        key = name.upper()
        flat[f"{key}_USER_ID"] = u["id"]
        flat[f"{key}_USERNAME"] = u["name"]
        flat[f"{key}_PASSWORD"] = u["password"]
        flat[f"{key}_USER_PROJECT_ID"] = u["project_id"]

    data = {
        "auth_url": auth_url,
        "keystone_url": url,
        "port": port,
        "pid": pid,
        "dir": str(d),
        "log": env("KEYSTONE_LOG"),
        "region": region,
        "domain_id": DOMAIN,
        "roles": roles,
        "projects": {n: {"id": p["id"], "name": p["name"]} for n, p in projects.items()},
        "users": users,
        "env": flat,
    }
    write(d / "identity.json", json.dumps(data, indent=2, sort_keys=True) + "\n")
    lines = ["# Written by scripts/identity/keystone.sh (bootstrap.py): `. identity.env`"]
    lines += [f"{k}={shlex.quote(v)}" for k, v in flat.items()]
    write(d / "identity.env", "\n".join(lines) + "\n")


def write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


if __name__ == "__main__":
    try:
        main()
    except (Fail, requests.RequestException) as e:
        print(f"bootstrap.py: {e}", file=sys.stderr)
        sys.exit(1)
