"""Add or remove the block-storage catalog entries of one hearthd in a test Keystone.

Run with the keystone venv's python, on a Keystone started by
scripts/identity/keystone.sh (it reads DIR/identity.json for the URL and the admin):

  .venv-keystone/bin/python scripts/identity/catalog.py DIR add --region R \\
      --url 'http://127.0.0.1:PORT/v3/%(project_id)s'
  .venv-keystone/bin/python scripts/identity/catalog.py DIR remove --region R

add: creates the region R (if missing); the services `cinder` (type block-storage)
  and `cinderv3` (type volumev3), devstack's names, which the clients and tempest look
  for, once per Keystone; and for each of them public, internal and admin endpoints in
  region R with the URL (an existing endpoint's URL is updated), plus identity
  endpoints in R (the clients look for every service in their region). Idempotent.
remove: deletes every endpoint in region R, then the region (the services stay: other
  regions use them). Removing a region that does not exist is not an error.

Each hearthd of a parallel test gets its own region; calls on one Keystone are
serialized with a lock on DIR/catalog.lock, so two `add`s never make a service twice.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import sys
import time
from pathlib import Path

import requests

TIMEOUT = 30  # seconds for one request
LOCK_TIMEOUT = 120
SERVICES = [("cinder", "block-storage"), ("cinderv3", "volumev3")]
INTERFACES = ["public", "internal", "admin"]


class Fail(Exception):
    pass


class Keystone:
    def __init__(self, identity: dict):
        self.url = identity["auth_url"].rstrip("/")
        self.s = requests.Session()
        admin = identity["users"]["admin"]
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": admin["name"], "domain": {"id": identity["domain_id"]}, "password": admin["password"]}}},
            "scope": {"system": {"all": True}}}}
        r = self.s.post(f"{self.url}/auth/tokens?nocatalog", json=body, timeout=TIMEOUT)
        if r.status_code != 201:
            raise Fail(f"admin login at {self.url} failed: HTTP {r.status_code}: {r.text[:500]}")
        self.s.headers["X-Auth-Token"] = r.headers["X-Subject-Token"]

    def call(self, method: str, path: str, ok=(200,), **kw) -> tuple[int, dict]:
        r = self.s.request(method, f"{self.url}{path}", timeout=TIMEOUT, **kw)
        if r.status_code not in ok:
            raise Fail(f"{method} {path} -> HTTP {r.status_code}: {r.text[:500]}")
        return r.status_code, (r.json() if r.content else {})


def lock(d: Path):
    f = open(d / "catalog.lock", "w")
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise Fail(f"{d}/catalog.lock still held after {LOCK_TIMEOUT}s") from None
            time.sleep(0.05)


def service_id(ks: Keystone, name: str, stype: str) -> str:
    _, body = ks.call("GET", "/services", params={"type": stype})
    for s in body["services"]:
        if s.get("name") == name:
            return s["id"]
    _, body = ks.call("POST", "/services", ok=(201,), json={"service": {
        "name": name, "type": stype, "enabled": True, "description": "hearth (Block Storage v3)"}})
    return body["service"]["id"]


def identity_service_id(ks: Keystone) -> str:
    _, body = ks.call("GET", "/services", params={"type": "identity"})
    if not body["services"]:
        raise Fail("Keystone has no identity service in its catalog (keystone-manage bootstrap makes it)")
    return body["services"][0]["id"]


def add(ks: Keystone, region: str, url: str) -> None:
    code, _ = ks.call("GET", f"/regions/{region}", ok=(200, 404))
    if code == 404:
        ks.call("POST", "/regions", ok=(201,), json={"region": {
            "id": region, "description": "a hearthd of hearth's tests"}})
    # The clients look for every service in their region: identity too (the openstack
    # CLI maps ids to names through it).
    keystone_url = ks.url[: -len("/v3")] if ks.url.endswith("/v3") else ks.url
    wanted = [(identity_service_id(ks), keystone_url + "/v3")]
    wanted += [(service_id(ks, name, stype), url) for name, stype in SERVICES]
    for sid, url in wanted:
        _, body = ks.call("GET", "/endpoints", params={"service_id": sid, "region_id": region})
        have = {e["interface"]: e for e in body["endpoints"]}
        for iface in INTERFACES:
            e = have.get(iface)
            if e is None:
                ks.call("POST", "/endpoints", ok=(201,), json={"endpoint": {
                    "service_id": sid, "interface": iface, "region_id": region, "url": url, "enabled": True}})
            elif e["url"] != url or not e.get("enabled", True):
                ks.call("PATCH", f"/endpoints/{e['id']}", json={"endpoint": {"url": url, "enabled": True}})


def remove(ks: Keystone, region: str) -> bool:
    """False when there was no such region."""
    code, _ = ks.call("GET", f"/regions/{region}", ok=(200, 404))
    if code == 404:
        return False
    _, body = ks.call("GET", "/endpoints", params={"region_id": region})
    for e in body["endpoints"]:
        ks.call("DELETE", f"/endpoints/{e['id']}", ok=(204, 404))
    ks.call("DELETE", f"/regions/{region}", ok=(204, 404))
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description="block-storage catalog entries of one hearthd, per region")
    ap.add_argument("dir", type=Path, help="the Keystone's directory (keystone.sh start DIR)")
    ap.add_argument("action", choices=["add", "remove"])
    ap.add_argument("--region", required=True, help="region id, one per hearthd")
    ap.add_argument("--url", help="endpoint URL (add), e.g. http://127.0.0.1:8776/v3/%%(project_id)s")
    a = ap.parse_args()
    if a.action == "add" and not a.url:
        ap.error("add needs --url")
    if a.action == "remove" and a.url:
        ap.error("remove takes no --url")
    d = a.dir.resolve()
    try:
        identity = json.loads((d / "identity.json").read_text())
    except (OSError, ValueError) as e:
        raise Fail(f"cannot read {d}/identity.json (did keystone.sh start {d} succeed?): {e}") from None
    with lock(d):
        ks = Keystone(identity)
        if a.action == "add":
            add(ks, a.region, a.url)
            print(f"catalog: region {a.region}: block-storage (cinder), volumev3 (cinderv3) -> {a.url}")
        else:
            if remove(ks, a.region):
                print(f"catalog: region {a.region} removed")
            else:
                print(f"catalog: no region {a.region}: nothing to remove")


if __name__ == "__main__":
    try:
        main()
    except (Fail, requests.RequestException) as e:
        print(f"catalog.py: {e}", file=sys.stderr)
        sys.exit(1)
