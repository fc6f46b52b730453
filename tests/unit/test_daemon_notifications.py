"""The daemon's side of notifications without sockets: /health's status code, the dashboard link,
the route file read from the settings, the warning of a sandbox without network."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from progressistad.alerts import RouteError
from progressistad.daemon import notifications
from progressistad.daemon.config import Settings
from progressistad.core.store import TaskStore
from progressistad.web.context import AppContext
from progressistad.web.metrics import Metrics

ESSENTIAL = {"persistence": True, "redis": True, "notifications": False, "history": False}
"""Each part as the wiring registers it."""


class _Hub(list):
    """Enough of a hub for /health: its dashboards, counted."""


def health_status(failing):
    """/health's status code with these parts failing and the others well."""
    service = SimpleNamespace(store=TaskStore(), policy=None)
    ctx = AppContext(Settings(), service, _Hub(), lambda: 0.0, Metrics())
    for name, essential in ESSENTIAL.items():
        ok = name not in failing
        ctx.add_health_check(name, lambda ok=ok: {"ok": ok}, essential=essential)
    report, code = ctx.health()
    assert report["status"] == ("degraded" if failing else "ok")
    assert report.get("failing", []) == [name for name in ESSENTIAL if name in failing]
    return code


@pytest.mark.parametrize("failing, status", [
    ((), 200),
    (("notifications",), 200),
    (("history",), 200),
    (("notifications", "history"), 200),
    (("persistence",), 503),
    (("redis",), 503),
    (("notifications", "redis"), 503),
])
def test_only_a_part_ingest_needs_makes_health_503(failing, status):
    assert health_status(failing) == status


def test_the_dashboard_link_is_the_public_url_else_host_port_and_base_path():
    assert notifications.dashboard_url(Settings(port=8123), "box") == "http://box:8123/"
    assert notifications.dashboard_url(Settings(port=80, base_path="/dash"), "box") == \
        "http://box:80/dash/"
    assert notifications.dashboard_url(Settings(public_url="https://p.lan/"), "box") == \
        "https://p.lan/"


def test_routes_come_from_the_settings_with_the_credentials_directory(tmp_path):
    assert notifications.load_routes(Settings()).routes == ()
    (tmp_path / "hook-url").write_text("https://hooks.example/secret-path\n")
    path = tmp_path / "notify.conf"
    path.write_text("[hook]\nurl-file = hook-url\n")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "hook-url").write_text("https://credential.example/other-secret\n")
    plain = notifications.load_routes(Settings(notify_config=str(path)))
    assert plain.routes[0].url == "https://hooks.example/secret-path"
    from_credential = notifications.load_routes(
        Settings(notify_config=str(path), credentials_directory=str(credentials)))
    assert from_credential.routes[0].url == "https://credential.example/other-secret"
    assert all("secret" not in line for line in notifications.describe(
        Settings(notify_config=str(path))))
    path.write_text("[hook]\nurl = nope\n")
    with pytest.raises(RouteError, match=r"notify config .*notify\.conf:2: route \[hook\]"):
        notifications.load_routes(Settings(notify_config=str(path)))


def test_a_sandbox_without_network_is_said_once(caplog):
    caplog.set_level(logging.INFO, "progressistad.alerts")
    notifications.warn_if_isolated(lambda: None)
    assert caplog.records == []
    notifications.warn_if_isolated(lambda: "its only network interface is loopback "
                                           "(PrivateNetwork=)")
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert "notification routes are configured but cannot be reached: its only network " \
           "interface is loopback (PrivateNetwork=)" in record.getMessage()


def test_isolation_is_a_socket_refused_or_only_a_loopback_interface(monkeypatch):
    import socket

    assert notifications.isolation() is None or "loopback" in notifications.isolation()
    monkeypatch.setattr(socket, "if_nameindex", lambda: [(1, "lo")])
    assert notifications.isolation() == "its only network interface is loopback (PrivateNetwork=)"

    def refused(*args):
        raise OSError(97, "Address family not supported by protocol")

    monkeypatch.setattr(socket, "socket", refused)
    assert notifications.isolation().startswith("it may not open network sockets "
                                                "(Address family not supported by protocol")
