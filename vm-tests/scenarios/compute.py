#!/usr/bin/env python3
"""compute.py: the compute node's half of hearth's two-node iSCSI scenario.

Runs as root on a host with open-iscsi (iscsid running, iscsi_tcp loaded) and, for
the multipath scenario, multipathd; with a Python that imports os-brick (the Debian
guest's /opt/hearth-venv/bin/python). It drives hearthd's Block Storage API with
plain HTTP, as Nova does, attaches with os-brick's ISCSI connector in-process, and
asks storage_agent.py on the storage node (through files in DIR) to read LVs back,
restart hearthd, clean configfs up as a reboot would, and dump configfs.

    compute.py --dir DIR --endpoint URL --vg VG [--only NAME,...] [--list]
               [--availability-zone ZONE --expect-host HOST]

URL is the API root with /v3 (http://169.254.10.1:8776/v3). In a fleet
(vm-tests/fleet.sh), URL may be another node's API: every volume is then created in
ZONE, the zone of the agent's node, and must be placed on HOST (its
`os-vol-host-attr:host` starts with `HOST@`), so that the scenarios show volumes
made and exported by the agent's node through another node's API. Prints one line per
scenario, `PASS name (secs)` or `FAIL name (secs): reason`, then `N passed, N
failed`; exit 0 only when every scenario passed. Writes DIR/done at the end, which
stops the agent (not with --leave-agent). Scenarios (in this order; --only picks some):

  agent          the storage agent answers: a new volume's LV reads as zeros
                 (no iSCSI; the only scenario that needs no export)
  attach         attachments API: create, update with the connector, connect,
                 complete; write a pattern; disconnect, delete; the LV holds it
  legacy         os-reserve, os-initialize_connection, connect, os-attach; write;
                 disconnect, os-begin_detaching, os-terminate_connection, os-detach
  multipath      connector multipath=true: two portals, os-brick with multipath
  chap_wrong     a wrong CHAP secret: the login is refused
  acl_refused    an attachment for another initiator: this one is refused
  read_only      attachment mode ro (3.54): write_protect in the ACL, writes fail
  extend         os-extend (3.42) of an in-use volume: LV and initiator grow
  concurrency    20 parallel attachments (fake initiators, no login) of multiattach
                 volumes: configfs ACLs match the API; 10 parallel detaches leave
                 the other 10 ACLs; the last 10 leave no export
  restart        hearthd restarted while a write runs: it goes on, data intact
  reboot         configfs cleared and hearthd started (as after a reboot): the
                 export comes back and the session recovers; data intact
  fleet          (only with --only, in a fleet) both nodes' cinder-volume up, ZONE
                 listed, a volume made through URL listed there and an LV on HOST

Scenarios that stop hearthd (restart, reboot) first wait while DIR/storage-busy
exists (the storage side holds it while its own lifecycle.sh drives hearthd).
os-brick's log (DEBUG) goes to DIR/compute-brick.log; a failing scenario prints
its WARNING and ERROR lines.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import logging
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid

GiB = 1 << 30
MiB = 1 << 20
TARGET_PREFIX = "iqn.2010-10.org.openstack:volume-"
INSTANCE = "7f0e6f6c-1111-4222-8333-944455556666"
WAIT = float(os.environ.get("HEARTH_SCENARIO_WAIT", "120"))


class Fail(AssertionError):
    """A scenario's check failed; the message is the reason printed."""


def check(cond, msg: str) -> None:
    if not cond:
        raise Fail(msg)


