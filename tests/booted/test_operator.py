"""The package under a real systemd, used as an operator would, in order, on Debian 12 and 13."""

from __future__ import annotations

import re
import time
from typing import Dict, List, Optional

import pytest

from tests.alerts.receivers import HttpReceiver
from tests.booted.machine import Booted, listening_addresses
from tests.packaging.helpers import SYSTEMD_DIR, unit_values
from tests.support import http_request, wait_for

pytestmark = pytest.mark.booted

SERVICE = "progressistad.service"
ACTIVATED = "progressistad-activated.service"
SOCKET = "progressistad.socket"
UNITS = (SERVICE, ACTIVATED, SOCKET)
CONFFILE = "/etc/progressista/progressistad.conf"
NOTIFY_CONF = "/etc/progressista/notify.conf"
TOKENS_FILE = "/etc/progressista/api-tokens"
DROP_INS = "/etc/systemd/system/progressistad.service.d"
STATE_DIR = "/var/lib/private/progressista"
DYNAMIC_UIDS = range(61184, 65520)
"""The uids systemd hands out for DynamicUser=yes."""
NOBODY = 65534
UNIT = unit_values(SYSTEMD_DIR / SERVICE)
LIMIT_NOFILE = int(UNIT["LimitNOFILE"][0])
RESTART_SEC = float(UNIT["RestartSec"][0].rstrip("s"))
NO_QUESTION = ("Configuration file", "(Y/I/N/O/D/Z)")
"""What dpkg prints when it asks about a conffile."""


def apt_get(booted: Booted, *args: str):
    """apt-get as an unattended operator runs it: no terminal, no input."""
    return booted.machine.run(["apt-get", "-y", "-q", *args], timeout=900)


def request(booted: Booted, method: str, path: str, body=None, token: Optional[str] = None,
            port: Optional[int] = None):
    """(status, JSON) of a request to the daemon in the container, over the shared loopback."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"http://127.0.0.1:{port or booted.port}{path}"
    status, _, answer = http_request(method, url, body, headers)
    return status, answer


def task(booted: Booted, task_id: str, **kwargs):
    status, body = request(booted, "GET", f"/tasks/{task_id}", token=booted.token, **kwargs)
    return body if status == 200 else None


def daemon_lines(entries: List[dict]) -> List[dict]:
    """The daemon's own journal lines (not systemd's about the unit)."""
    return [e for e in entries if e.get("SYSLOG_IDENTIFIER") == "progressistad"]


def priority_of(entries: List[dict], text: str) -> str:
    (entry,) = [e for e in daemon_lines(entries) if text in e.get("MESSAGE", "")] or [{}]
    return entry.get("PRIORITY", f"no line with {text!r}")


def wait_active(booted: Booted, unit: str = SERVICE, old_pid: int = 0, timeout: float = 30.0) -> int:
    """The unit's new main PID once it is active (running) again under a PID other than `old_pid`."""
    def running():
        state = booted.machine.show(unit, "ActiveState", "SubState", "MainPID")
        pid = int(state["MainPID"])
        return pid if (state["ActiveState"], state["SubState"]) == ("active", "running") \
            and pid not in (0, old_pid) else 0
    return wait_for(running, timeout=timeout, interval=0.2, message=f"{unit} running again")


def daemon_uid(booted: Booted, pid: int) -> int:
    status = booted.machine.run(["cat", f"/proc/{pid}/status"]).stdout
    (line,) = [line for line in status.splitlines() if line.startswith("Uid:")]
    return int(line.split()[1])


