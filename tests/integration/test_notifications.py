"""Notifications from the real daemon to real receivers over real sockets: a webhook, Slack and
Discord formats and ntfy's API on a local HTTP server, email through aiosmtpd, Apprise's
json://; a receiver down for a minute then back; two daemons on one Redis; the route file at
start, on SIGHUP and in --print-config; `progressista notify-test`."""

from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import sys
import time
from email import message_from_bytes
from typing import Dict, List

import pytest

from tests.alerts.receivers import HttpReceiver, SmtpReceiver
from tests.support import DaemonProcess, clean_env, post, wait_for

pytestmark = pytest.mark.integration

APPRISE = importlib.util.find_spec("apprise") is not None
"""Apprise is an optional dependency: the newest leg has it, the oldest does not."""
PUBLIC_URL = "https://progress.example/"
DOWN_SECONDS = 60.0
"""How long the receivers are away in the outage test (the issue's minute)."""


def every_sink(receiver: HttpReceiver, smtp: SmtpReceiver) -> str:
    """A route file with a route for each sink, every one wanting failures at once."""
    common = "events = error, close\ngroup-wait = 0\n"
    text = (f"[hook]\nurl = {receiver.url('ok')}\n{common}"
            f"[phone]\nurl = {receiver.url('t-training', scheme='ntfy')}\npriority = high\n"
            f"tags = warning\n{common}"
            f"[slack]\nurl = {receiver.url('slack', scheme='slack+http')}\n{common}"
            f"[discord]\nurl = {receiver.url('discord', scheme='discord+http')}\n{common}"
            f"[mail]\nurl = mailto:ops@example.com\n{common}"
            f"[smtp]\nhost = 127.0.0.1\nport = {smtp.port}\nfrom = progress@example.com\n")
    if APPRISE:
        text += f"[apprise]\nurl = {receiver.url('apprise', scheme='json')}\n{common}"
    return text


def routes_file(tmp_path, text: str, name: str = "notify.conf") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def fail(daemon: DaemonProcess, task_id: str) -> None:
    post(daemon, [{"task_id": task_id, "status": "start", "desc": "nightly"}])
    post(daemon, [{"task_id": task_id, "status": "error", "meta": {"job": "backup"}}])


def by_sink(received) -> Dict[str, List]:
    """The requests of the HTTP receiver by the route that sent them."""
    sinks: Dict[str, List] = {"hook": [], "apprise": [], "phone": [], "slack": [], "discord": []}
    names = {"/ok": "hook", "/apprise": "apprise", "/t-training": "phone", "/slack": "slack",
             "/discord": "discord"}
    for got in received:
        sinks[names[got.path]].append(got)
    return sinks


def sent(daemon: DaemonProcess) -> List[dict]:
    status, _, listing = daemon.request("GET", "/notifications")
    assert status == 200, listing
    return [d for d in listing["deliveries"] if d["result"] == "sent"]


def test_a_failure_reaches_every_kind_of_receiver(daemon_factory, tmp_path, receiver, smtp_server):
    path = routes_file(tmp_path, every_sink(receiver, smtp_server))
    daemon = daemon_factory(["--notify-config", path, "--public-url", PUBLIC_URL])
    routes = 6 if APPRISE else 5
    fail(daemon, "db:nightly")
    wait_for(lambda: len(sent(daemon)) == routes, timeout=20, message=f"{routes} deliveries")

    sinks = by_sink(receiver.received())
    (hook,) = sinks["hook"]
    body = hook.json()
    assert (body["version"], body["route"], body["event"], body["group"]) == \
        (1, "hook", "error", "db")
    assert [task["task_id"] for task in body["tasks"]] == ["db:nightly"]
    assert body["tasks"][0]["meta"] == {"job": "backup"}
    assert body["dashboard_url"] == PUBLIC_URL and hook.headers["User-Agent"].startswith(
        "progressistad/")
    (ntfy,) = sinks["phone"]
    assert (ntfy.headers["Priority"], ntfy.headers["Tags"], ntfy.headers["Click"]) == \
        ("high", "warning", PUBLIC_URL)
    assert "db:nightly" in ntfy.headers["Title"] + ntfy.body.decode()
    (slack,) = sinks["slack"]
    assert slack.json()["text"].startswith("*") and PUBLIC_URL in slack.json()["text"]
    (discord,) = sinks["discord"]
    assert discord.json()["allowed_mentions"] == {"parse": []}
    assert discord.json()["content"].startswith("**")
    (mail,) = smtp_server.mails
    parsed = message_from_bytes(mail.data)
    assert mail.recipients == ["ops@example.com"] and mail.sender == "progress@example.com"
    assert re.match(r"<[0-9a-f]{24}@progressistad\.", parsed["Message-ID"]) and parsed["Subject"]
    if APPRISE:
        (apprise,) = sinks["apprise"]
        assert apprise.json()["title"] and "db:nightly" in apprise.json()["message"]

    status, _, text = daemon.request("GET", "/metrics")
    assert 'progressista_notifications_total{result="sent",route="hook"} 1' in text
    assert "progressista_notification_latency_seconds_count %d" % routes in text