def log(msg: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------
# hearthd's API, as the real clients speak it
# --------------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, method, url, status, body):
        super().__init__(f"{method} {url} -> {status}: {body[:500]}")
        self.status, self.body = status, body


class Api:
    def __init__(self, endpoint: str, version: str = "3.44", zone: str | None = None,
                 expect_host: str | None = None):
        self.endpoint = endpoint.rstrip("/")
        self.version = version
        self.zone, self.expect_host = zone, expect_host

    def call(self, method: str, path: str, body=None, version: str | None = None,
             expect=(200, 202, 204)):
        url = self.endpoint + path
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("X-Auth-Token", "admin:admin")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        v = version or self.version
        if v:
            req.add_header("OpenStack-API-Version", f"volume {v}")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        text = raw.decode("utf-8", "replace")
        if status not in expect:
            raise ApiError(method, path, status, text)
        return json.loads(text) if text.strip() else None

    def ready(self, timeout: float = WAIT) -> None:
        """Poll GET /v3 until hearthd answers (after a start or restart)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call("GET", "/volumes?limit=1")
                return
            except (OSError, ApiError) as e:
                if time.monotonic() > deadline:
                    raise Fail(f"hearthd did not answer within {timeout:.0f} s: {e}")
                time.sleep(0.3)

    # volumes
    def create_volume(self, size: int = 1, name: str | None = None, vtype: str | None = None) -> str:
        body = {"volume": {"size": size, "name": name or f"scn-{uuid.uuid4().hex[:6]}"}}
        if vtype:
            body["volume"]["volume_type"] = vtype
        if self.zone:
            body["volume"]["availability_zone"] = self.zone
        v = self.call("POST", "/volumes", body)["volume"]
        v = self.wait_volume(v["id"], "available")
        host = v.get("os-vol-host-attr:host") or ""
        if self.expect_host and not host.startswith(self.expect_host + "@"):
            raise Fail(f"volume {v['id']} was placed on {host!r}, not on {self.expect_host}")
        return v["id"]

    def volume(self, vid: str) -> dict:
        return self.call("GET", f"/volumes/{vid}")["volume"]

    def wait_volume(self, vid: str, status: str, timeout: float = WAIT, size: int | None = None) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            v = self.volume(vid)
            if v["status"] == status and (size is None or v["size"] == size):
                return v
            if v["status"].startswith("error"):
                raise Fail(f"volume {vid} went to {v['status']} while waiting for {status}")
            if time.monotonic() > deadline:
                raise Fail(f"volume {vid} is {v['status']} (size {v['size']}) after {timeout:.0f} s, "
                           f"not {status}" + ("" if size is None else f" with size {size}"))
            time.sleep(0.3)

    def delete_volume(self, vid: str) -> None:
        try:
            self.call("DELETE", f"/volumes/{vid}")
        except ApiError as e:
            if e.status == 404:
                return
            raise
        deadline = time.monotonic() + WAIT
        while True:
            try:
                v = self.volume(vid)
            except ApiError as e:
                if e.status == 404:
                    return
                raise
            if v["status"].startswith("error") or time.monotonic() > deadline:
                raise Fail(f"volume {vid} not deleted: {v['status']}")
            time.sleep(0.3)

    def action(self, vid: str, name: str, value=None, version: str | None = None, expect=(200, 202)):
        return self.call("POST", f"/volumes/{vid}/action", {name: value}, version=version, expect=expect)

    # attachments
    def attachment_create(self, vid: str, connector=None, mode: str | None = None,
                          version: str | None = None) -> dict:
        body = {"attachment": {"volume_uuid": vid, "instance_uuid": INSTANCE, "connector": connector}}
        if mode:
            body["attachment"]["mode"] = mode
        return self.call("POST", "/attachments", body, version=version)["attachment"]

    def attachment_update(self, aid: str, connector: dict) -> dict:
        return self.call("PUT", f"/attachments/{aid}", {"attachment": {"connector": connector}})["attachment"]

    def attachment_complete(self, aid: str) -> None:
        self.call("POST", f"/attachments/{aid}/action", {"os-complete": None})

    def attachment_delete(self, aid: str) -> None:
        self.call("DELETE", f"/attachments/{aid}")

    def attachments(self, vid: str) -> list[dict]:
        return self.call("GET", f"/attachments/detail?volume_id={vid}")["attachments"]


# --------------------------------------------------------------------------
# The storage agent, through files in DIR
# --------------------------------------------------------------------------

class Agent:
    def __init__(self, d: str):
        self.dir = d
        self.req = os.path.join(d, "req")
        self.resp = os.path.join(d, "resp")
        self.seq = 0
        self.tag = uuid.uuid4().hex[:8]

    def wait_ready(self, timeout: float) -> dict:
        path = os.path.join(self.dir, "agent.json")
        self.wait_for(path, timeout, 0.5, f"no storage agent: {path} did not appear")
        with open(path) as f:
            info = json.load(f)
        os.makedirs(self.req, exist_ok=True)
        os.makedirs(self.resp, exist_ok=True)
        self.call("ping")
        return info

    def wait_for(self, path: str, timeout: float, poll: float, what: str) -> None:
        """Wait until `path` exists, failing at once when the storage side has ended."""
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            self.storage_alive()
            if time.monotonic() > deadline:
                raise Fail(f"{what} within {timeout:.0f} s")
            time.sleep(poll)

    def call(self, op: str, timeout: float = 300, **args) -> dict:
        """Send one request and wait for its answer; raises Fail on an error answer."""
        self.seq += 1
        rid = f"{self.seq:05d}-{self.tag}"
        tmp = os.path.join(self.req, f"{rid}.json.tmp")
        with open(tmp, "w") as f:
            json.dump({"op": op, **args}, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(self.req, f"{rid}.json"))
        out = os.path.join(self.resp, f"{rid}.json")
        self.wait_for(out, timeout, 0.1, f"storage agent did not answer {op}")
        with open(out) as f:
            resp = json.load(f)
        os.unlink(out)
        if not resp.get("ok"):
            raise Fail(f"storage agent: {op} failed: {resp.get('error')}")
        return resp["result"]

    def wait_not_busy(self, timeout: float = 900) -> None:
        """Wait while the storage side holds DIR/storage-busy (its own jobs run)."""
        path = os.path.join(self.dir, "storage-busy")
        deadline = time.monotonic() + timeout
        if os.path.exists(path):
            log("waiting for the storage side to finish its own jobs (DIR/storage-busy)")
        while os.path.exists(path):
            self.storage_alive()
            if time.monotonic() > deadline:
                raise Fail(f"DIR/storage-busy still there after {timeout:.0f} s")
            time.sleep(1)

    def storage_alive(self) -> None:
        if os.path.exists(os.path.join(self.dir, "storage-exited")):
            raise Fail("the storage node ended (DIR/storage-exited)")

    def expect_lv(self, vid: str, offset: int, data: bytes) -> None:
        want = hashlib.sha256(data).hexdigest()
        r = self.call("read_lv", volume_id=vid, offset=offset, length=len(data), sha256=want)
        check(r["match"], f"the LV of {vid} does not hold the pattern at {offset}+{len(data)}: "
                          f"sha256 {r['sha256'][:16]} != {want[:16]}, first bytes {r['head'][:32]} "
                          f"!= {data[:16].hex()}")

    def expect_no_export(self, vid: str) -> None:
        """After the last detach the volume is not exported at all: no target, no
        backstore named after it."""
        dump = self.call("configfs_dump")
        t = dump["targets"].get(TARGET_PREFIX + vid)
        bs = [b["name"] for b in dump["backstores"] if b["name"].endswith("/volume-" + vid)]
        check(t is None and not bs, f"export left after the last detach: target {t}, backstores {bs}")

    def target(self, vid: str) -> dict | None:
        """The configfs state of a volume's target (its tpgt_1), or None."""
        t = self.call("configfs_dump")["targets"].get(TARGET_PREFIX + vid)
        return None if t is None else t.get("tpgt_1", t)


# --------------------------------------------------------------------------
# os-brick, in-process, as root (as tests/clients/conftest.py sets it up)
# --------------------------------------------------------------------------

class Brick:
    def __init__(self):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # eventlet's deprecation warning: not ours
            import os_brick
            import os_brick.privileged
            from os_brick.initiator import connector
            from oslo_config import cfg
            from os_brick.initiator.connectors.iscsi import ISCSIConnector
            from oslo_concurrency import lockutils
        os_brick.privileged.default.set_client_mode(False)
        lockutils.set_defaults(lock_path=tempfile.mkdtemp(prefix="brick-locks-"))
        os_brick.setup(cfg.CONF)  # after lockutils: it takes its lock_path from there
        self.single = connector.InitiatorConnector.factory("ISCSI", root_helper="sudo", use_multipath=False)
        self.multi = connector.InitiatorConnector.factory("ISCSI", root_helper="sudo", use_multipath=True)
        self.initiator = ISCSIConnector.get_connector_properties("sudo").get("initiator")
        check(self.initiator, "os-brick found no initiator name (/etc/iscsi/initiatorname.iscsi)")

    def connector(self, multipath: bool = False, initiator: str | None = None, host: str | None = None) -> dict:
        """What os-brick's get_connector_properties() sends, for the iSCSI protocol only."""
        return {"platform": platform.machine(), "os_type": sys.platform, "ip": local_ip(),
                "host": host or socket.gethostname(), "multipath": multipath,
                "enforce_multipath": False, "initiator": initiator or self.initiator}


def local_ip() -> str:
    try:
        out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                             capture_output=True, text=True, timeout=10).stdout.split()
        return out[out.index("inet") + 1].split("/")[0]
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return "127.0.0.1"


