"""The Python half of scripts/objectstore/swift.sh (run with the Swift venv's python).

    swift_helper.py build DIR PROXY_PORT MEMCACHED(0|1)
        Choose free loopback ports, build the three rings (one Python process: ~0.6 s,
        where nine swift-ring-builder calls take ~7 s) and write every config under
        DIR/etc. Prints shell lines PORT_<NAME>=N for swift.sh.

    swift_helper.py ready DIR TIMEOUT NAME=PID:PORT...
        Wait (polling, with a deadline) until every server answers its /healthcheck,
        check that each port has exactly one listening socket and that it is the
        recorded server's (Swift binds with SO_REUSEPORT, so a second server on a
        busy port does not fail: the kernel would split the connections), then
        authenticate (tempauth), create the bucket (a Swift container), check that
        the S3 API answers a signed HEAD of it, and write DIR/objectstore.env and
        DIR/objectstore.json.

Swift is configured for tests: part power 6, one replica, one device in a plain
directory, every server in one process (workers = 0), tempauth with stateless
(fernet) tokens, the s3api middleware before it.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import shlex
import socket
import sys
import time
import urllib.error
import urllib.request

REGION = "us-east-1"
ACCOUNT = "hearth"
USER = "backup"


def free_port(exclude):
    """A loopback port nobody listens on, bound without SO_REUSEPORT (so a listener
    that set it still makes the bind fail), then released for the server."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in exclude:
            return port
    raise SystemExit("swift_helper: no free loopback port")


def port_is_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def check_xattrs(path):
    """Swift keeps object metadata in user xattrs: fail early and clearly without them."""
    probe = os.path.join(path, ".xattr-probe")
    with open(probe, "w"):
        pass
    try:
        os.setxattr(probe, "user.hearth.probe", b"1")
    except OSError as e:
        raise SystemExit(
            f"swift_helper: {path} has no user xattrs ({e.strerror}); Swift needs them: "
            "use a directory on ext4, xfs or tmpfs")
    finally:
        os.unlink(probe)


def build_rings(etc, ports):
    from swift.common.ring import RingBuilder

    for name in ("account", "container", "object"):
        b = RingBuilder(6, 1, 1)
        b.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1",
                   "port": ports[name], "device": "d1", "weight": 100,
                   "meta": ""})
        b.rebalance()
        b.get_ring().save(os.path.join(etc, f"{name}.ring.gz"))


def make_tls(d):
    """A CA and a certificate for 127.0.0.1 and localhost signed by it, valid for a
    day: DIR/tls/ca.pem (what clients trust), server.pem and server.key (the proxy's)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    tls = os.path.join(d, "tls")
    os.makedirs(tls, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hearth test object store CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    write(os.path.join(tls, "ca.pem"), ca.public_bytes(pem).decode())
    write(os.path.join(tls, "server.pem"), cert.public_bytes(pem).decode())
    write(os.path.join(tls, "server.key"), key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(), 0o600)
    return tls


def write(path, text, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def cmd_build(d, proxy_port, memcached):
    etc = os.path.join(d, "etc")
    devices = os.path.join(d, "devices")
    os.makedirs(etc, exist_ok=True)
    os.makedirs(os.path.join(devices, "d1"), exist_ok=True)
    check_xattrs(os.path.join(devices, "d1"))

    ports = {}
    if proxy_port:
        if not port_is_free(proxy_port):
            raise SystemExit(f"swift_helper: port {proxy_port} on 127.0.0.1 is in use")
        ports["proxy"] = proxy_port
    else:
        ports["proxy"] = free_port(set())
    for name in ("account", "container", "object"):
        ports[name] = free_port(set(ports.values()))
    if memcached:
        ports["memcached"] = free_port(set(ports.values()))

    build_rings(etc, ports)
    tls_conf = ""
    if os.environ.get("SWIFT_TLS") == "1":
        tls = make_tls(d)
        tls_conf = f"cert_file = {tls}/server.pem\nkey_file = {tls}/server.key\n"

    # A fresh secret and fernet key per store: tests look for the secret in error
    # texts, which a well-known one ("testing") would make meaningless.
    secret = base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
    fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    hash_suffix = os.urandom(8).hex()
    max_listing = int(os.environ.get("SWIFT_S3_MAX_LISTING") or 1000)
    user = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name

    write(os.path.join(etc, "swift.conf"), f"""\
