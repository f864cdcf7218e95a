#!/usr/bin/env python3
"""storage_agent.py: the storage node's half of hearth's two-node iSCSI scenario.

Runs on the node where hearthd, LVM and LIO are (python3 standard library only, as
root) and answers requests that compute.py, on the other node, writes as files into
a directory both nodes see (the 9p share in the Debian VM tier, /tmp/shared in the
NixOS tests). It serves until DIR/done exists (or --timeout passes).

    storage_agent.py --dir DIR --vg VG --start-cmd CMD --stop-cmd CMD [--timeout SECS]

CMD is split with shlex and run without a shell; it must return once hearthd is
started (or stopped). The file protocol is in vm-tests/scenarios/README.md:

1. the agent writes DIR/agent.json ({"pid", "host", "started"}) when it serves;
2. a client writes DIR/req/<id>.json.tmp and renames it to DIR/req/<id>.json;
3. the agent handles requests one at a time in name order, writes
   DIR/resp/<id>.json.tmp, renames it to DIR/resp/<id>.json and removes the request;
4. the client reads and removes its response; DIR/done ends the agent (exit 0).

Requests ({"op": ..., args}); every response is {"id", "op", "ok", "result" | "error",
"seconds"}:
  ping                                     -> {"host"}
  read_lv volume_id [offset length sha256] -> {"path", "size", "sha256", "match", "head"}
      reads the LV /dev/VG/volume-<id> with O_DIRECT (never this node's page cache)
  lv_size volume_id                        -> {"path", "size"}
  hearthd_stop | hearthd_start | hearthd_restart -> {"commands": [...]}
  reboot_cleanup  stop hearthd, remove every configfs object with hearth's names
                  (targets iqn.2010-10.org.openstack:volume-* and backstores
                  volume-*), start hearthd               -> {"removed": [...]}
  configfs_dump                            -> {"targets": {...}, "backstores": [...]}
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import shlex
import socket
import subprocess
import sys
import time
import traceback

CONFIGFS = "/sys/kernel/config/target"
TARGET_PREFIX = "iqn.2010-10.org.openstack:volume-"
BACKSTORE_PREFIX = "volume-"
CHUNK = 4 << 20  # O_DIRECT read size; a multiple of every logical block size


def log(msg: str) -> None:
    print(f"[storage-agent] {time.strftime('%H:%M:%S')} {msg}", flush=True)


# --------------------------------------------------------------------------
# LVs
# --------------------------------------------------------------------------

def lv_path(vg: str, volume_id: str) -> str:
    if not volume_id or "/" in volume_id or volume_id.startswith("."):
        raise ValueError(f"bad volume id {volume_id!r}")
    return f"/dev/{vg}/volume-{volume_id}"


def device_size(path: str) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def read_lv(vg: str, req: dict) -> dict:
    """sha256 of [offset, offset+length) of a volume's LV, read with O_DIRECT so that
    what the initiator wrote through LIO is what is read (no stale cached pages)."""
    path = lv_path(vg, req["volume_id"])
    size = device_size(path)
    offset = int(req.get("offset", 0))
    length = int(req.get("length", size - offset))
    if offset < 0 or length < 0 or offset + length > size:
        raise ValueError(f"range {offset}+{length} is outside {path} ({size} bytes)")
    h = hashlib.sha256()
    head = b""
    buf = mmap.mmap(-1, CHUNK)  # page aligned, as O_DIRECT wants
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    try:
        start = offset - offset % 4096
        skip = offset - start
        pos, left = start, length + skip
        while left > 0:
            n = os.preadv(fd, [buf], pos)
            if n <= 0:
                raise OSError(f"short read of {path} at {pos}")
            take = min(n, left)
            data = buf[skip:take]
            h.update(data)
            if len(head) < 32:
                head += data[: 32 - len(head)]
            skip = 0
            pos += n
            left -= take
    finally:
        os.close(fd)
        buf.close()
    digest = h.hexdigest()
    want = req.get("sha256")
    return {"path": path, "size": size, "offset": offset, "length": length, "sha256": digest,
            "match": None if want is None else digest == want, "head": head.hex()}


# --------------------------------------------------------------------------
# hearthd
# --------------------------------------------------------------------------

class Hearthd:
    def __init__(self, start_cmd: str, stop_cmd: str, timeout: float = 180):
        self.start_argv = shlex.split(start_cmd)
        self.stop_argv = shlex.split(stop_cmd)
        self.timeout = timeout

    def _run(self, argv: list[str]) -> dict:
        t = time.monotonic()
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=self.timeout)
        res = {"argv": argv, "rc": p.returncode, "seconds": round(time.monotonic() - t, 2),
               "stdout": p.stdout[-2000:], "stderr": p.stderr[-2000:]}
        if p.returncode != 0:
            raise RuntimeError(f"{shlex.join(argv)} exited {p.returncode}: {p.stderr.strip()[-1000:]}")
        return res

    def stop(self) -> dict:
        return self._run(self.stop_argv)

    def start(self) -> dict:
        return self._run(self.start_argv)


# --------------------------------------------------------------------------
# configfs
# --------------------------------------------------------------------------

def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _ls(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def _backstore_of(link: str) -> str | None:
    """core/<hba>/<name> that a LUN symlink points at."""
    try:
        target = os.path.realpath(link)
    except OSError:
        return None
    parts = target.split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else target


def configfs_dump() -> dict:
    """Every iSCSI target (all of them, not only hearth's) and every backstore."""
    targets = {}
    iscsi = os.path.join(CONFIGFS, "iscsi")
    for iqn in _ls(iscsi):
        if not iqn.startswith("iqn.") and not iqn.startswith("eui.") and not iqn.startswith("naa."):
            continue  # discovery_auth, lio_version
        tpgs = {}
        for tpg in _ls(os.path.join(iscsi, iqn)):
            if not tpg.startswith("tpgt_"):
                continue
            tp = os.path.join(iscsi, iqn, tpg)
            luns = {}
            for lun in _ls(os.path.join(tp, "lun")):
                ld = os.path.join(tp, "lun", lun)
                links = [e for e in _ls(ld) if os.path.islink(os.path.join(ld, e))]
                luns[lun] = {"backstore": _backstore_of(os.path.join(ld, links[0])) if links else None}
            acls = {}
            for ini in _ls(os.path.join(tp, "acls")):
                ad = os.path.join(tp, "acls", ini)
                mapped = {}
                for m in _ls(ad):
                    if not m.startswith("lun_"):
                        continue
                    md = os.path.join(ad, m)
                    links = [e for e in _ls(md) if os.path.islink(os.path.join(md, e))]
                    mapped[m] = {"write_protect": _read(os.path.join(md, "write_protect")),
                                 "tpg_lun": os.path.basename(os.path.realpath(os.path.join(md, links[0])))
                                 if links else None}
                acls[ini] = {"userid": _read(os.path.join(ad, "auth", "userid")),
                             "has_password": bool(_read(os.path.join(ad, "auth", "password"))),
                             "mapped_luns": mapped}
            tpgs[tpg] = {"enable": _read(os.path.join(tp, "enable")),
                         "authentication": _read(os.path.join(tp, "attrib", "authentication")),
                         "generate_node_acls": _read(os.path.join(tp, "attrib", "generate_node_acls")),
                         "demo_mode_write_protect": _read(os.path.join(tp, "attrib", "demo_mode_write_protect")),
                         "portals": _ls(os.path.join(tp, "np")),
                         "luns": luns, "acls": acls}
        targets[iqn] = tpgs
    backstores = []
    core = os.path.join(CONFIGFS, "core")
    for hba in _ls(core):
        if "_" not in hba or hba == "alua":
            continue
        for name in _ls(os.path.join(core, hba)):
            d = os.path.join(core, hba, name)
            if not os.path.isdir(d) or name in ("hba_info", "hba_mode"):
                continue
            info = _read(os.path.join(d, "info")) or ""
            udev = ""
            for part in info.replace("\n", " ").split("  "):
                if "UDEV PATH:" in part:
                    udev = part.split("UDEV PATH:", 1)[1].strip()
            backstores.append({"name": f"{hba}/{name}", "enable": _read(os.path.join(d, "enable")),
                               "udev_path": udev or _read(os.path.join(d, "udev_path")),
                               "serial": _read(os.path.join(d, "wwn", "vpd_unit_serial"))})
    return {"targets": targets, "backstores": backstores}


def _rm_links(d: str, removed: list[str]) -> None:
    for e in _ls(d):
        p = os.path.join(d, e)
        if os.path.islink(p):
            os.unlink(p)
            removed.append(p)


def _rmdir(p: str, removed: list[str]) -> None:
    if os.path.isdir(p):
        os.rmdir(p)
        removed.append(p)


def clear_hearth_configfs() -> list[str]:
    """Remove every target and backstore named like hearth's, as a reboot would
    (configfs does not survive one), in the order configfs requires."""
    removed: list[str] = []
    iscsi = os.path.join(CONFIGFS, "iscsi")
    for iqn in _ls(iscsi):
        if not iqn.startswith(TARGET_PREFIX):
            continue
        for tpg in _ls(os.path.join(iscsi, iqn)):
            if not tpg.startswith("tpgt_"):
                continue
            tp = os.path.join(iscsi, iqn, tpg)
            try:
                with open(os.path.join(tp, "enable"), "w") as f:
                    f.write("0")
            except OSError:
                pass
            for ini in _ls(os.path.join(tp, "acls")):
                ad = os.path.join(tp, "acls", ini)
                for m in _ls(ad):
                    if m.startswith("lun_"):
                        _rm_links(os.path.join(ad, m), removed)
                        _rmdir(os.path.join(ad, m), removed)
                _rmdir(ad, removed)
            for lun in _ls(os.path.join(tp, "lun")):
                _rm_links(os.path.join(tp, "lun", lun), removed)
                _rmdir(os.path.join(tp, "lun", lun), removed)
            for np in _ls(os.path.join(tp, "np")):
                _rmdir(os.path.join(tp, "np", np), removed)
            _rmdir(tp, removed)
        _rmdir(os.path.join(iscsi, iqn), removed)
    core = os.path.join(CONFIGFS, "core")
    for hba in _ls(core):
        for name in _ls(os.path.join(core, hba)):
            if name.startswith(BACKSTORE_PREFIX):
                _rmdir(os.path.join(core, hba, name), removed)
    return removed


# --------------------------------------------------------------------------
# The request loop
# --------------------------------------------------------------------------

def handle(req: dict, vg: str, hearthd: Hearthd) -> dict:
    op = req.get("op")
    if op == "ping":
        return {"host": socket.gethostname()}
    if op == "read_lv":
        return read_lv(vg, req)
    if op == "lv_size":
        path = lv_path(vg, req["volume_id"])
        return {"path": path, "size": device_size(path)}
    if op == "hearthd_stop":
        return {"commands": [hearthd.stop()]}
    if op == "hearthd_start":
        return {"commands": [hearthd.start()]}
    if op == "hearthd_restart":
        return {"commands": [hearthd.stop(), hearthd.start()]}
    if op == "reboot_cleanup":
        stop = hearthd.stop()
        before = configfs_dump()
        removed = clear_hearth_configfs()
        left = [i for i in configfs_dump()["targets"] if i.startswith(TARGET_PREFIX)]
        if left:
            raise RuntimeError(f"targets left after the cleanup: {left}")
        start = hearthd.start()
        return {"removed": removed, "before": before, "commands": [stop, start]}
    if op == "configfs_dump":
        return configfs_dump()
    raise ValueError(f"unknown op {op!r}")


def write_atomic(path: str, obj: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def serve(args) -> int:
    reqdir = os.path.join(args.dir, "req")
    respdir = os.path.join(args.dir, "resp")
    os.makedirs(reqdir, exist_ok=True)
    os.makedirs(respdir, exist_ok=True)
    hearthd = Hearthd(args.start_cmd, args.stop_cmd)
    write_atomic(os.path.join(args.dir, "agent.json"),
                 {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), "vg": args.vg})
    log(f"serving {args.dir} (vg {args.vg})")
    deadline = time.monotonic() + args.timeout
    served = 0
    while True:
        names = sorted(n for n in _ls(reqdir) if n.endswith(".json"))
        for name in names:
            path = os.path.join(reqdir, name)
            rid = name[: -len(".json")]
            t = time.monotonic()
            try:
                with open(path) as f:
                    req = json.load(f)
                result = handle(req, args.vg, hearthd)
                resp = {"id": rid, "op": req.get("op"), "ok": True, "result": result}
            except Exception as e:  # every failure is an answer, never a dead agent
                req = locals().get("req") or {}
                resp = {"id": rid, "op": req.get("op") if isinstance(req, dict) else None, "ok": False,
                        "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-3000:]}
            resp["seconds"] = round(time.monotonic() - t, 3)
            write_atomic(os.path.join(respdir, name), resp)
            os.unlink(path)
            served += 1
            log(f"{resp['op']} {rid}: {'ok' if resp['ok'] else 'ERROR ' + resp['error']} ({resp['seconds']} s)")
        if os.path.exists(os.path.join(args.dir, "done")):
            log(f"done after {served} requests")
            return 0
        if time.monotonic() > deadline:
            log(f"no DIR/done after {args.timeout:.0f} s; giving up")
            return 1
        if not names:
            time.sleep(0.1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", required=True, help="the directory both nodes see")
    ap.add_argument("--vg", required=True, help="hearth's volume group")
    ap.add_argument("--start-cmd", required=True, help="starts hearthd (shlex-split, no shell)")
    ap.add_argument("--stop-cmd", required=True, help="stops hearthd (shlex-split, no shell)")
    ap.add_argument("--timeout", type=float, default=1800, help="give up after SECS without DIR/done")
    args = ap.parse_args()
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