def sessions() -> str:
    p = subprocess.run(["iscsiadm", "-m", "session"], capture_output=True, text=True, timeout=30)
    return p.stdout if p.returncode == 0 else ""


def pattern(seed: str, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def pwrite_all(path: str, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], offset + done)
        os.fsync(fd)
    finally:
        os.close(fd)


def pread_all(path: str, offset: int, n: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return os.pread(fd, n, offset)
    finally:
        os.close(fd)


def device_size(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------

class Ctx:
    def __init__(self, api: Api, agent: Agent, brick: Brick, vg: str):
        self.api, self.agent, self.brick, self.vg = api, agent, brick, vg
        self.undo: list = []

    def later(self, fn, *a, **kw) -> None:
        self.undo.append((fn, a, kw))

    def cleanup(self) -> list[str]:
        errors = []
        while self.undo:
            fn, a, kw = self.undo.pop()
            try:
                fn(*a, **kw)
            except Exception as e:  # report, then go on undoing
                errors.append(f"cleanup {getattr(fn, '__name__', fn)}: {e}")
        return errors

    def volume(self, size: int = 1, vtype: str | None = None) -> str:
        vid = self.api.create_volume(size, vtype=vtype)
        self.later(self.api.delete_volume, vid)
        return vid


class Attached:
    """A volume attached with the attachments API (create, update, connect,
    complete); detach() undoes it in Nova's order."""

    def __init__(self, c: Ctx, vid: str, multipath: bool = False, mode: str | None = None):
        self.c, self.vid, self.multipath = c, vid, multipath
        api, brick = c.api, c.brick
        self.conn = brick.multi if multipath else brick.single
        a = api.attachment_create(vid, None, mode=mode, version="3.54" if mode else None)
        self.aid = a["id"]
        c.later(self._delete_attachment)
        check(api.volume(vid)["status"] == "reserved", f"after create: not reserved but {api.volume(vid)['status']}")
        a = api.attachment_update(self.aid, brick.connector(multipath))
        info = a.get("connection_info") or {}
        check(info.get("driver_volume_type") == "iscsi", f"connection_info is not iscsi: {info}")
        for k in ("target_portal", "target_iqn", "target_lun", "auth_method", "auth_username", "auth_password"):
            check(k in info, f"connection_info lacks {k}: {sorted(info)}")
        check(info["target_iqn"] == TARGET_PREFIX + vid, f"target_iqn {info['target_iqn']}")
        self.info = info
        t = time.monotonic()
        self.device = self.conn.connect_volume(info)
        c.later(self._disconnect)
        self.path = self.device["path"]
        log(f"connected {vid[:8]} at {self.path} in {time.monotonic() - t:.1f} s")
        api.attachment_complete(self.aid)
        api.wait_volume(vid, "in-use")

    def _disconnect(self) -> None:
        if self.device is not None:
            self.conn.disconnect_volume(self.info, self.device)
            self.device = None

    def _delete_attachment(self) -> None:
        if self.aid is not None:
            self.c.api.attachment_delete(self.aid)
            self.aid = None

    def detach(self) -> None:
        # udev probes a device after a writer closes it (its inotify watch); flushing a
        # multipath map while the probe holds it fails, and os-brick retries after 20 s
        # and 40 s. Nova's guests are gone by detach time; here, let udev finish first.
        subprocess.run(["udevadm", "settle", "--timeout=30"], check=False)
        self._disconnect()
        self._delete_attachment()
        self.c.api.wait_volume(self.vid, "available")


def scn_agent(c: Ctx) -> str:
    vid = c.volume()
    c.agent.expect_lv(vid, 0, bytes(MiB))
    dump = c.agent.call("configfs_dump")
    return f"a new LV reads as zeros; configfs: {len(dump['targets'])} targets"


def scn_attach(c: Ctx) -> str:
    vid = c.volume()
    at = Attached(c, vid)
    t = c.agent.target(vid)
    check(t is not None, "no target in configfs while attached")
    check(c.brick.initiator in t["acls"], f"ACLs {sorted(t['acls'])} lack {c.brick.initiator}")
    check(t["authentication"] == "1", f"authentication attribute {t['authentication']}")
    acl = t["acls"][c.brick.initiator]
    check(acl["userid"] == at.info["auth_username"] and acl["has_password"],
          f"ACL CHAP user {acl['userid']!r} != connection_info's {at.info['auth_username']!r} (or no secret)")
    check(t["portals"] and at.info["target_portal"] in t["portals"],
          f"target_portal {at.info['target_portal']} not among the target's portals {t['portals']}")
    data = pattern("attach", 4 * MiB)
    pwrite_all(at.path, MiB, data)
    at.detach()
    c.agent.expect_lv(vid, MiB, data)
    c.agent.expect_no_export(vid)
    return f"4 MiB written through {at.info['target_portal']}, read back from the LV"


def scn_legacy(c: Ctx) -> str:
    api, brick = c.api, c.brick
    vid = c.volume()
    connector = brick.connector()
    api.action(vid, "os-reserve", None, version="")
    check(api.volume(vid)["status"] == "attaching", "os-reserve: not attaching")
    ci = api.action(vid, "os-initialize_connection", {"connector": connector}, version="")["connection_info"]
    check(ci.get("driver_volume_type") == "iscsi", f"connection_info: {ci}")
    data = ci["data"]
    for k in ("target_portal", "target_iqn", "target_lun", "auth_method", "auth_username", "auth_password",
              "target_discovered", "volume_id", "access_mode", "encrypted"):
        check(k in data, f"connection_info.data lacks {k}: {sorted(data)}")
    dev = brick.single.connect_volume(data)
    c.later(lambda: brick.single.disconnect_volume(data, dev, force=True, ignore_errors=True))
    api.action(vid, "os-attach", {"instance_uuid": INSTANCE, "mountpoint": "/dev/vdb", "mode": "rw"}, version="")
    v = api.wait_volume(vid, "in-use")
    check(len(v["attachments"]) == 1, f"attachments {v['attachments']}")
    att_id = v["attachments"][0]["attachment_id"]
    payload = pattern("legacy", 2 * MiB)
    pwrite_all(dev["path"], 0, payload)
    brick.single.disconnect_volume(data, dev)
    c.undo.pop()
    api.action(vid, "os-begin_detaching", None, version="")
    check(api.volume(vid)["status"] == "detaching", "os-begin_detaching: not detaching")
    api.action(vid, "os-terminate_connection", {"connector": connector}, version="")
    api.action(vid, "os-detach", {"attachment_id": att_id}, version="")
    api.wait_volume(vid, "available")
    c.agent.expect_lv(vid, 0, payload)
    c.agent.expect_no_export(vid)
    return "reserve/initialize/attach/begin_detaching/terminate/detach, data on the LV"


def scn_multipath(c: Ctx) -> str:
    vid = c.volume()
    at = Attached(c, vid, multipath=True)
    portals = at.info.get("target_portals") or []
    check(len(portals) >= 2, f"multipath connector: target_portals {portals}")
    check(at.info.get("target_iqns") == [at.info["target_iqn"]] * len(portals)
          and at.info.get("target_luns") == [at.info["target_lun"]] * len(portals),
          f"target_iqns/target_luns do not match target_portals: {at.info}")
    s = sessions()
    n = sum(1 for line in s.splitlines() if TARGET_PREFIX + vid in line)
    check(n == len(portals), f"{n} sessions for {len(portals)} portals:\n{s}")
    t = c.agent.target(vid)
    check(t is not None and sorted(t["portals"]) == sorted(portals),
          f"configfs portals {t and t['portals']} != {portals}")
    path = os.path.realpath(at.path)
    check(os.path.basename(path).startswith("dm-"), f"os-brick gave {at.path} ({path}), not a multipath "
          f"device:\n{subprocess.run(['multipath', '-ll'], capture_output=True, text=True).stdout}")
    data = pattern("multipath", 2 * MiB)
    pwrite_all(at.path, 0, data)
    given = at.path
    at.detach()
    c.agent.expect_lv(vid, 0, data)
    return f"{n} sessions ({', '.join(portals)}), device {given} -> {path}"


def _refused(c: Ctx, info: dict, what: str) -> str:
    """connect_volume must fail and leave no session to the target behind. Only
    the first portal is tried: os-brick retries each portal three times with
    back-off, ~12 s a portal under TCG, and every portal has the same ACLs."""
    info = {k: v for k, v in info.items() if k not in ("target_portals", "target_iqns", "target_luns")}
    t = time.monotonic()
    try:
        dev = c.brick.single.connect_volume(info)
    except Exception as e:
        err = f"{type(e).__name__}: {str(e)[:160]}"
    else:
        c.brick.single.disconnect_volume(info, dev, force=True, ignore_errors=True)
        raise Fail(f"{what}: os-brick connected anyway ({dev})")
    s = sessions()
    check(info["target_iqn"] not in s, f"{what}: a session remains:\n{s}")
    # The refusal must be the target's: iscsiadm's exit 24 is a login refused for
    # authorization (LIO answers so for a wrong CHAP secret and for an initiator
    # without an ACL), not a network or portal failure.
    auth = [line for line in RECENT.lines if "exit code 24" in line]
    check(auth, f"{what}: os-brick failed ({err}) but no login was refused for authorization "
                f"(iscsiadm exit 24); its warnings: {RECENT.lines[-5:]}")
    return f"login refused (iscsiadm exit 24, authorization) in {time.monotonic() - t:.1f} s; os-brick: {err}"


def scn_chap_wrong(c: Ctx) -> str:
    vid = c.volume()
    api = c.api
    a = api.attachment_create(vid, c.brick.connector())
    c.later(api.attachment_delete, a["id"])
    info = dict(a["connection_info"])
    check(info.get("auth_password"), f"no CHAP secret in {info}")
    good = info["auth_password"]
    info["auth_password"] = ("x" if good[0] != "x" else "y") + good[1:]
    return _refused(c, info, "wrong CHAP secret")


def scn_acl_refused(c: Ctx) -> str:
    vid = c.volume()
    api = c.api
    other = "iqn.1993-08.org.debian:01:not-this-host"
    a = api.attachment_create(vid, c.brick.connector(initiator=other, host="elsewhere"))
    c.later(api.attachment_delete, a["id"])
    t = c.agent.target(vid)
    check(t is not None and other in t["acls"] and c.brick.initiator not in t["acls"],
          f"ACLs: {t and sorted(t['acls'])}")
    return _refused(c, a["connection_info"], "initiator not in the ACL")


def scn_read_only(c: Ctx) -> str:
    vid = c.volume()
    at = Attached(c, vid, mode="ro")
    check(at.info.get("access_mode") == "ro", f"access_mode {at.info.get('access_mode')}")
    t = c.agent.target(vid)
    acl = (t or {}).get("acls", {}).get(c.brick.initiator, {})
    wp = [m.get("write_protect") for m in acl.get("mapped_luns", {}).values()]
    check(wp and all(w == "1" for w in wp), f"write_protect in the ACL: {wp} ({acl})")
    before = c.agent.call("read_lv", volume_id=vid, offset=0, length=MiB)["sha256"]
    pread_all(at.path, 0, 4096)  # reading works
    err = None
    try:
        pwrite_all(at.path, 0, pattern("ro", MiB))
    except OSError as e:
        err = e
    check(err is not None, "a write to the read-only attachment succeeded")
    at.detach()
    after = c.agent.call("read_lv", volume_id=vid, offset=0, length=MiB)["sha256"]
    check(before == after, "the LV changed through a read-only attachment")
    return f"write_protect=1, write failed: {err.strerror if hasattr(err, 'strerror') else err}"


def scn_extend(c: Ctx) -> str:
    api = c.api
    vid = c.volume(1)
    at = Attached(c, vid)
    check(device_size(at.path) == GiB, f"device size {device_size(at.path)}")
    api.action(vid, "os-extend", {"new_size": 2}, version="3.42")
    api.wait_volume(vid, "in-use", size=2)
    lv = c.agent.call("lv_size", volume_id=vid)["size"]
    check(lv == 2 * GiB, f"LV size {lv} after os-extend to 2 GiB")
    new = at.conn.extend_volume(at.info)
    check(new == 2 * GiB, f"os-brick extend_volume returned {new}")
    check(device_size(at.path) == 2 * GiB, f"device size {device_size(at.path)} after the rescan")
    data = pattern("extend", MiB)
    pwrite_all(at.path, 2 * GiB - MiB, data)  # in the new part
    at.detach()
    c.agent.expect_lv(vid, 2 * GiB - MiB, data)
    return "LV 2 GiB, initiator sees 2 GiB after extend_volume, tail written"


class Writer(threading.Thread):
    """Writes `data` at offset 0 in 1 MiB chunks, each followed by fsync, over and
    over until stop() and then to the end of the pass: every chunk written while
    hearthd is down or starting must still succeed. Records when each fsync
    returned."""

    def __init__(self, path: str, data: bytes):
        super().__init__(daemon=True)
        self.path, self.data = path, data
        self.done_at: list[float] = []
        self.error: str | None = None
        self._stop_req = threading.Event()

    def run(self) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY)
            try:
                while True:
                    for off in range(0, len(self.data), MiB):
                        os.pwrite(fd, self.data[off:off + MiB], off)
                        os.fsync(fd)
                        self.done_at.append(time.monotonic())
                    if self._stop_req.is_set():
                        return
            finally:
                os.close(fd)
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"

    def stop(self) -> None:
        self._stop_req.set()

    def between(self, a: float, b: float) -> int:
        return sum(1 for t in self.done_at if a <= t <= b)


def session_tmo() -> str:
    vals = []
    for d in sorted(os.listdir("/sys/class/iscsi_session")) if os.path.isdir("/sys/class/iscsi_session") else []:
        try:
            with open(f"/sys/class/iscsi_session/{d}/recovery_tmo") as f:
                vals.append(f"{d}={f.read().strip()}")
        except OSError:
            pass
    return ", ".join(vals)


def export_shape(t: dict | None) -> dict | None:
    """What must survive a restart or a rebuild of a target (a backstore's HBA
    number, e.g. iblock_0 or iblock_1, may change)."""
    if t is None:
        return None
    return {"enable": t["enable"], "authentication": t["authentication"], "portals": sorted(t["portals"]),
            "luns": {k: (v["backstore"] or "").split("/")[-1] for k, v in t["luns"].items()},
            "acls": {ini: (a["userid"], a["has_password"],
                           {m: v["write_protect"] for m, v in a["mapped_luns"].items()})
                     for ini, a in t["acls"].items()}}


def scn_restart(c: Ctx) -> str:
    c.agent.wait_not_busy()
    vid = c.volume()
    at = Attached(c, vid)
    data = pattern("restart", 8 * MiB)
    before = c.agent.target(vid)
    w = Writer(at.path, data)
    w.start()
    while len(w.done_at) < 2 and w.is_alive():
        time.sleep(0.05)
    t0 = time.monotonic()
    r = c.agent.call("hearthd_restart")
    t1 = time.monotonic()
    during = w.between(t0, t1)
    log(f"hearthd restarted (stop {r['commands'][0]['seconds']} s, start {r['commands'][1]['seconds']} s); "
        f"{during} MiB written and synced meanwhile")
    # Keep writing until a few chunks went through after the restart, then finish the pass.
    while w.is_alive() and w.between(t1, time.monotonic()) < 4:
        time.sleep(0.1)
    w.stop()
    w.join(WAIT)
    check(not w.is_alive(), f"the write did not finish within {WAIT:.0f} s of the restart")
    after = c.agent.target(vid)
    check(export_shape(after) == export_shape(before),
          f"the export changed across the restart:\n  before {export_shape(before)}\n  after  {export_shape(after)}")
    check(w.error is None, f"the write failed: {w.error}")
    check(during > 0, "no write completed while hearthd restarted (the restart was too quick to overlap)")
    c.api.ready()
    t = c.agent.target(vid)
    check(t is not None and c.brick.initiator in t["acls"], f"export after the restart: {t}")
    at.detach()
    c.agent.expect_lv(vid, 0, data)
    return f"{len(w.done_at)} MiB written and synced, {during} of them during the restart; LV intact"


def scn_reboot(c: Ctx) -> str:
    c.agent.wait_not_busy()
    vid = c.volume()
    at = Attached(c, vid)
    a = pattern("reboot-a", 2 * MiB)
    pwrite_all(at.path, 0, a)
    tmo = session_tmo()
    before = c.agent.target(vid)
    r = c.agent.call("reboot_cleanup")
    log(f"configfs cleared ({len(r['removed'])} objects) and hearthd started; session recovery_tmo {tmo}")
    c.api.ready()
    deadline = time.monotonic() + WAIT
    while True:
        t = c.agent.target(vid)
        if t is not None and c.brick.initiator in t["acls"] and t.get("enable") == "1":
            break
        check(time.monotonic() < deadline,
              f"hearthd did not restore the export within {WAIT:.0f} s of its start: {t}")
        time.sleep(1)
    restored = time.monotonic()
    check(export_shape(t) == export_shape(before), f"the rebuilt export differs from the one before the "
          f"reboot:\n  before {export_shape(before)}\n  after  {export_shape(t)}")
    b = pattern("reboot-b", 2 * MiB)
    res: dict = {}

    def write_b():
        try:
            pwrite_all(at.path, 4 * MiB, b)
            res["ok"] = True
        except OSError as e:
            res["error"] = f"{type(e).__name__}: {e}"

    w = threading.Thread(target=write_b, daemon=True)
    w.start()
    w.join(WAIT)
    check(not w.is_alive(), f"the write after the restore hung for {WAIT:.0f} s; sessions:\n{sessions()}")
    check(res.get("ok"), f"the write after the restore failed: {res.get('error')}; sessions: {sessions()!r}")
    recovered = time.monotonic() - restored
    state = subprocess.run(["iscsiadm", "-m", "session", "-P", "1"], capture_output=True, text=True).stdout
    check("LOGGED_IN" in state, f"session state:\n{state}")
    at.detach()
    c.agent.expect_lv(vid, 0, a)
    c.agent.expect_lv(vid, 4 * MiB, b)
    return f"export restored, session recovered, write done {recovered:.1f} s after; both patterns intact"


def scn_concurrency(c: Ctx) -> str:
    api = c.api
    name = f"multiattach-{uuid.uuid4().hex[:6]}"
    vt = api.call("POST", "/types", {"volume_type": {"name": name,
                                                     "extra_specs": {"multiattach": "<is> True"}}})["volume_type"]
    c.later(api.call, "DELETE", f"/types/{vt['id']}")
    vols = [c.volume(vtype=name) for _ in range(2)]
    n = 20
    fakes = [(vols[i % 2], f"iqn.2026-11.org.hearth.test:fake-{i:02d}", f"fake-{i:02d}") for i in range(n)]

    def attach(job):
        vid, ini, host = job
        a = api.attachment_create(vid, {"initiator": ini, "host": host, "ip": f"169.254.20.{10 + len(host)}",
                                        "multipath": False, "platform": "x86_64", "os_type": "linux"})
        api.attachment_complete(a["id"])
        return a

    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        made = list(ex.map(attach, fakes))
    for a in made:
        c.later(lambda i=a["id"]: _ignore_404(api.attachment_delete, i))
    dump = c.agent.call("configfs_dump")["targets"]
    problems = []
    for vid in vols:
        listed = {a["id"] for a in api.attachments(vid)}
        want = {ini for v, ini, _ in fakes if v == vid}
        t = (dump.get(TARGET_PREFIX + vid) or {}).get("tpgt_1")
        have = set(t["acls"]) if t else set()
        if len(listed) != n // 2:
            problems.append(f"{vid[:8]}: the API lists {len(listed)} attachments, not {n // 2}")
        if have != want:
            problems.append(f"{vid[:8]}: configfs ACLs missing {sorted(want - have)}, extra {sorted(have - want)}")
    check(not problems, "; ".join(problems))
    # Half of the hosts detach in parallel: the others keep their ACLs, and only theirs.
    # (fakes alternate between the volumes: pairs 0-1, 4-5, ... go, 2-3, 6-7, ... stay)
    gone = [a for i, a in enumerate(made) if (i // 2) % 2 == 0]
    kept = [a for i, a in enumerate(made) if (i // 2) % 2 == 1]
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        list(ex.map(lambda a: api.attachment_delete(a["id"]), gone))
    dump = c.agent.call("configfs_dump")["targets"]
    for vid in vols:
        want = {ini for (v, ini, _), a in zip(fakes, made) if v == vid and a in kept}
        t = (dump.get(TARGET_PREFIX + vid) or {}).get("tpgt_1")
        have = set(t["acls"]) if t else set()
        if have != want:
            problems.append(f"{vid[:8]} after {len(gone)} detaches: configfs ACLs missing "
                            f"{sorted(want - have)}, extra {sorted(have - want)}")
    check(not problems, "; ".join(problems))
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        list(ex.map(lambda a: api.attachment_delete(a["id"]), kept))
    for vid in vols:
        api.wait_volume(vid, "available")
    for vid in vols:
        c.agent.expect_no_export(vid)
    return (f"{n} parallel attachments on 2 volumes match configfs; after {len(gone)} parallel detaches "
            f"the other {len(kept)} ACLs remain; the last detaches left no export")


def scn_fleet(c: Ctx) -> str:
    api = c.api
    check(bool(api.expect_host), "the fleet scenario needs --expect-host and --availability-zone")
    services = api.call("GET", "/os-services?binary=cinder-volume")["services"]
    up = sorted({s["host"].split("@")[0] for s in services if s["state"] == "up"})
    check(api.expect_host in up, f"{api.expect_host}'s cinder-volume is not up in {services}")
    check(len(up) >= 2, f"one node only has its cinder-volume up: {services}")
    zones = [z["zoneName"] for z in api.call("GET", "/os-availability-zone")["availabilityZoneInfo"]]
    check(api.zone in zones, f"zone {api.zone} is not among {zones}")
    vid = c.volume()
    listed = [v["id"] for v in api.call("GET", "/volumes")["volumes"]]
    check(vid in listed, f"volume {vid} is not listed by {api.endpoint}")
    c.agent.expect_lv(vid, 0, bytes(MiB))
    return (f"nodes up {', '.join(up)}; zones {', '.join(zones)}; a volume asked of "
            f"{api.endpoint} in {api.zone} is an LV on {api.expect_host}")


def _ignore_404(fn, *a):
    try:
        fn(*a)
    except ApiError as e:
        if e.status != 404:
            raise


SCENARIOS = [
    ("agent", scn_agent), ("attach", scn_attach), ("legacy", scn_legacy), ("multipath", scn_multipath),
    ("chap_wrong", scn_chap_wrong), ("acl_refused", scn_acl_refused), ("read_only", scn_read_only),
    ("extend", scn_extend), ("concurrency", scn_concurrency), ("restart", scn_restart),
    ("reboot", scn_reboot), ("fleet", scn_fleet),
]
# Run only when asked for with --only.
FLEET_ONLY = {"fleet"}


class Recent(logging.Handler):
    """Keeps the WARNING and ERROR records of the running scenario."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}"[:400])


RECENT = Recent()


def setup_logging(d: str) -> Recent:
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    fh = logging.FileHandler(os.path.join(d, "compute-brick.log"))
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(fh)
    root.addHandler(RECENT)
    return RECENT


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="the directory the storage agent serves")
    ap.add_argument("--endpoint", required=True, help="hearthd's API, e.g. http://169.254.10.1:8776/v3")
    ap.add_argument("--vg", required=True, help="hearth's volume group on the storage node")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--agent-timeout", type=float, default=600, help="seconds to wait for the agent")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--availability-zone", help="create every volume in this zone")
    ap.add_argument("--expect-host", help="every volume must be placed on this node (its `host`)")
    ap.add_argument("--leave-agent", action="store_true",
                    help="do not write DIR/done at the end: the agent serves another run")
    args = ap.parse_args()
    names = [n for n, _ in SCENARIOS]
    if args.list:
        print("\n".join(names))
        return 0
    only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in only if n not in names]
    if unknown:
        print(f"compute.py: unknown scenario(s) {', '.join(unknown)} (known: {', '.join(names)})", file=sys.stderr)
        return 2
    chosen = [(n, f) for n, f in SCENARIOS if n in only or (not only and n not in FLEET_ONLY)]

    recent = setup_logging(args.dir)
    agent = Agent(args.dir)
    results: list[tuple[str, bool, str, float]] = []
    try:
        t = time.monotonic()
        info = agent.wait_ready(args.agent_timeout)
        log(f"storage agent on {info.get('host')} ready after {time.monotonic() - t:.1f} s")
        check(info.get("vg") == args.vg, f"the storage agent serves VG {info.get('vg')!r}, not {args.vg!r}")
        api = Api(args.endpoint, zone=args.availability_zone, expect_host=args.expect_host)
        api.ready()
        if args.expect_host:
            log(f"volumes in zone {args.availability_zone} through {args.endpoint}, "
                f"to be placed on {args.expect_host}")
        t = time.monotonic()
        brick = Brick()
        log(f"os-brick loaded in {time.monotonic() - t:.1f} s; initiator {brick.initiator}")
        for name, fn in chosen:
            c = Ctx(api, agent, brick, args.vg)
            recent.lines.clear()
            t = time.monotonic()
            print(f"--- {name}", flush=True)
            try:
                msg, ok = fn(c), True
            except Fail as e:
                msg, ok = str(e), False
            except Exception as e:
                msg, ok = f"{type(e).__name__}: {e}", False
                traceback.print_exc(file=sys.stdout)
            errors = c.cleanup()
            if ok and errors:
                ok, msg = False, "; ".join(errors)
            elif errors:
                msg += " [" + "; ".join(errors) + "]"
            secs = time.monotonic() - t
            if not ok and recent.lines:
                print("  os-brick's warnings and errors in this scenario (last 15):")
                for line in recent.lines[-15:]:
                    print("    " + line)
            results.append((name, ok, msg, secs))
            print(f"{'PASS' if ok else 'FAIL'} {name} ({secs:.1f} s){': ' if not ok else ' - '}{msg}", flush=True)
    except Exception as e:
        traceback.print_exc(file=sys.stdout)
        print(f"FAIL setup: {type(e).__name__}: {e}", flush=True)
        results.append(("setup", False, str(e), 0))
    finally:
        if not args.leave_agent:
            with open(os.path.join(args.dir, "done"), "w") as f:
                f.write("done\n")
    passed = sum(1 for r in results if r[1])
    failed = len(results) - passed
    print("==== summary")
    for name, ok, msg, secs in results:
        print(f"{'PASS' if ok else 'FAIL'} {name} ({secs:.1f} s)" + ("" if ok else f": {msg}"))
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and passed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
