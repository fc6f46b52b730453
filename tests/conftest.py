"""Fixtures shared by every test layer."""

from __future__ import annotations

import pytest

from tests.support import DaemonProcess


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