def open_files_limit(booted: Booted, pid: int) -> List[int]:
    """[soft, hard] RLIMIT_NOFILE of a process in the container."""
    limits = booted.machine.run(["cat", f"/proc/{pid}/limits"]).stdout
    (line,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
    return [int(value) for value in line.split()[3:5]]


def owning_package(booted: Booted, program: str) -> str:
    """The installed package shipping `program`, under its own name or the one /bin links to."""
    resolved = booted.machine.run(["readlink", "-e", program], check=False).stdout.strip()
    for name in dict.fromkeys((program, resolved)):
        owner = booted.machine.run(["dpkg", "-S", name], check=False) if name else None
        if owner is not None and owner.returncode == 0:
            return owner.stdout.split(":")[0]
    return ""


def add_to_conffile(booted: Booted, text: str) -> None:
    path = booted.machine.path(CONFFILE)
    path.write_text(path.read_text() + text)


def remove_from_conffile(booted: Booted, text: str) -> None:
    path = booted.machine.path(CONFFILE)
    path.write_text(path.read_text().replace(text, ""))


def test_01_apt_install_on_the_minimal_root(booted: Booted):
    machine = booted.machine
    # The container shares the host's network: a free port instead of 8000, set the way
    # an operator overrides a unit; the short sweep keeps the retention check quick.
    machine.write(f"{DROP_INS}/10-port.conf",
                  f"[Service]\nEnvironment=PROGRESSISTA_PORT={booted.port} "
                  "PROGRESSISTA_CLEANUP_INTERVAL=1\n")
    installed = apt_get(booted, "install", booted.deb)
    assert not any(question in installed.stdout for question in NO_QUESTION), installed.stdout

    programs = set()
    for unit in (SERVICE, ACTIVATED):
        shown = machine.show(unit, "ExecStart", "ExecReload")
        programs |= set(re.findall(r"path=(\S+)", " ".join(shown.values())))
    assert {"/usr/bin/progressistad", "/bin/kill"} <= programs
    for program in sorted(programs):
        assert owning_package(booted, program), \
            f"{program}, called by the units, comes from no installed package"

    assert machine.systemctl("is-enabled", SERVICE).stdout.strip() == "enabled"
    assert machine.systemctl("is-active", SERVICE).stdout.strip() == "active", machine.diagnose()
    status, health = request(booted, "GET", "/health")
    assert status == 200 and health["status"] == "ok"
    # The packaged conffile keeps a fresh install on loopback.
    assert listening_addresses(booted.port) == ["127.0.0.1"]
    assert machine.systemctl("is-enabled", SOCKET, check=False).stdout.strip() == "disabled"


def test_02_status_line_and_journal_priorities(booted: Booted):
    machine = booted.machine
    status = machine.systemctl("status", SERVICE).stdout
    assert 'Status: "0 tasks, 0 dashboards, 0.0 events/s"' in status, status
    lines = daemon_lines(machine.journal())
    listening = f"listening on 127.0.0.1:{booted.port}"
    assert priority_of(lines, listening) == "6"
    assert all(not re.match(r"<\d>|\d{4}-\d\d-\d\d", e["MESSAGE"]) for e in lines), \
        "a priority prefix or a timestamp reached the journal's message"
    assert [e["MESSAGE"] for e in lines if e["PRIORITY"] == "7"] == [], "debug lines at log-level info"


def test_03_reload_applies_a_changed_token_and_retention(booted: Booted):
    machine = booted.machine
    for event in ({"task_id": "kept", "n": 1, "total": 10},
                  {"task_id": "finished", "n": 10, "total": 10, "status": "close"}):
        assert request(booted, "POST", "/progress", event)[0] == 200
    pid = machine.main_pid()
    cursor = machine.cursor()
    booted.token = "reloaded-token"
    add_to_conffile(booted, "\n# the operator's\napi-token = reloaded-token\nretention-seconds = 1\n"
                            "max-tasks = 5000\n")
    machine.systemctl("reload", SERVICE)

    assert machine.main_pid() == pid
    assert request(booted, "POST", "/progress", {"task_id": "kept", "n": 2})[0] == 401
    assert request(booted, "POST", "/progress", {"task_id": "kept", "n": 2},
                   token="reloaded-token")[0] == 200
    wait_for(lambda: task(booted, "finished") is None, timeout=15,
             message="the closed task to go once retention-seconds is 1")
    assert task(booted, "kept")["n"] == 2
    entries = machine.journal(after=cursor)
    assert priority_of(entries, "reloaded: tokens required: 1 read-write") == "6"
    assert priority_of(entries, "need a restart, not applied: --max-tasks") == "4"
    wait_for(lambda: 'Status: "1 task, 0 dashboards' in machine.systemctl("status", SERVICE).stdout,
             timeout=15, message="the STATUS= line to count the one task left")


def test_04_notification_routes_come_from_notify_conf_and_reload(booted: Booted):
    machine = booted.machine
    # The package's notify.conf, every route commented out, is read at start: no route yet.
    assert machine.path(NOTIFY_CONF).exists()
    status, listing = request(booted, "GET", "/notifications", token=booted.token)
    assert status == 200 and listing["routes"] == []
    receiver = HttpReceiver().start()  # on the host's loopback, which the container shares
    try:
        cursor = machine.cursor()
        machine.write(NOTIFY_CONF, machine.path(NOTIFY_CONF).read_text()
                      + f"\n[hook]\nurl = {receiver.url('ok')}\nevents = error\ngroup-wait = 0\n")
        machine.systemctl("reload", SERVICE)
        wait_for(lambda: priority_of(machine.journal(after=cursor),
                                     "notification routes reloaded: 1 route(s)") == "6",
                 timeout=15, message="the routes read again on reload")
        for event in ({"task_id": "nightly:db", "status": "start"},
                      {"task_id": "nightly:db", "status": "error"}):
            assert request(booted, "POST", "/progress", event, token=booted.token)[0] == 200
        wait_for(receiver.received, timeout=15, message="the webhook")
        (got,) = receiver.received()
        assert (got.json()["event"], got.json()["tasks"][0]["task_id"]) == ("error", "nightly:db")
        tested = machine.run(["progressista", "notify-test", "hook", "--server-url",
                              f"http://127.0.0.1:{booted.port}", "--token", booted.token])
        assert tested.stdout.startswith("sent test message ") and len(receiver.received()) == 2

        # A bad file keeps the routes in use, and the journal says why.
        good = machine.path(NOTIFY_CONF).read_text()
        cursor = machine.cursor()
        machine.write(NOTIFY_CONF, good + "\n[typo]\nurl = nope\n")
        machine.systemctl("reload", SERVICE)
        wait_for(lambda: priority_of(machine.journal(after=cursor),
                                     "the previous notification routes stay in use") == "3",
                 timeout=15, message="the bad file's line")
        assert machine.run(["progressista", "notify-test", "hook", "--server-url",
                            f"http://127.0.0.1:{booted.port}", "--token", booted.token]
                           ).returncode == 0
        machine.write(NOTIFY_CONF, good)
        machine.systemctl("reload", SERVICE)
    finally:
        receiver.stop()


def test_05_restart_keeps_the_tasks_in_the_dynamic_users_state_directory(booted: Booted):
    machine = booted.machine
    pid = machine.main_pid()
    machine.systemctl("restart", SERVICE)
    pid = wait_active(booted, old_pid=pid)
    kept = task(booted, "kept")
    assert kept and (kept["status"], kept["n"]) == ("recovered", 2)

    state = machine.path(f"{STATE_DIR}/state.json")
    assert machine.path("/var/lib/progressista").resolve() == machine.path(STATE_DIR).resolve()
    info = state.stat()
    assert oct(info.st_mode & 0o777) == "0o600"
    assert daemon_uid(booted, pid) in DYNAMIC_UIDS
    # systemd 256 and later keep the files of a dynamic user as nobody's on disk and
    # id-map them into the service; earlier ones chown them to the dynamic uid.
    assert info.st_uid in DYNAMIC_UIDS or info.st_uid == NOBODY, info.st_uid
    # The descriptors the unit allows: LimitNOFILE=, or the most systemd can grant.
    pid1_hard = open_files_limit(booted, 1)[1]
    assert open_files_limit(booted, pid) == [min(LIMIT_NOFILE, pid1_hard)] * 2


def test_06_watchdog_restarts_a_frozen_daemon(booted: Booted):
    machine = booted.machine
    hard = min(8192, open_files_limit(booted, 1)[1])
    # Shorter watchdog for the test; a soft limit below the hard one, which the daemon raises.
    machine.write(f"{DROP_INS}/20-watchdog.conf",
                  f"[Service]\nWatchdogSec=2s\nLimitNOFILE=1024:{hard}\n")
    machine.daemon_reload()
    old = machine.main_pid()
    machine.systemctl("restart", SERVICE)
    pid = wait_active(booted, old_pid=old)
    assert open_files_limit(booted, pid) == [hard, hard]

    restarts = int(machine.show(SERVICE, "NRestarts")["NRestarts"])
    cursor = machine.cursor()
    machine.run(["kill", "-STOP", str(pid)])
    wait_active(booted, old_pid=pid, timeout=30)
    assert int(machine.show(SERVICE, "NRestarts")["NRestarts"]) == restarts + 1
    said = " ".join(e["MESSAGE"] for e in machine.journal(after=cursor))
    assert "Watchdog timeout" in said and "'watchdog'" in said, said
    assert task(booted, "kept")["status"] == "recovered"
    machine.path(f"{DROP_INS}/20-watchdog.conf").unlink()
    machine.daemon_reload()


def test_07_a_bad_configuration_says_why_and_is_not_restarted(booted: Booted):
    machine = booted.machine
    bad = "stale-seconds = soon\n"
    add_to_conffile(booted, bad)
    cursor = machine.cursor()
    assert machine.systemctl("restart", SERVICE, check=False).returncode != 0
    status = machine.systemctl("status", SERVICE, check=False).stdout
    reason = f"--stale-seconds 'soon' from file {CONFFILE}:"
    assert re.search(r"progressistad\[\d+\]: progressistad: " + re.escape(reason), status), status
    shown = machine.show(SERVICE, "ActiveState", "Result", "ExecMainStatus", "NRestarts")
    assert (shown["ActiveState"], shown["Result"], shown["ExecMainStatus"]) == \
        ("failed", "exit-code", "2")
    time.sleep(RESTART_SEC + 1.5)
    assert machine.show(SERVICE, "ActiveState", "NRestarts") == \
        {"ActiveState": "failed", "NRestarts": shown["NRestarts"]}
    assert priority_of(machine.journal(after=cursor), reason) == "3"

    remove_from_conffile(booted, bad)
    machine.systemctl("restart", SERVICE)
    assert task(booted, "kept") is not None


def test_08_tokens_as_systemd_credentials(booted: Booted):
    machine = booted.machine
    machine.write(TOKENS_FILE, "credential-token\n", mode=0o600)
    machine.write(f"{DROP_INS}/30-credentials.conf",
                  f"[Service]\nLoadCredential=api-tokens:{TOKENS_FILE}\n")
    machine.daemon_reload()
    old = machine.main_pid()
    cursor = machine.cursor()
    machine.systemctl("restart", SERVICE)
    pid = wait_active(booted, old_pid=old)
    assert request(booted, "POST", "/progress", {"task_id": "kept", "n": 3},
                   token="credential-token")[0] == 200
    assert request(booted, "POST", "/progress", {"task_id": "kept", "n": 3})[0] == 401
    assert "tokens required: 2 read-write" in \
        " ".join(e["MESSAGE"] for e in daemon_lines(machine.journal(after=cursor)))
    seen = machine.run(["cat", f"/proc/{pid}/cmdline", f"/proc/{pid}/environ"]).stdout
    assert "credential-token" not in seen and "CREDENTIALS_DIRECTORY=" in seen
    assert "credential-token" not in machine.systemctl("show", SERVICE).stdout


def test_09_upgrade_over_itself_keeps_state_and_the_changed_conffile_asking_nothing(booted: Booted):
    machine = booted.machine
    conffile = machine.path(CONFFILE).read_bytes()
    old = machine.main_pid()
    upgraded = apt_get(booted, "install", "--reinstall", booted.deb)
    assert not any(question in upgraded.stdout for question in NO_QUESTION), upgraded.stdout
    assert machine.path(CONFFILE).read_bytes() == conffile
    wait_active(booted, old_pid=old)
    kept = task(booted, "kept")
    assert kept and (kept["status"], kept["n"]) == ("recovered", 3)


def test_10_socket_activation_serves_the_same_state(booted: Booted):
    machine = booted.machine
    machine.write("/etc/systemd/system/progressistad.socket.d/10-port.conf",
                  f"[Socket]\nListenStream=\nListenStream=127.0.0.1:{booted.socket_port}\n")
    machine.daemon_reload()
    machine.systemctl("disable", "--now", SERVICE)
    machine.systemctl("enable", "--now", SOCKET)
    assert machine.systemctl("is-active", ACTIVATED, check=False).stdout.strip() == "inactive"
    assert listening_addresses(booted.socket_port) == ["127.0.0.1"]
    assert listening_addresses(booted.port) == []

    kept = task(booted, "kept", port=booted.socket_port)
    assert kept and kept["n"] == 3
    pid = wait_active(booted, ACTIVATED)
    said = " ".join(e["MESSAGE"] for e in daemon_lines(machine.journal(ACTIVATED)))
    assert "socket activation: serving 1 inherited socket(s)" in said, said
    assert "notification routes are configured but cannot be reached" in said, said
    own_network = machine.run(["readlink", f"/proc/{pid}/ns/net", "/proc/1/ns/net"]).stdout.split()
    assert own_network[0] != own_network[1], "PrivateNetwork=yes did not take effect"


def test_11_purge_removes_the_package_its_conffile_and_state(booted: Booted):
    machine = booted.machine
    apt_get(booted, "purge", "progressistad")
    assert machine.run(["dpkg", "-s", "progressistad"], check=False).returncode != 0
    gone = ["/usr/bin/progressistad", "/usr/bin/progressista", CONFFILE, NOTIFY_CONF, STATE_DIR,
            "/var/lib/progressista"] + [f"/lib/systemd/system/{unit}" for unit in UNITS]
    assert [path for path in gone if machine.path(path).exists() or machine.path(path).is_symlink()] == []
    for unit in UNITS:
        shown: Dict[str, str] = machine.show(unit, "LoadState", "ActiveState")
        assert shown == {"LoadState": "not-found", "ActiveState": "inactive"}, (unit, shown)
    assert listening_addresses(booted.socket_port) == []
    # The operator's own files are theirs: the tokens file and the drop-ins stay.
    assert machine.path(TOKENS_FILE).exists()
