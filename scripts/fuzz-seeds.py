#!/usr/bin/env python3
"""Write the fuzz targets' seed inputs into fuzz/corpus/<target>/seed-*.

Seeds are what hearth really reads: the requests the OpenStack clients send (from
shared/reference/client-requests.txt when it is there), the config fixtures, LVM's
and device-mapper's answers as the unit tests know them, a backup repository's
objects, an S3 store's answers. Run once; fuzz runs add what they find (scripts/fuzz.sh --merge).
"""
import json
import os
import re
import struct
import sys
import uuid

repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = os.path.join(repo, "fuzz", "corpus")


seen = set()


def seed(target, name, data):
    """Write one seed, unless the target has one with the same bytes."""
    if isinstance(data, str):
        data = data.encode()
    if (target, data) in seen:
        return
    seen.add((target, data))
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:80]), "wb") as f:
        f.write(data)


# --- api_request and api_body: the clients' requests ---------------------------------
def body_routes():
    """api_body's routes, in order, as src/fuzzing.rs lists them (BODY_ROUTES)."""
    text = open(os.path.join(repo, "src", "fuzzing.rs")).read()
    table = text[text.index("const BODY_ROUTES"):]
    table = table[:table.index("];")]
    return re.findall(r'\("([A-Z]+)", "([^"]+)"\)', table)


BODY_ROUTES = body_routes()
assert BODY_ROUTES, "no BODY_ROUTES in src/fuzzing.rs"
ID_KIND = {"volumes": "{volume}", "snapshots": "{snapshot}", "types": "{type}"}


def template(path):
    """The recorded path with the harness's names: {id} after volumes/ is {volume}..."""
    parts = path.split("/")
    for i, p in enumerate(parts):
        if p == "{id}":
            parts[i] = ID_KIND.get(parts[i - 1], "7c1e2d4a-0000-4000-8000-000000000001")
    return "/".join(parts)


def route_index(method, path):
    shape = re.sub(r"\{[a-z]+\}", "X", path)
    for i, (m, p) in enumerate(BODY_ROUTES):
        if m == method and re.sub(r"\{[a-z]+\}", "X", p) == shape:
            return i
    return None


requests = os.path.join(repo, "..", "shared", "reference", "client-requests.txt")
if os.path.exists(requests):
    lines = open(requests).read().splitlines()
    command = "none"
    n = 0
    for i, line in enumerate(lines):
        if line.startswith("## "):
            command = line[3:].strip()
        m = re.match(r"\s+C (\w+)\s+(\S+)\s+(\S*)\s*->", line)
        if not m:
            continue
        method, path, flags = m.groups()
        path = template(path)
        body = ""
        if i + 1 < len(lines) and lines[i + 1].strip().startswith("body: "):
            body = lines[i + 1].strip()[len("body: "):]
            body = re.sub(r'"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"', '"{volume}"', body)
        mv = re.search(r"mv=([0-9.]+|latest)", flags)
        head = [f"{method} {path}", "X-Auth-Token: " + ("admin:{project}" if n % 2 else "demo:{project}")]
        if mv:
            head.append(f"OpenStack-API-Version: volume {mv.group(1)}")
        if body:
            head.append("Content-Type: application/json")
        n += 1
        seed("api_request", f"{n:03}-{command}", "\n".join(head) + "\n\n" + body)
        r = route_index(method, path)
        if body and r is not None:
            seed("api_body", f"{n:03}-{command}", bytes([r]) + body.encode())
else:
    print(f"{requests} is missing: no client requests as seeds", file=sys.stderr)
for r, (method, path) in enumerate(BODY_ROUTES):
    seed("api_body", f"route-{r:02}-empty", bytes([r]) + b"{}")
seed("api_request", "list-query", "GET /v3/{project}/volumes/detail?limit=2&sort=name:asc&status=available&"
     "metadata={'a':'b'}&with_count=true\nX-Auth-Token: demo:{project}\nOpenStack-API-Version: volume 3.67\n\n")
seed("api_request", "versions", "GET /\n\n")

# --- config ---------------------------------------------------------------------------
for f in sorted(os.listdir(os.path.join(repo, "fixtures"))):
    if f.endswith(".toml"):
        seed("config", f, open(os.path.join(repo, "fixtures", f)).read())

# --- microversion ---------------------------------------------------------------------
for i, v in enumerate(["volume 3.0", "volume 3.67", "volume latest", "compute 2.1, volume 3.44", "volume 3.68",
                       "volume  3.5 ,", "VOLUME 3.10"]):
    seed("microversion", str(i), v)

# --- lvm_report -----------------------------------------------------------------------
lvs = {"report": [{"lv": [
    {"lv_name": "hearth-thinpool", "lv_size": "1073741824", "lv_attr": "twi-aotz--", "pool_lv": "", "origin": "",
     "data_percent": "12.50", "metadata_percent": "1.02"},
    {"lv_name": "volume-" + str(uuid.UUID(int=1)), "lv_size": "2147483648", "lv_attr": "Vwi-a-tz--",
     "pool_lv": "hearth-thinpool", "origin": "", "data_percent": "0.00", "metadata_percent": "", "thin_id": "1"},
    {"lv_name": "_snapshot-" + str(uuid.UUID(int=2)), "lv_size": "2147483648", "lv_attr": "Vwi---tz-k",
     "pool_lv": "hearth-thinpool", "origin": "volume-" + str(uuid.UUID(int=1)), "data_percent": "",
     "metadata_percent": "", "thin_id": "2"}]}]}
