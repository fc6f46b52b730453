"""Fixtures shared by every test layer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import REPO, DaemonProcess, require_tool, unavailable


@pytest.fixture
def daemon_factory(tmp_path):
    """Start real daemons: `daemon_factory(args, env)`; all are killed at teardown."""
    started = []

    def start(args=(), env=None, **kwargs):
        proc = DaemonProcess(args, env, **kwargs)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.__exit__(None, None, None)


@pytest.fixture
def daemon(daemon_factory):
    """One real daemon with default settings on a free loopback port."""
    return daemon_factory()


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (mounting needs root, as `make test` runs in CI)."""
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                           str(mountpoint)], capture_output=True, text=True)
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


@pytest.fixture
def receiver():
    """A real HTTP receiver of notifications on 127.0.0.1 (tests/alerts/receivers.py)."""
    from tests.alerts.receivers import HttpReceiver

    server = HttpReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps the mails it takes."""
    pytest.importorskip("aiosmtpd")
    from tests.alerts.receivers import SmtpReceiver

    server = SmtpReceiver().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the session; tests keep apart by key prefix (`redis_prefix`)."""
    from tests.redis_server import RedisServer

    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_prefix(request):
    """A key prefix no other test uses."""
    import uuid

    return f"test-{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="session")
def built_deb(tmp_path_factory) -> Path:
    """progressistad_<version>_all.deb built from this tree once a session (packaging and booted legs)."""
    for tool in ("dpkg-buildpackage", "dh", "dpkg-parsechangelog", "fakeroot"):
        require_tool(tool)
    out = tmp_path_factory.mktemp("deb")
    result = subprocess.run(["bash", str(REPO / "packaging" / "build-deb.sh"), str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return Path(result.stdout.strip().splitlines()[-1])
