"""Support code for hearth's client-test tier (daemon, CLI runner, helpers).

The tests here drive the REAL hearthd binary with the unmodified OpenStack
clients (openstack CLI, cinder CLI, openstacksdk) installed by
scripts/setup-venv.sh. See tests/clients/README.md.

Environment:
  HEARTHD               path of the daemon (default <repo>/target/debug/hearthd)
  HEARTH_CONFIG         a --config file for every daemon a test starts without
                        one of its own (a bare name is looked up in fixtures/)
  HEARTH_START_TIMEOUT  seconds to wait for "listening on" (default 30)
  HEARTH_CLI_TIMEOUT    seconds one CLI command may take (default 120)
  HEARTH_WAIT_TIMEOUT   seconds to wait for a status change (default 60)
  HEARTH_STOP_TIMEOUT   seconds from SIGTERM to exit before it counts as a hang (20)
  CI                    when set, a missing daemon binary fails instead of skips
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import sysconfig
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO_ROOT / "fixtures"
PROJECT_ID = "ab1d2e3f4a5b4c6d8e9f0a1b2c3d4e5f"
USER_ID = "demo"

HEARTHD = Path(os.environ.get("HEARTHD") or REPO_ROOT / "target" / "debug" / "hearthd")
START_TIMEOUT = float(os.environ.get("HEARTH_START_TIMEOUT", "30"))
STOP_TIMEOUT = float(os.environ.get("HEARTH_STOP_TIMEOUT", "20"))
CLI_TIMEOUT = float(os.environ.get("HEARTH_CLI_TIMEOUT", "120"))
WAIT_TIMEOUT = float(os.environ.get("HEARTH_WAIT_TIMEOUT", "60"))

LISTEN_RE = re.compile(r"listening on (https?://127\.0\.0\.1:(\d+))")
OUTPUT_TAIL = 12000  # characters of a command's stderr shown on failure


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _dedupe_debug(text: str) -> str:
    """cinder --debug logs every line twice (plain, then 'DEBUG:<logger>:'
    prefixed); keep one copy."""
    out: list[str] = []
    for line in text.splitlines():
        if out and line.startswith("DEBUG:") and line.split(":", 2)[-1] == out[-1]:
            continue
        out.append(line)
    return "\n".join(out)


def _tail(text: str, n: int = OUTPUT_TAIL) -> str:
    return text if len(text) <= n else f"[... {len(text) - n} chars cut ...]\n" + text[-n:]


def resolve_config(config: str | os.PathLike | None) -> Path | None:
    """A config given as a bare file name is looked up in <repo>/fixtures/."""
    if config is None:
        return None
    p = Path(config)
    if not p.is_absolute() and not p.exists():
        p = FIXTURES_DIR / p
    if not p.is_file():
        pytest.fail(f"hearthd config {config!r} not found (looked at {p})")
    return p


def require_binary() -> None:
    if HEARTHD.is_file() and os.access(HEARTHD, os.X_OK):
        return
    msg = (
        f"hearthd binary not found or not executable at {HEARTHD} "
        "(build it with `cargo build`, or point HEARTHD at it)"
    )
    if _ci():
        pytest.fail(msg + " -- CI is set, so this is a failure, not a skip", pytrace=False)
    pytest.skip(msg)


# --------------------------------------------------------------------------
# The daemon
# --------------------------------------------------------------------------


class Daemon:
    """One hearthd process on 127.0.0.1:<ephemeral port>."""

    def __init__(self, workdir: Path, config: Path | None = None, extra_args=()):
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.config = config
        self.extra_args = list(extra_args)
        self.stderr_path = workdir / "hearthd.stderr"
        self.stdout_lines: list[str] = []
        self.proc: subprocess.Popen | None = None
        self.base_url: str | None = None
        self.port: int | None = None
        self._lines: queue.Queue = queue.Queue()
        self._reader: threading.Thread | None = None
        self.stopped = False
        self.start_failed = False

    @property
    def argv(self) -> list[str]:
        argv = [str(HEARTHD), "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir)]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        if self.database is not None:
            argv += ["--database-connection", self.database]
        return argv + self.extra_args

    @property
    def database(self) -> str | None:
        """With HEARTH_TEST_POSTGRES (a PostgreSQL server's URL), the store is a
        database of this daemon's own on that server, made at its first start."""
        admin = os.environ.get("HEARTH_TEST_POSTGRES")
        if not admin:
            return None
        if getattr(self, "_database", None) is None:
            name = "hearth_" + uuid.uuid4().hex
            subprocess.run(
                ["psql", "-q", "-v", "ON_ERROR_STOP=1", admin, "-c",
                 f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"],
                check=True, capture_output=True, timeout=60)
            self._database = admin.rsplit("/", 1)[0] + "/" + name
        return self._database

    @property
    def endpoint(self) -> str:
        """The project-scoped Block Storage endpoint the clients are given."""
        return self.endpoint_for(PROJECT_ID)

    def endpoint_for(self, project: str) -> str:
        """The endpoint of another project (noauth: the URL names the project)."""
        return f"{self.base_url}/v3/{project}"

    def _read_stdout(self) -> None:
        assert self.proc and self.proc.stdout
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)  # EOF

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def describe(self) -> str:
        """State and recent output, for failure messages."""
        if self.proc is None:
            state = "not started"
        elif self.proc.poll() is None:
            state = f"running (pid {self.proc.pid})"
        elif self.stopped:
            state = f"stopped by SIGTERM at teardown, exit code {self.proc.returncode}"
        else:
            state = f"EXITED with code {self.proc.returncode}"
        return (
            f"hearthd {state}: {shlex.join(self.argv)}\n"
            f"---- hearthd stdout ----\n{_tail(''.join(self.stdout_lines), 4000)}\n"
            f"---- hearthd stderr ----\n{_tail(self.stderr_text(), 8000)}"
        )

    def start(self) -> "Daemon":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.setdefault("RUST_LOG", "info")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                cwd=self.workdir,
                env=env,
                start_new_session=True,
            )
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()

        deadline = time.monotonic() + START_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.start_failed = True
                self._kill()
                pytest.fail(
                    f"hearthd did not print 'listening on http://127.0.0.1:PORT' "
                    f"within {START_TIMEOUT:.0f}s\n{self.describe()}",
                    pytrace=False,
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:  # stdout closed: the process is gone
                self.start_failed = True
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self._kill()
                pytest.fail(
                    "hearthd closed stdout before printing 'listening on ...'\n" + self.describe(),
                    pytrace=False,
                )
            m = LISTEN_RE.search(line)
            if m:
                self.base_url, self.port = m.group(1), int(m.group(2))
                return self

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._kill_group()

    def _kill_group(self) -> None:
        """Kill whatever the daemon left behind in its process group."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> list[str]:
        """SIGTERM, wait, and return a list of problems (empty when clean)."""
        problems: list[str] = []
        if self.proc is None or self.start_failed:  # already reported
            self._kill()
            return problems
        if self.proc.poll() is None:
            self.stopped = True
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append(f"hearthd did not exit within {STOP_TIMEOUT:.0f}s of SIGTERM (killed)")
                self._kill()
        else:
            problems.append("hearthd had already exited before the test's teardown")
        self._kill_group()
        if self._reader:
            self._reader.join(timeout=5)
        rc = self.proc.returncode
        if rc != 0:
            what = f"signal {-rc}" if rc < 0 else f"code {rc}"
            problems.append(f"hearthd exited with {what} (expected 0 after SIGTERM)")
        if "panicked" in self.stderr_text():
            problems.append("hearthd panicked (see its stderr)")
        return problems


# --------------------------------------------------------------------------
# The CLIs
# --------------------------------------------------------------------------


def venv_bin() -> Path:
    """The bin dir of the venv running these tests (scripts/setup-venv.sh)."""
    candidates = [Path(sysconfig.get_path("scripts")), Path(sys.prefix) / "bin"]
    if os.environ.get("HEARTH_VENV"):
        candidates.append(Path(os.environ["HEARTH_VENV"]) / "bin")
    candidates.append(REPO_ROOT / ".venv" / "bin")
    for c in candidates:
        if (c / "openstack").is_file() and (c / "cinder").is_file():
            return c
    pytest.fail(
        "openstack/cinder CLIs not found; run scripts/setup-venv.sh and use its pytest "
        f"(looked in {', '.join(map(str, candidates))})",
        pytrace=False,
    )


class CommandError(AssertionError):
    pass


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    daemon: Daemon

    @property
    def cmdline(self) -> str:
        return shlex.join(self.argv)

    def report(self, headline: str) -> str:
        return (
            f"{headline}\n$ {self.cmdline}\nexit code: {self.returncode}\n"
            f"---- stdout ----\n{_tail(self.stdout, 6000)}\n"
            f"---- stderr ----\n{_tail(_dedupe_debug(self.stderr))}\n"
            f"{self.daemon.describe()}"
        )

    def json(self):
        try:
            return json.loads(self.stdout)
        except ValueError as e:
            raise CommandError(self.report(f"stdout is not JSON ({e})")) from None

    def error_lines(self) -> list[str]:
        """The client's own one-line error messages (not the --debug trace)."""
        return [l for l in self.stderr.splitlines() if l.startswith("ERROR")]


class Clients:
    """Runs the openstack and cinder CLIs against one daemon, with the venv's
    bin dir first on PATH, a private HOME and no OS_* variables, so no
    clouds.yaml or credentials of the user's can leak in. Every command runs
    with --debug, so a failure shows the HTTP requests and responses. They act
    in PROJECT_ID as USER_ID unless made for another project (`as_project`)."""

    def __init__(self, daemon: Daemon, home: Path, timeout: float = CLI_TIMEOUT,
                 project: str = PROJECT_ID, user: str = USER_ID):
        self.daemon = daemon
        self.timeout = timeout
        self.home = home
        self.project = project
        self.user = user
        self.bin = venv_bin()
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "COLUMNS": "250",
            "NO_PROXY": "*",
            "no_proxy": "*",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    @property
    def endpoint(self) -> str:
        return self.daemon.endpoint_for(self.project)

    def as_project(self, project: str, user: str) -> "Clients":
        """The same CLIs acting in another project as another user (noauth: the
        endpoint URL names the project, cinder's token `user:project` the user)."""
        return Clients(self.daemon, self.home, self.timeout, project=project, user=user)

    def run(self, argv: list[str], check: bool = True, expect_fail: bool = False) -> Result:
        try:
            cp = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=self.env,
                timeout=self.timeout,
            )
            res = Result(argv, cp.returncode, cp.stdout.decode("utf-8", "replace"),
                         cp.stderr.decode("utf-8", "replace"), self.daemon)
        except subprocess.TimeoutExpired as e:
            res = Result(argv, -1, (e.stdout or b"").decode("utf-8", "replace"),
                         (e.stderr or b"").decode("utf-8", "replace"), self.daemon)
            raise CommandError(res.report(f"command timed out after {self.timeout:.0f}s")) from None
        if expect_fail and res.returncode == 0:
            raise CommandError(res.report("command succeeded but was expected to fail"))
        if check and not expect_fail and res.returncode != 0:
            raise CommandError(res.report("command failed"))
        return res

    def openstack(self, *args: str, check: bool = True, expect_fail: bool = False) -> Result:
        argv = [str(self.bin / "openstack"), "--debug", "--os-auth-type", "none",
                "--os-endpoint", self.endpoint, *args]
        return self.run(argv, check=check, expect_fail=expect_fail)

    def openstack_json(self, *args: str):
        """openstack ... -f json, parsed."""
        return self.openstack(*args, "-f", "json").json()

    def cinder(self, *args: str, check: bool = True, expect_fail: bool = False) -> Result:
        argv = [str(self.bin / "cinder"), "--debug", "--os-auth-type", "noauth",
                "--os-endpoint", self.endpoint, "--os-user-id", self.user,
                "--os-project-id", self.project, *args]
        return self.run(argv, check=check, expect_fail=expect_fail)