def test_receivers_down_for_a_minute_then_back_get_every_message_once(
        daemon_factory, tmp_path, receiver, smtp_server):
    path = routes_file(tmp_path, every_sink(receiver, smtp_server))
    daemon = daemon_factory(["--notify-config", path])
    routes = 6 if APPRISE else 5
    receiver.stop()
    smtp_server.stop()
    down_at = time.monotonic()
    for group in ("alpha", "beta", "gamma"):
        fail(daemon, f"{group}:1")
    listing = wait_for(lambda: _retrying(daemon, 3 * routes), timeout=20,
                       message="every message retried while the receivers are down")
    assert {d["error"] for d in listing} and not sent(daemon)
    time.sleep(max(0.0, DOWN_SECONDS - (time.monotonic() - down_at)))
    receiver.start()
    smtp_server.start()
    # Backoff doubles from 1 s to 60 s: the attempts after a minute's outage come within one.
    wait_for(lambda: len(sent(daemon)) == 3 * routes, timeout=75, interval=0.5,
             message="every message delivered once the receivers are back")

    sinks = by_sink(receiver.received())
    for name, requests in sinks.items():
        if name != "apprise" or APPRISE:
            assert len(requests) == 3, (name, len(requests))
    ids = [got.json()["id"] for got in sinks["hook"]]
    assert len(set(ids)) == 3
    assert sorted(got.json()["group"] for got in sinks["hook"]) == ["alpha", "beta", "gamma"]
    mail_ids = [message_from_bytes(mail.data)["Message-ID"] for mail in smtp_server.mails]
    assert len(mail_ids) == 3 and len(set(mail_ids)) == 3
    assert all(d["attempts"] > 1 for d in sent(daemon))
    time.sleep(2)  # nothing more arrives: no message is sent twice
    assert len(receiver.received()) == 3 * (routes - 1) and len(smtp_server.mails) == 3


def _retrying(daemon: DaemonProcess, count: int):
    status, _, listing = daemon.request("GET", "/notifications")
    retrying = [d for d in listing["deliveries"] if d["result"] == "retrying"]
    return retrying if len(retrying) == count else None


def test_two_daemons_on_one_redis_send_each_message_once(
        daemon_factory, tmp_path, receiver, redis_server, redis_prefix):
    pytest.importorskip("redis")
    path = routes_file(tmp_path, f"[hook]\nurl = {receiver.url('ok')}\nevents = error\n"
                                 "group-wait = 0.5\n")
    args = ["--notify-config", path, "--redis-url", redis_server.url,
            "--redis-prefix", redis_prefix]
    one, two = daemon_factory(args), daemon_factory(args)
    for i in range(6):
        fail(one if i % 2 else two, f"job{i}:{i}")
    wait_for(lambda: len(receiver.received()) >= 6, timeout=20, message="six messages")
    time.sleep(1.5)  # a second sender would have sent by now
    ids = [got.json()["id"] for got in receiver.received()]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert sorted(got.json()["group"] for got in receiver.received()) == \
        [f"job{i}" for i in range(6)]
    assert [d["id"] for d in sent(one)] == [d["id"] for d in sent(two)] and len(sent(one)) == 6

    # The daemon that gathers stops: it hands the lease back and the other one takes over.
    gatherer, other = (one, two) if "now gathers" in one.logs() else (two, one)
    assert gatherer.stop() == 0
    wait_for(lambda: "now gathers" in other.logs(), timeout=15, message="the other to gather")
    fail(other, "late:1")
    wait_for(lambda: len(receiver.received()) == 7, timeout=20, message="the seventh message")
    time.sleep(1.0)
    assert len(receiver.received()) == 7 and receiver.received()[-1].json()["group"] == "late"


