"""Telemetry flood against the real daemon: 16 metrics and 50 log lines in every event, to
thousands of tasks, with a small --telemetry-budget-bytes: every event is accepted, /metrics
counts bytes trimmed, and RSS stays within baseline + budget + a per-task allowance."""

from __future__ import annotations

import time
import urllib.request

import pytest

from progressistad import contract
from tests.support import post

pytestmark = pytest.mark.integration

BUDGET = 2 * 2**20
TASKS = 2000
BATCH = 100
FLOOD_SECONDS = 20.0
LINE = "f" * 80
PER_TASK_ALLOWANCE = 16 * 1024
"""Served state of one task outside the budget: its record, 16 metrics, the newest line, the
hub's entry; about twice what bench/memory.py measures, for the allocator's slack."""
SLACK = 24 * 2**20
"""Request buffers, JSON being parsed and encoded, and the allocator's arenas under a flood."""


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def telemetry_metrics(url: str) -> dict:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line.startswith("progressista_telemetry")}


def batch(first: int, step: int) -> list:
    """BATCH events, to tasks `first`.. (modulo TASKS), each with every metric and log line allowed."""
    return [{"task_id": f"flood-{(first + i) % TASKS}", "n": step, "total": 10 ** 6,
             "metrics": {f"m{k}": step + k / 16 for k in range(contract.METRICS_MAX_KEYS)},
             "log": [LINE] * contract.LOG_MAX_LINES} for i in range(BATCH)]


def test_a_telemetry_flood_stays_within_the_budget(daemon_factory):
    daemon = daemon_factory(["--telemetry-budget-bytes", str(BUDGET), "--max-tasks", str(TASKS * 2)])
    post(daemon, batch(0, 0)[:1])  # the code paths of an ingest with telemetry, before the baseline
    time.sleep(0.5)
    baseline = rss_bytes(daemon.proc.pid)
    bound = baseline + BUDGET + TASKS * PER_TASK_ALLOWANCE + SLACK
    deadline, posts, peak = time.monotonic() + FLOOD_SECONDS, 0, 0
    while time.monotonic() < deadline:
        post(daemon, batch(posts * BATCH, posts))
        posts += 1
        peak = max(peak, rss_bytes(daemon.proc.pid))
    held = telemetry_metrics(daemon.url)
    print(f"{posts} posts ({posts * BATCH} events); RSS baseline {baseline >> 20} MiB, "
          f"peak {peak >> 20} MiB, bound {bound >> 20} MiB; {held}")
    assert posts * BATCH >= 2 * TASKS  # every task got more than a budget's share
    assert sum(v for k, v in held.items() if k.startswith("progressista_telemetry_bytes")) <= BUDGET
    assert sum(v for k, v in held.items() if k.startswith("progressista_telemetry_trimmed")) > 0
    assert daemon.request("GET", "/health")[2]["tasks"] == TASKS
    assert peak <= bound
