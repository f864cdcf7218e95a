"""Fixtures for hearth's client-test tier; the machinery is in support.py."""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable

import pytest

from support import (HEARTHD, PROJECT_ID, Clients, Daemon, require_binary, resolve_config,
                     sdk_connect)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture
def hearthd_factory(request, tmp_path) -> Callable[..., Daemon]:
    """start(config=None, extra_args=()) -> a running Daemon; all are stopped
    (SIGTERM) at teardown, and the test fails if any exited non-zero or
    panicked."""
    daemons: list[Daemon] = []

    def start(config=None, extra_args=()) -> Daemon:
        require_binary()
        if config is None:
            config = os.environ.get("HEARTH_CONFIG") or None
        d = Daemon(tmp_path / f"hearthd{len(daemons)}", resolve_config(config), extra_args)
        daemons.append(d)
        return d.start()

    yield start

    problems: list[str] = []
    for d in daemons:
        found = d.stop()
        if found:
            problems.append("\n".join(found) + "\n" + d.describe())
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and not problems:
        # Make the daemon's side of a failed test visible in the report.
        for d in daemons:
            sys.stderr.write("\n" + d.describe() + "\n")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def hearthd(request, hearthd_factory) -> Daemon:
    """A fresh daemon with an empty data dir. A test may pick a config from
    fixtures/ with @pytest.mark.hearthd_config("file.toml")."""
    marker = request.node.get_closest_marker("hearthd_config")
    return hearthd_factory(config=marker.args[0] if marker else None)


@pytest.fixture
def clients(hearthd, tmp_path) -> Clients:
    return Clients(hearthd, tmp_path / "home")


@pytest.fixture
def sdk_env(monkeypatch, caplog):
    """In-process openstacksdk: no proxies for the loopback daemon, and
    keystoneauth's request/response log (DEBUG) captured for failure reports."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "*")
    caplog.set_level(logging.DEBUG, logger="keystoneauth")


@pytest.fixture
def sdk(hearthd, sdk_env):
    """An openstacksdk Connection to the test's daemon."""
    conn = sdk_connect(hearthd.endpoint)
    yield conn
    conn.close()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "hearthd_config(name): start the test's daemon with --config fixtures/<name>"
    )
    config.addinivalue_line(
        "markers", "authtoken(lines): more [keystone_authtoken] lines for the test's keystone daemon"
    )


def pytest_report_header(config):
    state = "present" if HEARTHD.is_file() else "MISSING"
    return [f"hearthd: {HEARTHD} ({state}); project {PROJECT_ID}"]


@pytest.fixture
def brick(tmp_path):
    """os-brick's LOCAL connector, set up as a plain root script would:
    privileged steps in-process (no privsep helper) and file locks under the
    test's tmp dir."""
    import warnings

    with warnings.catch_warnings():
        # oslo.privsep imports eventlet, which warns that it is deprecated: not ours
        warnings.simplefilter("ignore")
        import os_brick.privileged
        from os_brick import initiator
        from os_brick.initiator import connector
        from oslo_concurrency import lockutils

    os_brick.privileged.default.set_client_mode(False)
    locks = tmp_path / "brick-locks"
    locks.mkdir(exist_ok=True)
    lockutils.set_defaults(lock_path=str(locks))
    assert initiator.LOCAL == "LOCAL"
    return connector.InitiatorConnector.factory(initiator.LOCAL, root_helper="sudo")