# --------------------------------------------------------------------------
# openstacksdk
# --------------------------------------------------------------------------


def sdk_connect(endpoint: str):
    """An openstacksdk Connection to hearthd without Keystone. Its config
    comes only from these arguments (no clouds.yaml, no OS_* variables)."""
    import openstack

    return openstack.connect(
        auth_type="none",
        auth={"endpoint": endpoint},
        block_storage_endpoint_override=endpoint,
        load_yaml_config=False,
        load_envvars=False,
    )


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def wait_for(fetch: Callable[[], object], ok: Callable[[object], bool], what: str,
             timeout: float = WAIT_TIMEOUT, interval: float = 0.5,
             bad: Callable[[object], bool] | None = None):
    """Poll fetch() until ok(value); fail after `timeout` seconds, or at once
    when bad(value). Returns the last value."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fetch()
        if ok(last):
            return last
        if bad is not None and bad(last):
            pytest.fail(f"while waiting for {what}: reached a failure state: {last!r}", pytrace=False)
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}",
                        pytrace=False)
        time.sleep(interval)


def parse_tables(text: str) -> list[list[dict[str, str]]]:
    """Parse the prettytable tables a CLI printed (cinder has no -f json).
    Returns one list of row dicts per table. A row whose first cell is empty
    continues the previous row (wrapped values), and is joined with '\\n'."""
    tables: list[list[dict[str, str]]] = []
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    borders = 0
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("+") and s.endswith("+") and set(s) <= set("+-="):
            borders += 1
            if borders == 3:  # bottom border closes the table
                tables.append(rows)
                header, rows, borders = None, [], 0
            continue
        if not (s.startswith("|") and s.endswith("|")) or borders == 0:
            continue
        cells = [c.strip() for c in s[1:-1].split("|")]
        if header is None:
            header = cells
            continue
        if len(cells) != len(header):
            # a value containing '|': keep the first cell, glue the rest
            cells = [cells[0], "|".join(cells[1:]).strip()] + [""] * (len(header) - 2)
        if rows and cells[0] == "":
            prev = rows[-1]
            for h, c in zip(header, cells):
                if c:
                    prev[h] = f"{prev[h]}\n{c}" if prev[h] else c
            continue
        rows.append(dict(zip(header, cells)))
    return tables


def parse_table(text: str) -> list[dict[str, str]]:
    """The single table a command printed."""
    tables = parse_tables(text)
    assert len(tables) == 1, f"expected one table, found {len(tables)} in:\n{text}"
    return tables[0]


def parse_kv(text: str) -> dict[str, str]:
    """A Property | Value table as a dict."""
    rows = parse_table(text)
    if not rows:
        return {}
    k, v = list(rows[0].keys())[:2]
    return {r[k]: r[v] for r in rows}


# --------------------------------------------------------------------------
# Volume data: os-brick's LOCAL connector and content checks
# (used by test_clone_data.py and test_os_brick_local.py)
# --------------------------------------------------------------------------

MiB = 1 << 20
GiB = 1 << 30
INSTANCE_UUID = "7f0e6f6c-1111-4222-8333-944455556666"


def brick_connector_properties(host: str = "compute1") -> dict:
    """The connector os-brick sends (`{platform, os_type, ip, host, multipath,
    enforce_multipath, initiator}` minus the iSCSI initiator), plus the LOCAL
    connector's own properties (none). Built by hand, because
    os_brick's get_connector_properties() asks every protocol and, as root,
    writes /etc/nvme/hostnqn."""
    import platform

    from os_brick.initiator.connectors.local import LocalConnector

    props = {"platform": platform.machine(), "os_type": sys.platform, "ip": "127.0.0.1",
             "host": host, "multipath": False, "enforce_multipath": False}
    props.update(LocalConnector.get_connector_properties("sudo"))
    return props


def write_at(path: str | os.PathLike, offset: int, data: bytes) -> None:
    """Write `data` at `offset` of an existing file or device (no truncation), fsync."""
    fd = os.open(path, os.O_WRONLY)
    try:
        done = 0
        while done < len(data):
            done += os.pwrite(fd, data[done:], offset + done)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_at(path: str | os.PathLike, offset: int, n: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


def sha256_file(path: str | os.PathLike, length: int | None = None) -> str:
    """sha256 of a file's first `length` bytes (all of it by default)."""
    import hashlib

    h = hashlib.sha256()
    left = length if length is not None else -1
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(8 * MiB)
        view = memoryview(buf)
        while left != 0:
            want = len(buf) if left < 0 else min(len(buf), left)
            n = f.readinto(view[:want])
            if not n:
                break
            h.update(view[:n])
            if left > 0:
                left -= n
    if left > 0:
        raise AssertionError(f"{path} is shorter than {length} bytes")
    return h.hexdigest()


