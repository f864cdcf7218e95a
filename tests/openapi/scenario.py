#!/usr/bin/env python3
"""A real lifecycle against hearthd, every response held to docs/openapi.json.

schemathesis (tests/openapi/run.sh) sends generated requests, which mostly name
objects that do not exist; this drives the objects through their lives as clients do
(a type, a volume until `available`, its metadata, a snapshot, an attachment, a
backup, a transfer, QoS specs, a group type and group, quotas, the admin views), and
checks that each response's status is documented for its operation and that its
body validates against the documented schema. Then it checks the schemas have teeth:
each real body with a required key removed, or a required field given the wrong
type, must fail to validate.

    tests/openapi/scenario.py URL [--doc docs/openapi.json]

Exit 0 when everything holds, 1 otherwise. Needs jsonschema (.venv-openapi).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from contract import Contract  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PROJECT = "openapi0scenario"
HEADERS = {"X-Auth-Token": f"admin:{PROJECT}", "OpenStack-API-Version": "volume 3.67"}
PREFIX = "/v3/{project_id}"
# Responses documented with a body that hearthd sends empty: os-set_bootable answers
# 200 without one, os-initialize_connection 200 with `connection_info`.
EMPTY_OK = {("POST", PREFIX + "/volumes/{volume_id}/action", 200)}


class Checker:
    def __init__(self, url: str, doc: dict):
        self.url = url.rstrip("/")
        self.doc = doc
        self.contract = Contract(doc)
        self.problems: list[str] = []
        self.seen: list[tuple[str, dict, object]] = []  # (what, schema, body) of 2xx JSON bodies
        self.checked = 0

    # --- the document (tests/openapi/contract.py) ---------------------------------

    def resolve(self, node: dict) -> dict:
        return self.contract.resolve(node)

    def response_schema(self, method: str, template: str, status: int) -> tuple[bool, dict | None, str | None]:
        """(documented, JSON schema or None, content type) of a response."""
        return self.contract.response(method, template, status)

    def validator(self, schema: dict):
        return self.contract.validator(schema)

    # --- requests ---------------------------------------------------------------

    def call(self, method: str, template: str, body=None, query: str = "", expect=None, **params):
        path = template.replace("{project_id}", PROJECT) if template.startswith(PREFIX) else template
        for k, v in params.items():
            path = path.replace("{" + k + "}", urllib.parse.quote(str(v), safe=""))
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path + (f"?{query}" if query else ""), data=data, method=method)
        for k, v in HEADERS.items():
            req.add_header(k, v)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, text, ctype = r.status, r.read().decode(), r.headers.get("Content-Type")
        except urllib.error.HTTPError as e:
            status, text, ctype = e.code, e.read().decode(), e.headers.get("Content-Type")
        what = f"{method} {template} -> {status}"
        self.checked += 1
        documented, schema, doc_ctype = self.response_schema(method, template, status)
        if not documented:
            self.problems.append(f"{what}: status not documented; body {text[:300]}")
        if expect is not None and status not in (expect if isinstance(expect, tuple) else (expect,)):
            self.problems.append(f"{what}: expected {expect}; body {text[:300]}")
        value = None
        if text:
            if doc_ctype and ctype and ctype.split(";")[0] != doc_ctype.split(";")[0]:
                self.problems.append(f"{what}: Content-Type {ctype}, documented {doc_ctype}")
            if ctype and ctype.startswith("application/json"):
                value = json.loads(text)
                if schema is not None:
                    errors = sorted(self.validator(schema).iter_errors(value), key=lambda e: list(e.path))
                    for e in errors[:3]:
                        self.problems.append(f"{what}: {'/'.join(map(str, e.path))}: {e.message[:200]}")
                    if not errors and 200 <= status < 300:
                        self.seen.append((what, schema, value))
        elif schema is not None and documented and (method, template, status) not in EMPTY_OK:
            self.problems.append(f"{what}: documented a body, got none")
        return status, value

    def wait(self, template: str, key: str, want: str, **params) -> dict:
        deadline = time.monotonic() + 60
        while True:
            _, body = self.call("GET", template, expect=200, **params)
            status = (body or {}).get(key, {}).get("status")
            if status == want or time.monotonic() > deadline:
                if status != want:
                    self.problems.append(f"{template} {params}: still {status}, not {want}")
                return body
            if status in ("error", "error_deleting"):
                self.problems.append(f"{template} {params}: went to {status}")
                return body
            time.sleep(0.2)

    def wait_gone(self, template: str, **params) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, _ = self.call("GET", template, expect=(200, 404), **params)
            if status == 404:
                return
            time.sleep(0.2)
        self.problems.append(f"{template} {params}: not gone after 60s")

    # --- the schemas have teeth --------------------------------------------------

    def mutations(self, schema: dict, value):
        """Bodies that must not validate: a required key dropped, a required field of
        the wrong type (at the top and one level down)."""
        s = self.resolve(schema)
        if not isinstance(value, dict) or not isinstance(s, dict):
            return
        for key in s.get("required", []):
            if key in value:
                v = copy.deepcopy(value)
                del v[key]
                yield f"without {key!r}", v
                wrong = {} if isinstance(value[key], list) else []
                v = copy.deepcopy(value)
                v[key] = wrong
                yield f"{key!r} as {json.dumps(wrong)}", v
                inner = self.resolve(s.get("properties", {}).get(key, {}))
                if isinstance(value[key], dict) and isinstance(inner, dict):
                    for ikey in inner.get("required", []):
                        if ikey in value[key]:
                            w = {} if isinstance(value[key][ikey], list) else []
                            v = copy.deepcopy(value)
                            v[key][ikey] = w
                            yield f"{key}.{ikey} as {json.dumps(w)}", v

    def check_teeth(self) -> int:
        n = 0
        for what, schema, value in self.seen:
            validator = self.validator(schema)
            for how, bad in self.mutations(schema, value):
                n += 1
                if validator.is_valid(bad):
                    self.problems.append(f"{what}: the body {how} still validates: the schema is too loose")
        return n


def scenario(c: Checker) -> None:
    P = PREFIX
    c.call("GET", "/", expect=300)
    c.call("GET", "/v3/", expect=200)
    _, served = c.call("GET", "/openapi.json", expect=200)
    if served != c.doc:
        c.problems.append("GET /openapi.json is not docs/openapi.json: rebuild hearthd (cargo build --bin hearthd)")
    c.call("GET", "/metrics", expect=200)

    # A volume type.
    _, t = c.call(
        "POST",
        f"{P}/types",
        {"volume_type": {"name": "oa-type", "description": "openapi", "extra_specs": {"volume_backend_name": "file"}}},
        expect=200,
    )
    tid = t["volume_type"]["id"]
    c.call("GET", f"{P}/types", expect=200)
    c.call("GET", f"{P}/types", query="is_public=none", expect=200)
    c.call("GET", f"{P}/types/default", expect=200)
    c.call("GET", f"{P}/types/{{volume_type_id}}", expect=200, volume_type_id=tid)
    c.call(
        "PUT",
        f"{P}/types/{{volume_type_id}}",
        {"volume_type": {"description": "openapi 2"}},
        expect=200,
        volume_type_id=tid,
    )
    c.call(
        "POST",
        f"{P}/types/{{volume_type_id}}/extra_specs",
        {"extra_specs": {"k1": "v1"}},
        expect=200,
        volume_type_id=tid,
    )
    c.call("GET", f"{P}/types/{{volume_type_id}}/extra_specs", expect=200, volume_type_id=tid)
    c.call("GET", f"{P}/types/{{volume_type_id}}/extra_specs/{{key}}", expect=200, volume_type_id=tid, key="k1")
    c.call(
        "PUT",
        f"{P}/types/{{volume_type_id}}/extra_specs/{{key}}",
        {"k1": "v2"},
        expect=200,
        volume_type_id=tid,
        key="k1",
    )
    c.call("DELETE", f"{P}/types/{{volume_type_id}}/extra_specs/{{key}}", expect=202, volume_type_id=tid, key="k1")
    c.call("GET", f"{P}/types/{{volume_type_id}}/encryption", expect=200, volume_type_id=tid)
    _, pt = c.call("POST", f"{P}/types", {"volume_type": {"name": "oa-private", "is_public": False}}, expect=200)
    c.call(
        "POST",
        f"{P}/types/{{volume_type_id}}/action",
        {"addProjectAccess": {"project": "other"}},
        expect=202,
        volume_type_id=pt["volume_type"]["id"],
    )
    c.call(
        "GET", f"{P}/types/{{volume_type_id}}/os-volume-type-access", expect=200, volume_type_id=pt["volume_type"]["id"]
    )
    _, et = c.call("POST", f"{P}/types", {"volume_type": {"name": "oa-encrypted"}}, expect=200)
    etid = et["volume_type"]["id"]
    _, enc = c.call(
        "POST",
        f"{P}/types/{{volume_type_id}}/encryption",
        {
            "encryption": {
                "provider": "luks",
                "cipher": "aes-xts-plain64",
                "key_size": 256,
                "control_location": "front-end",
            }
        },
        expect=200,
        volume_type_id=etid,
    )
    c.call("GET", f"{P}/types/{{volume_type_id}}/encryption", expect=200, volume_type_id=etid)
    c.call("GET", f"{P}/types/{{volume_type_id}}/encryption/{{key}}", expect=200, volume_type_id=etid, key="provider")
    if enc:
        eid = enc["encryption"]["encryption_id"]
        c.call(
            "PUT",
            f"{P}/types/{{volume_type_id}}/encryption/{{key}}",
            {"encryption": {"key_size": 512}},
            expect=200,
            volume_type_id=etid,
            key=eid,
        )
        c.call("DELETE", f"{P}/types/{{volume_type_id}}/encryption/{{key}}", expect=202, volume_type_id=etid, key=eid)

    # A volume and its metadata.
    _, v = c.call(
        "POST",
        f"{P}/volumes",
        {"volume": {"size": 1, "name": "oa-v1", "volume_type": "oa-type", "metadata": {"a": "b"}}},
        expect=202,
    )
    vid = v["volume"]["id"]
    c.wait(f"{P}/volumes/{{volume_id}}", "volume", "available", volume_id=vid)
    c.call("GET", f"{P}/volumes", expect=200)
    c.call("GET", f"{P}/volumes", query="limit=1&with_count=true", expect=200)
    c.call("GET", f"{P}/volumes/detail", expect=200)
    c.call("GET", f"{P}/volumes/detail", query="all_tenants=true&sort=name:asc", expect=200)
    c.call("GET", f"{P}/volumes/summary", expect=200)
    c.call(
        "PUT",
        f"{P}/volumes/{{volume_id}}",
        {"volume": {"name": "oa-v1b", "description": "d"}},
        expect=200,
        volume_id=vid,
    )
    c.call("GET", f"{P}/volumes/{{volume_id}}/encryption", expect=200, volume_id=vid)
    c.call("GET", f"{P}/volumes/{{volume_id}}/metadata", expect=200, volume_id=vid)
    c.call("POST", f"{P}/volumes/{{volume_id}}/metadata", {"metadata": {"c": "d"}}, expect=200, volume_id=vid)
    c.call("PUT", f"{P}/volumes/{{volume_id}}/metadata", {"metadata": {"a": "b", "c": "d"}}, expect=200, volume_id=vid)
    c.call("GET", f"{P}/volumes/{{volume_id}}/metadata/{{key}}", expect=200, volume_id=vid, key="a")
    c.call(
        "PUT", f"{P}/volumes/{{volume_id}}/metadata/{{key}}", {"meta": {"a": "z"}}, expect=200, volume_id=vid, key="a"
    )
    c.call("DELETE", f"{P}/volumes/{{volume_id}}/metadata/{{key}}", expect=200, volume_id=vid, key="c")
    c.call(
        "POST", f"{P}/volumes/{{volume_id}}/action", {"os-set_bootable": {"bootable": True}}, expect=200, volume_id=vid
    )
    c.call(
        "POST",
        f"{P}/volumes/{{volume_id}}/action",
        {"os-update_readonly_flag": {"readonly": False}},
        expect=202,
        volume_id=vid,
    )
    c.call("POST", f"{P}/volumes/{{volume_id}}/action", {"os-extend": {"new_size": 2}}, expect=202, volume_id=vid)
    c.wait(f"{P}/volumes/{{volume_id}}", "volume", "available", volume_id=vid)

    # A snapshot.
    _, s = c.call(
        "POST", f"{P}/snapshots", {"snapshot": {"volume_id": vid, "name": "oa-s1", "metadata": {"x": "y"}}}, expect=202
    )
    sid = s["snapshot"]["id"]
    c.wait(f"{P}/snapshots/{{snapshot_id}}", "snapshot", "available", snapshot_id=sid)
    c.call("GET", f"{P}/snapshots", expect=200)
    c.call("GET", f"{P}/snapshots/detail", query="with_count=true", expect=200)
    c.call("PUT", f"{P}/snapshots/{{snapshot_id}}", {"snapshot": {"name": "oa-s1b"}}, expect=200, snapshot_id=sid)
    c.call("GET", f"{P}/snapshots/{{snapshot_id}}/metadata", expect=200, snapshot_id=sid)
    c.call("POST", f"{P}/snapshots/{{snapshot_id}}/metadata", {"metadata": {"p": "q"}}, expect=200, snapshot_id=sid)
    c.call("GET", f"{P}/snapshots/{{snapshot_id}}/metadata/{{key}}", expect=200, snapshot_id=sid, key="p")

    # An attachment (3.27+).
    connector = {
        "initiator": "iqn.1993-08.org.debian:01:openapi",
        "host": "oa-host",
        "platform": "x86_64",
        "os_type": "linux",
        "multipath": False,
    }
    _, a = c.call(
        "POST",
        f"{P}/attachments",
        {"attachment": {"volume_uuid": vid, "instance_uuid": str(uuid.uuid4()), "connector": connector}},
        expect=200,
    )
    if a:
        aid = a["attachment"]["id"]
        c.call("GET", f"{P}/attachments", expect=200)
        c.call("GET", f"{P}/attachments/detail", expect=200)
        c.call("GET", f"{P}/attachments/{{attachment_id}}", expect=200, attachment_id=aid)
        c.call(
            "POST", f"{P}/attachments/{{attachment_id}}/action", {"os-complete": None}, expect=204, attachment_id=aid
        )
        c.call("GET", f"{P}/volumes/{{volume_id}}", expect=200, volume_id=vid)
        c.call("DELETE", f"{P}/attachments/{{attachment_id}}", expect=200, attachment_id=aid)
        c.wait(f"{P}/volumes/{{volume_id}}", "volume", "available", volume_id=vid)

    # A backup.
    _, b = c.call(
        "POST", f"{P}/backups", {"backup": {"volume_id": vid, "name": "oa-b1", "metadata": {"m": "n"}}}, expect=202
    )
    if b:
        bid = b["backup"]["id"]
        c.wait(f"{P}/backups/{{backup_id}}", "backup", "available", backup_id=bid)
        c.call("GET", f"{P}/backups", expect=200)
        c.call("GET", f"{P}/backups/detail", query="with_progress=true&with_count=true", expect=200)
        c.call("GET", f"{P}/backups/{{backup_id}}", query="with_progress=true", expect=200, backup_id=bid)
        c.call("PUT", f"{P}/backups/{{backup_id}}", {"backup": {"name": "oa-b1b"}}, expect=200, backup_id=bid)
        c.call("GET", f"{P}/backups/{{backup_id}}/export_record", expect=200, backup_id=bid)
        c.call("POST", f"{P}/backups/{{backup_id}}/action", {"os-verify": {}}, expect=200, backup_id=bid)
        c.wait(f"{P}/backups/{{backup_id}}", "backup", "available", backup_id=bid)
        c.call("DELETE", f"{P}/backups/{{backup_id}}", expect=202, backup_id=bid)

    # A transfer, both routes.
    for base in ("volume-transfers", "os-volume-transfer"):
        _, tr = c.call("POST", f"{P}/{base}", {"transfer": {"volume_id": vid, "name": "oa-t"}}, expect=202)
        if tr:
            trid = tr["transfer"]["id"]
            c.call("GET", f"{P}/{base}", expect=200)
            c.call("GET", f"{P}/{base}/detail", expect=200)
            c.call("GET", f"{P}/{base}/{{transfer_id}}", expect=200, transfer_id=trid)
            c.call("DELETE", f"{P}/{base}/{{transfer_id}}", expect=202, transfer_id=trid)

    # QoS specs.
    _, q = c.call(
        "POST",
        f"{P}/qos-specs",
        {"qos_specs": {"name": "oa-qos", "consumer": "back-end", "read_iops_sec": "100"}},
        expect=200,
    )
    qid = q["qos_specs"]["id"]
    c.call("GET", f"{P}/qos-specs", expect=200)
    c.call("GET", f"{P}/qos-specs/{{qos_id}}", expect=200, qos_id=qid)
    c.call("PUT", f"{P}/qos-specs/{{qos_id}}", {"qos_specs": {"write_iops_sec": "50"}}, expect=200, qos_id=qid)
    c.call("GET", f"{P}/qos-specs/{{qos_id}}/associate", query=f"vol_type_id={tid}", expect=202, qos_id=qid)
    c.call("GET", f"{P}/qos-specs/{{qos_id}}/associations", expect=200, qos_id=qid)
    c.call("GET", f"{P}/qos-specs/{{qos_id}}/disassociate", query=f"vol_type_id={tid}", expect=202, qos_id=qid)
    c.call("PUT", f"{P}/qos-specs/{{qos_id}}/delete_keys", {"keys": ["write_iops_sec"]}, expect=202, qos_id=qid)
    c.call("GET", f"{P}/qos-specs/{{qos_id}}/disassociate_all", expect=202, qos_id=qid)
    c.call("DELETE", f"{P}/qos-specs/{{qos_id}}", expect=202, qos_id=qid)

    # A group type, a group, a group snapshot.
    _, gt = c.call(
        "POST",
        f"{P}/group_types",
        {"group_type": {"name": "oa-gt", "group_specs": {"consistent_group_snapshot_enabled": "<is> True"}}},
        expect=202,
    )
    gtid = gt["group_type"]["id"]
    c.call("GET", f"{P}/group_types", expect=200)
    c.call("GET", f"{P}/group_types/{{group_type_id}}", expect=200, group_type_id=gtid)
    c.call(
        "PUT",
        f"{P}/group_types/{{group_type_id}}",
        {"group_type": {"description": "d"}},
        expect=200,
        group_type_id=gtid,
    )
    c.call("GET", f"{P}/group_types/{{group_type_id}}/group_specs", expect=200, group_type_id=gtid)
    c.call(
        "POST",
        f"{P}/group_types/{{group_type_id}}/group_specs",
        {"group_specs": {"k": "v"}},
        expect=202,
        group_type_id=gtid,
    )
    c.call("GET", f"{P}/group_types/{{group_type_id}}/group_specs/{{key}}", expect=200, group_type_id=gtid, key="k")
    c.call(
        "PUT",
        f"{P}/group_types/{{group_type_id}}/group_specs/{{key}}",
        {"k": "w"},
        expect=200,
        group_type_id=gtid,
        key="k",
    )
    c.call("DELETE", f"{P}/group_types/{{group_type_id}}/group_specs/{{key}}", expect=202, group_type_id=gtid, key="k")
    _, g = c.call(
        "POST", f"{P}/groups", {"group": {"name": "oa-g", "group_type": gtid, "volume_types": [tid]}}, expect=202
    )
    if g:
        gid = g["group"]["id"]
        c.wait(f"{P}/groups/{{group_id}}", "group", "available", group_id=gid)
        c.call("GET", f"{P}/groups", expect=200)
        c.call("GET", f"{P}/groups/detail", query="list_volume=true", expect=200)
        c.call("PUT", f"{P}/groups/{{group_id}}", {"group": {"description": "d"}}, expect=202, group_id=gid)
        _, gs = c.call(
            "POST", f"{P}/group_snapshots", {"group_snapshot": {"group_id": gid, "name": "oa-gs"}}, expect=202
        )
        if gs:
            gsid = gs["group_snapshot"]["id"]
            c.wait(f"{P}/group_snapshots/{{group_snapshot_id}}", "group_snapshot", "available", group_snapshot_id=gsid)
            c.call("GET", f"{P}/group_snapshots", expect=200)
            c.call("GET", f"{P}/group_snapshots/detail", expect=200)
            c.call("DELETE", f"{P}/group_snapshots/{{group_snapshot_id}}", expect=202, group_snapshot_id=gsid)
        c.call(
            "POST", f"{P}/groups/{{group_id}}/action", {"delete": {"delete-volumes": True}}, expect=202, group_id=gid
        )

    # Quotas, limits, the admin views.
    c.call("GET", f"{P}/limits", expect=200)
    c.call("GET", f"{P}/os-quota-sets/{{target_project_id}}", query="usage=true", expect=200, target_project_id=PROJECT)
    c.call("GET", f"{P}/os-quota-sets/{{target_project_id}}", expect=200, target_project_id=PROJECT)
    c.call("GET", f"{P}/os-quota-sets/{{target_project_id}}/defaults", expect=200, target_project_id=PROJECT)
    c.call(
        "PUT",
        f"{P}/os-quota-sets/{{target_project_id}}",
        {"quota_set": {"volumes": 20}},
        expect=200,
        target_project_id="oa-other",
    )
    c.call("DELETE", f"{P}/os-quota-sets/{{target_project_id}}", expect=200, target_project_id="oa-other")
    c.call("GET", f"{P}/os-quota-class-sets/{{quota_class_name}}", expect=200, quota_class_name="default")
    c.call("GET", f"{P}/scheduler-stats/get_pools", query="detail=true", expect=200)
    c.call("GET", f"{P}/os-availability-zone", expect=200)
    _, services = c.call("GET", f"{P}/os-services", expect=200)
    c.call("PUT", f"{P}/os-services/get-log", {}, expect=200)
    _, hosts = c.call("GET", f"{P}/os-hosts", expect=200)
    if services and services["services"]:
        host = next(
            (s["host"] for s in services["services"] if s["binary"] == "cinder-volume"), services["services"][0]["host"]
        )
        c.call("GET", f"{P}/os-hosts/{{host_name}}", expect=200, host_name=host)
        c.call(
            "PUT",
            f"{P}/os-services/disable-log-reason",
            {"host": host, "binary": "cinder-volume", "disabled_reason": "openapi"},
            expect=200,
        )
        c.call("PUT", f"{P}/os-services/enable", {"host": host, "binary": "cinder-volume"}, expect=200)
    _, pools = c.call("GET", f"{P}/scheduler-stats/get_pools", expect=200)
    if pools and pools["pools"]:
        c.call("GET", f"{P}/capabilities/{{host_name}}", expect=200, host_name=pools["pools"][0]["name"])
    c.call("GET", f"{P}/extensions", expect=200)
    c.call("GET", f"{P}/resource_filters", expect=200)
    c.call("GET", f"{P}/messages", expect=200)
    c.call(
        "PUT",
        f"{P}/default-types/{{target_project_id}}",
        {"default_type": {"volume_type": "oa-type"}},
        expect=200,
        target_project_id="oa-other",
    )
    c.call("GET", f"{P}/default-types", expect=200)
    c.call("GET", f"{P}/default-types/{{target_project_id}}", expect=200, target_project_id="oa-other")
    c.call("DELETE", f"{P}/default-types/{{target_project_id}}", expect=204, target_project_id="oa-other")

    # Errors are fault bodies.
    c.call("GET", f"{P}/volumes/{{volume_id}}", expect=404, volume_id=str(uuid.uuid4()))
    c.call("POST", f"{P}/volumes", {"volume": {"size": "ten"}}, expect=400)
    c.call("POST", f"{P}/types", {"volume_type": {"name": "oa-type"}}, expect=409)

    # Clean up.
    c.call("DELETE", f"{P}/snapshots/{{snapshot_id}}", expect=202, snapshot_id=sid)
    c.wait_gone(f"{P}/snapshots/{{snapshot_id}}", snapshot_id=sid)
    c.call("DELETE", f"{P}/volumes/{{volume_id}}", query="cascade=true", expect=202, volume_id=vid)
    c.wait_gone(f"{P}/volumes/{{volume_id}}", volume_id=vid)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("--doc", default=str(REPO / "docs" / "openapi.json"))
    args = ap.parse_args()
    c = Checker(args.url, json.loads(Path(args.doc).read_text()))
    try:
        scenario(c)
    except Exception as e:  # a crash of the scenario is a failure with what came before
        c.problems.append(f"the scenario stopped: {type(e).__name__}: {e}")
    teeth = c.check_teeth()
    for p in c.problems:
        print(f"scenario: {p}", file=sys.stderr)
    print(
        f"scenario: {c.checked} responses checked, {len(c.seen)} success bodies validated, "
        f"{teeth} mutated bodies checked to fail validation; {len(c.problems)} problems"
    )
    return 1 if c.problems else 0


if __name__ == "__main__":
    sys.exit(main())