[swift-hash]
swift_hash_path_suffix = {hash_suffix}
swift_hash_path_prefix = hearth

[storage-policy:0]
name = Policy-0
default = yes
""")

    common = f"""\
[DEFAULT]
bind_ip = 127.0.0.1
workers = 0
user = {user}
swift_dir = {etc}
devices = {devices}
mount_check = false
disable_fallocate = true
log_level = INFO
"""
    for name in ("account", "container", "object"):
        extra = "keep_cache_private = true\n" if name == "object" else ""
        write(os.path.join(etc, f"{name}-server.conf"), f"""\
# Written by scripts/objectstore/swift.sh.
{common}bind_port = {ports[name]}
log_name = {name}-server

[pipeline:main]
pipeline = healthcheck {name}-server

[app:{name}-server]
use = egg:swift#{name}
{extra}
[filter:healthcheck]
use = egg:swift#healthcheck
""")

    cache = "cache " if memcached else ""
    cache_section = (f"""
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{ports['memcached']}
""" if memcached else "")
    filters = "".join(
        f"\n[filter:{f}]\nuse = egg:swift#{f}\n"
        for f in ("catch_errors", "gatekeeper", "healthcheck", "listing_formats",
                  "bulk", "copy", "slo", "dlo", "versioned_writes", "symlink"))
    write(os.path.join(etc, "proxy-server.conf"), f"""\
# Written by scripts/objectstore/swift.sh.
{common}bind_port = {ports['proxy']}
log_name = proxy-server
{tls_conf}
[pipeline:main]
# s3api before the auth middleware; slo for S3 multipart uploads, copy for CopyObject
pipeline = catch_errors gatekeeper healthcheck proxy-logging {cache}listing_formats bulk s3api tempauth copy slo dlo versioned_writes symlink proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:s3api]
use = egg:swift#s3api
location = {REGION}
# keys per listing page at most (tests lower it to page with few keys)
max_bucket_listing = {max_listing}