def test_sighup_with_a_bad_route_file_keeps_the_routes_and_applies_the_rest(
        daemon_factory, tmp_path, receiver):
    path = routes_file(tmp_path, f"[hook]\nurl = {receiver.url('ok')}\n")
    conf = tmp_path / "progressistad.conf"
    conf.write_text("api-token = first-token\n")
    daemon = daemon_factory(["--config", str(conf), "--notify-config", path])
    first = {"Authorization": "Bearer first-token"}
    with open(path, "w") as stream:
        stream.write(f"[hook]\nurl = {receiver.url('ok')}\n\n[typo]\nurl = {receiver.url()}\n"
                     "evnets = error\n")
    conf.write_text("api-token = second-token\n")
    daemon.send_signal(signal.SIGHUP)
    second = {"Authorization": "Bearer second-token"}
    wait_for(lambda: daemon.request("GET", "/tasks", headers=second)[0] == 200, timeout=10,
             message="the reloaded token")
    assert daemon.request("GET", "/tasks", headers=first)[0] == 401
    expected = (f"notify config {path}:6: route [typo]: unknown key 'evnets'")
    wait_for(lambda: expected in daemon.logs(), timeout=10, message="the reason logged")
    (line,) = [line for line in daemon.logs().splitlines() if expected in line]
    assert line.endswith("the previous notification routes stay in use")
    status, _, record = daemon.request("POST", "/notifications/test?route=hook", headers=second)
    assert status == 200 and record["result"] == "sent"
    status, _, health = daemon.request("GET", "/health")
    assert status == 200 and health["failing"] == ["notifications"]
    assert health["notifications"]["error"].startswith(f"notify config {path}:6")

    with open(path, "w") as stream:
        stream.write(f"[fixed]\nurl = {receiver.url('ok')}\n")
    daemon.send_signal(signal.SIGHUP)
    wait_for(lambda: "notification routes reloaded: 1 route(s)" in daemon.logs(), timeout=10,
             message="the fixed file read")
    status, _, listing = daemon.request("GET", "/notifications", headers=second)
    assert [route["name"] for route in listing["routes"]] == ["fixed"]
    assert daemon.request("GET", "/health")[2]["status"] == "ok"


def progressistad(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "progressistad", *args], env=clean_env(),
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("text, problem", [
    ("[hook]\nurl = http://127.0.0.1:9/x\nevents = close, finished\n",
     ":3: route [hook]: unknown event 'finished'"),
    ("[hook]\nurl = http://127.0.0.1:9/x\n\n[hook2]\nurl = ntfy://ntfy.lan/a b\n",
     ":5: route [hook2]: url 'ntfy://ntfy.lan/a b': an ntfy URL is ntfy://host/topic"),
    ("[hook]\nurl = http://127.0.0.1:9/x\ncolour = red\n", ":3: route [hook]: unknown key 'colour'"),
])
def test_a_bad_route_file_at_start_exits_2_with_one_line(tmp_path, text, problem):
    path = routes_file(tmp_path, text)
    result = progressistad("--notify-config", path, "--port", "0")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert f"notify config {path}{problem}" in line and result.stdout == ""
    printed = progressistad("--notify-config", path, "--print-config")
    assert printed.returncode == 2 and printed.stdout == ""
    (line,) = printed.stderr.splitlines()
    assert f"notify config {path}{problem}" in line


def test_print_config_lists_the_routes_with_secrets_redacted(tmp_path):
    secret = tmp_path / "hook-url"
    secret.write_text("https://hooks.example/services/T000/B000/very-secret-path\n")
    path = routes_file(tmp_path, "[phone]\nurl = ntfy://ntfy.lan/training\n"
                                 "token = tk_verysecrettoken\n"
                                 f"[hook]\nurl-file = {secret}\nevents = close\n")
    result = progressistad("--notify-config", path, "--print-config")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"notify-config = {path}  # flag --notify-config" in lines
    assert f"# notify config: {path}, 2 route(s)" in lines
    assert any(line.startswith("# route [phone] url = ntfy://ntfy.lan/training")
               and "token = (set, redacted)" in line for line in lines)
    assert "very-secret" not in result.stdout and "tk_verysecret" not in result.stdout