def all_zero(path: str | os.PathLike, offset: int, length: int) -> bool:
    zeros = bytes(8 * MiB)
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        while length > 0:
            chunk = f.read(min(len(zeros), length))
            if not chunk:
                return False
            if chunk != zeros[:len(chunk)]:
                return False
            length -= len(chunk)
    return True


def wait_volume_status(bs, volume_id: str, status: str, what: str | None = None):
    """openstacksdk: poll a volume until it has `status`; fail on error*."""
    return wait_for(lambda: bs.get_volume(volume_id), lambda v: v.status == status,
                    what or f"volume {volume_id} to be {status}",
                    bad=lambda v: (v.status or "").startswith("error"))


class LocalAttach:
    """A volume attached to this host the way Nova does it with the
    attachments API (3.44+), and connected with os-brick's LOCAL connector:
    create the attachment with the connector (connection_info comes back with
    its keys at the top level), connect_volume(connection_info), complete.
    `path` is the path os-brick returned. Closing disconnects, deletes the
    attachment and waits for the volume to be available again."""

    def __init__(self, bs, brick, volume_id: str, instance: str = INSTANCE_UUID,
                 host: str = "compute1"):
        self.bs, self.brick, self.volume_id = bs, brick, volume_id
        self.instance, self.host = instance, host
        self.attachment = None
        self.info: dict | None = None
        self.device: dict | None = None

    @property
    def path(self) -> str:
        assert self.device is not None
        return self.device["path"]

    def __enter__(self) -> "LocalAttach":
        bs = self.bs
        self.attachment = bs.create_attachment(
            self.volume_id, connector=brick_connector_properties(self.host), instance=self.instance)
        info = self.attachment.connection_info
        assert isinstance(info, dict) and info.get("driver_volume_type") == "local", \
            f"attachment's connection_info is not a local one: {info!r}"
        assert info.get("device_path"), f"no device_path in connection_info: {info!r}"
        self.info = info
        self.device = self.brick.connect_volume(info)
        assert self.device == {"type": "local", "path": info["device_path"]}, self.device
        bs.complete_attachment(self.attachment)
        wait_volume_status(bs, self.volume_id, "in-use")
        return self

    def __exit__(self, *exc) -> None:
        if self.device is not None:
            self.brick.disconnect_volume(self.info, self.device)
        if self.attachment is not None:
            self.bs.delete_attachment(self.attachment, ignore_missing=False)
            if exc[0] is None:
                wait_volume_status(self.bs, self.volume_id, "available")
