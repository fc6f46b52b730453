"""A short soak of bench/soak.py against the real daemon with every feature on (10 notification
routes to a local receiver, the history in a file, telemetry): after the load and its dashboards
leave, the daemon's descriptors point at the same files as before; RSS in the last half of the
run grows less than a bound no allocator noise reaches but a leak per event does; the history's
database stops growing once --history-max-runs is reached; and the receiver got every message
/metrics says was sent, none failed or dropped."""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time

import pytest

from tests.support import REPO, post, wait_for

sys.path.insert(0, str(REPO / "bench"))
import soak  # noqa: E402

pytestmark = pytest.mark.integration

SECONDS = 60.0
SAMPLE_SECONDS = 2.0
RSS_GROWTH_KIB = 8 * 1024
"""Bound on the RSS growth from the second quarter to the last (medians): a leak of 2 KB per
event at the soak's rate crosses it twice over; allocator and arena noise stays far below."""
MAX_RUNS = 100
"""Runs the history keeps: reached within the soak's warm-up, so its database must stop growing."""

QUICK_CLOSE = ["--ws-stall-timeout", "5", "--idle-connection-timeout", "5"]
"""A dashboard that stopped reading, or a connection left idle, is closed by the daemon soon."""


def run_soak(daemon, receiver: soak.WebhookReceiver, history_path: str) -> soak.Soak:
    load = soak.Soak(daemon.url, daemon.proc.pid, SECONDS, SAMPLE_SECONDS, rate=200,
                     receiver=receiver, history_path=history_path, quiet=True)
    asyncio.run(load.run())
    return load


def open_files(pid: int) -> list:
    """What process `pid`'s descriptors point at, less the state file's temporary copy (open
    only while a write is under way)."""
    fd_dir = f"/proc/{pid}/fd"
    targets = []
    for fd in os.listdir(fd_dir):
        try:
            targets.append(os.readlink(os.path.join(fd_dir, fd)))
        except FileNotFoundError:
            pass
    return sorted(target for target in targets if not target.endswith(".tmp"))


def settled_files(pid: int) -> list:
    """open_files once it reads the same twice, half a second apart (warm-up connections gone)."""
    previous = None
    while True:
        current = open_files(pid)
        if current == previous:
            return current
        previous = current
        time.sleep(0.5)


def rss_growth_kib(samples) -> float:
    """Median RSS of the last quarter less that of the second quarter, in KiB."""
    quarter = len(samples) // 4
    return (statistics.median(s[1] for s in samples[-quarter:])
            - statistics.median(s[1] for s in samples[quarter:2 * quarter]))


def unsent(daemon) -> list:
    """The daemon's last deliveries that were not sent, for a failure's message."""
    _, _, listing = daemon.request("GET", "/notifications")
    return [d for d in listing["deliveries"] if d["result"] != "sent"]


@pytest.fixture
def receiver():
    hook = soak.WebhookReceiver()
    yield hook
    hook.close()


def test_a_short_soak_with_every_feature_on_stays_flat_and_loses_no_notification(
        daemon_factory, tmp_path, receiver):
    features = soak.feature_options(str(tmp_path), soak.FEATURES, receiver.url, MAX_RUNS)
    daemon = daemon_factory(["--storage-path", str(tmp_path / "state.json"), *soak.DAEMON_OPTIONS,
                             *QUICK_CLOSE, *features])
    post(daemon, {"task_id": "warm:0", "n": 1, "metrics": {"a": 1}, "log": ["x"]})
    post(daemon, {"task_id": "warm:0", "status": "close"})
    daemon.request("GET", "/health")
    time.sleep(1)
    before = settled_files(daemon.proc.pid)
    load = run_soak(daemon, receiver, soak.history_file(str(tmp_path)))
    gc.collect()  # closes client sockets the finished event loop still referenced
    assert load.counts["errors"] == 0 and load.counts["degraded"] == 0
    assert load.counts["dashboards"] >= 20 and load.counts["events"] >= 5000
    delivered, told = soak.notifications_verdict(load.notifications, receiver)
    assert delivered, (told, unsent(daemon))
    flat, history = soak.history_verdict(load.samples, soak.DATABASE_BYTES)
    assert flat, (history, [s[soak.DATABASE_BYTES] for s in load.samples])
    wait_for(lambda: open_files(daemon.proc.pid) == before,
             timeout=30, message=f"descriptors back to {before}, not {open_files(daemon.proc.pid)}")
    growth = rss_growth_kib(load.samples)
    print(f"{load.counts}; {told}; {history}; RSS growth {growth:.0f} KiB over the last half; "
          f"fds {before}")
    assert growth < RSS_GROWTH_KIB, [s[1] for s in load.samples]
    assert max(s[3] for s in load.samples[len(load.samples) // 2:]) < 5000  # tasks leave too