def test_notify_test_command_says_how_the_test_went(daemon_factory, tmp_path, receiver):
    path = routes_file(tmp_path, f"[hook]\nurl = {receiver.url('ok')}\n"
                                 f"[down]\nurl = {receiver.url('fail')}\n")
    daemon = daemon_factory(["--notify-config", path], env={"PROGRESSISTA_API_TOKENS": "rw"})

    def notify_test(route: str, token: str = "rw") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "progressistad.client.cli", "notify-test", route,
             "--server-url", daemon.url, "--token", token],
            env=clean_env(), capture_output=True, text=True, timeout=60)

    ok = notify_test("hook")
    assert ok.returncode == 0, ok.stderr
    (got,) = receiver.received()
    assert ok.stdout.strip() == f"sent test message {got.json()['id']} through route hook " \
                                "(1 attempt)"
    down = notify_test("down")
    assert down.returncode == 1 and down.stderr.strip() == \
        "progressista notify-test: route down: failed after 1 attempt: HTTP 500"
    unknown = notify_test("nope")
    assert unknown.returncode == 1 and "404: no such notification route (routes: hook, down)" \
        in unknown.stderr
    assert notify_test("hook", token="wrong").returncode == 1


FAULTY = {"hang": "hang", "slow": "slow?seconds=3", "reset": "reset", "redirect": "redirect",
          "big": "big?status=500", "fail": "fail"}
"""Routes to tests/alerts/receivers.py's ways of answering badly: never, late, by a reset, by a
redirect to itself, with 100 MB, with a 500."""


def test_receivers_at_fault_hold_back_no_event(daemon_factory, tmp_path, receiver):
    common = "events = error, close\ngroup-wait = 0\nrate-limit = 0\n"
    text = "".join(f"[{name}]\nurl = {receiver.url(path)}\n{common}" for name, path in FAULTY.items())
    text += f"[nowhere]\nurl = http://receiver.invalid:9/hook\n{common}[fine]\nurl = {receiver.url('ok')}\n{common}"
    daemon = daemon_factory(["--notify-config", routes_file(tmp_path, text)])
    slowest = 0.0
    for i in range(30):
        for status in ("start", "error"):
            started = time.monotonic()
            post(daemon, [{"task_id": f"job{i}:1", "status": status, "desc": "nightly"}])
            slowest = max(slowest, time.monotonic() - started)
    # A hanging receiver holds an attempt for 10 s; no event waits for one.
    assert slowest < 5.0, slowest
    wait_for(lambda: len([g for g in receiver.received() if g.path == "/ok"]) == 30, timeout=30,
             message="the one good receiver got every failure while the others misbehaved")
    wait_for(lambda: _attempted(daemon, [*FAULTY, "nowhere", "fine"]), timeout=30,
             message="every route attempted")
    # A route that fails for good is named on /health; the others are retried; no reason
    # holds an address.
    failing = wait_for(lambda: _failing(daemon, {"redirect"}), timeout=30,
                       message="the redirect loop failing on /health")
    retried = wait_for(lambda: _retrying_routes(daemon, {"reset", "big", "fail", "nowhere"}),
                       timeout=30, message="the routes at fault retried")
    reasons = list(failing.values()) + list(retried.values())
    assert set(failing) == {"redirect"} and "fine" not in retried, (failing, retried)
    assert not any("127.0.0.1" in why or "invalid" in why for why in reasons), reasons


def _failing(daemon: DaemonProcess, routes) -> Dict[str, str]:
    """/health's failing routes and why, once it names every one of `routes`, else None."""
    _, _, health = daemon.request("GET", "/health")
    failing = health["notifications"]["failing"]
    return failing if routes <= set(failing) and health["status"] == "degraded" else None


def _retrying_routes(daemon: DaemonProcess, routes) -> Dict[str, str]:
    """Why each route with a delivery being retried failed last, once `routes` all have one."""
    _, _, listing = daemon.request("GET", "/notifications")
    why = {d["route"]: d["error"] for d in listing["deliveries"]
           if d["result"] == "retrying" and d["error"]}
    return why if routes <= set(why) else None


def _attempted(daemon: DaemonProcess, routes) -> Dict[str, float]:
    """Attempts by route from /metrics, once every one of `routes` has made one, else None."""
    _, _, text = daemon.request("GET", "/metrics")
    found = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^progressista_notification_attempts_total\{route="([^"]+)"\} ([0-9.e+]+)$', text, re.M)}
    return found if all(found.get(route, 0) >= 1 for route in routes) else None