[filter:tempauth]
use = egg:swift#tempauth
# Swift user {ACCOUNT}:{USER}; the same pair is the S3 access key and secret
user_{ACCOUNT}_{USER} = {secret} .admin
# stateless tokens: no memcached needed for auth
fernet_key_k1 = {fernet_key}
active_fernet_key_id = k1
{cache_section}{filters}""", 0o600)
    write(os.path.join(d, "secret"), secret + "\n", 0o600)

    for name, port in ports.items():
        print(f"PORT_{name.upper()}={port}")


# ---------------------------------------------------------------------------
# ready
# ---------------------------------------------------------------------------

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def listen_inodes(port):
    """Inodes of the sockets listening on 127.0.0.1/0.0.0.0:port (TCP, IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, state, inode = f[1], f[3], f[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def socket_inodes(pid):
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


SSL_CONTEXT = None


def http(method, url, headers=None, timeout=5.0):
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=SSL_CONTEXT) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def sigv4_headers(method, url_path, host, access, secret):
    """Headers of a SigV4-signed request with an empty body (enough for HEAD bucket)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    payload = hashlib.sha256(b"").hexdigest()
    canonical_headers = f"host:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n"
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = f"{method}\n{url_path}\n\n{canonical_headers}\n{signed}\n{payload}"
    scope = f"{day}/{REGION}/s3/aws4_request"
    to_sign = "AWS4-HMAC-SHA256\n{}\n{}\n{}".format(
        amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest())
    k = ("AWS4" + secret).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "x-amz-date": amz_date,
        "x-amz-content-sha256": payload,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                         f"SignedHeaders={signed}, Signature={sig}",
    }


def cmd_ready(d, timeout, servers):
    global SSL_CONTEXT
    deadline = time.monotonic() + timeout
    log_dir = os.path.join(d, "log")
    ca_file = os.path.join(d, "tls", "ca.pem")
    tls = os.path.exists(ca_file)
    if tls:
        import ssl
        SSL_CONTEXT = ssl.create_default_context(cafile=ca_file)

    def fail(msg, name=None):
        print(f"swift_helper: {msg}", file=sys.stderr)
        if name:
            path = os.path.join(log_dir, f"{name}.log")
            try:
                tail = open(path, errors="replace").read().splitlines()[-40:]
                print(f"---- {path} (last 40 lines) ----", file=sys.stderr)
                print("\n".join(tail), file=sys.stderr)
            except OSError:
                pass
        sys.exit(1)

    # 1. Every server answers its healthcheck (memcached: accepts a connection).
    for name, (pid, port) in servers.items():
        while True:
            if not alive(pid):
                fail(f"{name} (pid {pid}) exited while starting", name)
            try:
                if name == "memcached":
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                scheme = "https" if tls and name == "proxy" else "http"
                status, _, body = http("GET", f"{scheme}://127.0.0.1:{port}/healthcheck", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                fail(f"{name} (pid {pid}) did not answer on 127.0.0.1:{port} within {timeout} s", name)
            time.sleep(0.05)

    # 2. Nobody else listens on our ports.
    for name, (pid, port) in servers.items():
        theirs = listen_inodes(port) - socket_inodes(pid)
        if theirs:
            fail(f"another process also listens on 127.0.0.1:{port} (the {name} port): "
                 "Swift binds with SO_REUSEPORT, so the kernel would split the "
                 "connections between them; start again (a new port is chosen)")

    # 3. Authenticate, create the bucket (a container of the account), check S3.
    proxy_port = servers["proxy"][1]
    base = f"{'https' if tls else 'http'}://127.0.0.1:{proxy_port}"
    secret = open(os.path.join(d, "secret")).read().strip()
    user = f"{ACCOUNT}:{USER}"
    bucket = os.environ.get("SWIFT_BUCKET", "hearth-test")
    while True:
        status, headers, body = http("GET", f"{base}/auth/v1.0",
                                     {"X-Auth-User": user, "X-Auth-Key": secret})
        if status == 200:
            break
        if time.monotonic() > deadline:
            fail(f"tempauth answered {status} to {user} within {timeout} s", "proxy")
        time.sleep(0.05)
    token = headers.get("X-Auth-Token")
    storage_url = headers.get("X-Storage-Url")
    while True:
        status, _, body = http("PUT", f"{storage_url}/{bucket}", {"X-Auth-Token": token})
        if status in (201, 202):
            break
        if time.monotonic() > deadline:
            fail(f"PUT container {bucket} answered {status}: {body[:200]!r}", "proxy")
        time.sleep(0.05)
    host = f"127.0.0.1:{proxy_port}"
    status, _, body = http("HEAD", f"{base}/{bucket}",
                           sigv4_headers("HEAD", f"/{bucket}", host, user, secret))
    if status != 200:
        fail(f"the S3 API answered {status} to a signed HEAD of bucket {bucket}", "proxy")

    info = {
        "endpoint_url": base,
        "ca_cert_file": ca_file if tls else None,
        "region": REGION,
        "access_key": user,
        "secret_key": secret,
        "bucket": bucket,
        "port": proxy_port,
        "swift": {"auth_url": f"{base}/auth/v1.0", "user": user, "key": secret,
                  "storage_url": storage_url},
        "pids": {name: pid for name, (pid, _) in servers.items()},
        "memcached": "memcached" in servers,
        "dir": d,
        "log_dir": log_dir,
    }
    env = {
        "OBJECTSTORE_ENDPOINT_URL": base,
        "OBJECTSTORE_REGION": REGION,
        "OBJECTSTORE_CA_CERT_FILE": ca_file if tls else "",
        "OBJECTSTORE_ACCESS_KEY": user,
        "OBJECTSTORE_SECRET_KEY": secret,
        "OBJECTSTORE_BUCKET": bucket,
        "OBJECTSTORE_PORT": str(proxy_port),
        "OBJECTSTORE_PROXY_PID": str(servers["proxy"][0]),
        "SWIFT_AUTH_URL": f"{base}/auth/v1.0",
        "SWIFT_USER": user,
        "SWIFT_KEY": secret,
        "SWIFT_STORAGE_URL": storage_url,
    }
    write(os.path.join(d, "objectstore.json"), json.dumps(info, indent=2) + "\n", 0o600)
    write(os.path.join(d, "objectstore.env"),
          "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items()), 0o600)


def main(argv):
    if len(argv) >= 4 and argv[0] == "build":
        cmd_build(os.path.abspath(argv[1]), int(argv[2]), argv[3] == "1")
    elif len(argv) >= 4 and argv[0] == "ready":
        servers = {}
        for a in argv[3:]:
            name, rest = a.split("=", 1)
            pid, port = rest.split(":")
            servers[name] = (int(pid), int(port))
        cmd_ready(os.path.abspath(argv[1]), float(argv[2]), servers)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