seed("lvm_report", "lvs-thin", json.dumps(lvs))
seed("lvm_report", "vgs", json.dumps({"report": [{"vg": [{"vg_name": "vg", "vg_size": "10733223936",
                                                           "vg_free": "5368709120"}]}]}))

# --- device_mapper --------------------------------------------------------------------
HEADER = 312


def reply(area, target_count=0, flags=0):
    name = b"vg-volume--1".ljust(128, b"\0")
    uuid_ = b"LVM-abcd".ljust(129, b"\0")
    header = struct.pack("<3I", 4, 48, 0) + struct.pack("<II", HEADER + len(area), HEADER) + \
        struct.pack("<IiII", target_count, 1, flags, 7) + struct.pack("<I", 0) + struct.pack("<Q", (253 << 8) | 3) + \
        name + uuid_ + b"\0" * 7
    assert len(header) == HEADER, len(header)
    return header + area


def name_record(dev, name, last):
    body = struct.pack("<QI", dev, 0) + name + b"\0"
    body += b"\0" * ((-len(body)) % 8)
    nxt = 0 if last else len(body)
    return struct.pack("<QI", dev, nxt) + body[12:]


area = name_record((253 << 8) | 0, b"vg-hearth--thinpool_tmeta", False) + name_record((253 << 8) | 1, b"vg-volume--1", True)
seed("device_mapper", "list-devices", reply(area))


def spec(start, length, ttype, params, nxt):
    s = struct.pack("<QQiI", start, length, 0, nxt) + ttype.ljust(16, b"\0") + params + b"\0"
    return s + b"\0" * ((-len(s)) % 8)


pool = b"0 11/1024 0/8192 - rw discard_passdown queue_if_no_space - 256"
first = spec(0, 2097152, b"thin-pool", pool, 0)
second = spec(2097152, 2048, b"thin", b"1024 2047", 0)
first = spec(0, 2097152, b"thin-pool", pool, len(first))
seed("device_mapper", "table-status", reply(first + second, target_count=2))
seed("device_mapper", "status-lines", pool.decode() + "\n0 -\n1024 2047\nFail\nError\n"
     "0 0/0 0/0 - rw discard_passdown queue_if_no_space -\n")

# --- thin_delta -----------------------------------------------------------------------
seed("thin_delta", "example", """<superblock uuid="" time="2" transaction="4" data_block_size="128" nr_data_blocks="0">
  <diff left="1" right="2">
    <same begin="0" length="10"/>
    <different begin="10" length="1"/>
    <right_only begin="11" length="4"/>
    <left_only begin="20" length="2"/>
  </diff>
</superblock>
""")

# --- backup_objects -------------------------------------------------------------------
backup_id = "0b6ee5ec-4e8e-4bbc-8e2e-3bd7f0d9b3c1"
chunk = "ab" * 32
seed("backup_objects", "manifest", json.dumps({
    "version": 1, "backup_id": backup_id, "parent": None, "created": "2026-12-04T08:00:00Z",
    "size": 3 * 4194304 - 4096, "chunk_size": 4194304, "chunks": [chunk, None, chunk],
    "metadata": {"volume_id": str(uuid.UUID(int=1))},
    "summary": {"chunk_count": 2, "new_chunks": 1, "bytes_read": 8388608, "bytes_stored": 1000}}))
seed("backup_objects", "config", json.dumps({
    "format": "hearth-backup", "version": 1, "id": "0" * 32, "chunk_size": 4194304, "chunk_hash": "hmac-sha256",
    "compression": "zstd", "encryption": {"aead": "xchacha20-poly1305", "kdf": "hkdf-sha256", "salt": "00" * 16,
                                          "key_check": "11" * 40}}))
seed("backup_objects", "lock", json.dumps({"kind": "shared", "purpose": "backup " + backup_id, "host": "h",
                                           "boot_id": "b", "pid_ns": "pid:[4026531836]", "pid": 42}))
seed("backup_objects", "chunk-key", "chunks/ab/" + chunk)

# --- configfs_names -------------------------------------------------------------------
for i, n in enumerate(["volume-" + str(uuid.UUID(int=1)), ".partial-volume-" + str(uuid.UUID(int=1)),
                       "snapshot-" + str(uuid.UUID(int=2)), "_snapshot-" + str(uuid.UUID(int=2)),
                       "_partial-volume-" + str(uuid.UUID(int=3)), "iqn.2010-10.org.openstack:volume-1",
                       "CHAP user secret"]):
    seed("configfs_names", str(i), n)

# --- s3_answers -----------------------------------------------------------------------
seed("s3_answers", "list", """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>chunks/</Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>t1</NextContinuationToken><Contents><Key>chunks/ab/abab</Key><LastModified>2026-12-02T13:06:11.000Z</LastModified><ETag>"x"</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>""")
seed("s3_answers", "error", """<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><RequestId>tx1</RequestId></Error>""")
print("seeds written under", out)
