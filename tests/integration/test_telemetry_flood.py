"""Telemetry flood against the real daemon: 16 metrics and 50 log lines in every event, to
thousands of tasks, with a small --telemetry-budget-bytes: every event is accepted, /metrics
counts bytes trimmed, and RSS stays within baseline + budget + a per-task allowance."""

from __future__ import annotations

import sys
import time

import pytest

from tests.support import REPO, post

sys.path.insert(0, str(REPO / "bench"))
import harness  # noqa: E402
import memory  # noqa: E402

pytestmark = pytest.mark.integration

BUDGET = 2 * 2**20
TASKS = 2000
FLOOD_SECONDS = 20.0
SLACK = 24 * 2**20
"""Request buffers, JSON being parsed and encoded, and the allocator's arenas under a flood."""


def test_a_telemetry_flood_stays_within_the_budget(daemon_factory):
    daemon = daemon_factory(["--telemetry-budget-bytes", str(BUDGET), "--max-tasks", str(TASKS * 2)])
    post(daemon, memory.flood_batch(0, TASKS, 0)[:1])  # an ingest's code paths, before the baseline
    time.sleep(0.5)
    baseline = harness.rss_bytes(daemon.proc.pid)
    bound = baseline + BUDGET + TASKS * memory.FLOOD_ALLOWANCE + SLACK
    deadline, posts, peak = time.monotonic() + FLOOD_SECONDS, 0, 0
    while time.monotonic() < deadline:
        post(daemon, memory.flood_batch(posts * memory.EVENTS_PER_POST, TASKS, posts))
        posts += 1
        peak = max(peak, harness.rss_bytes(daemon.proc.pid))
    held = memory.telemetry_metrics(daemon)
    print(f"{posts} posts; RSS baseline {baseline >> 20} MiB, peak {peak >> 20} MiB, "
          f"bound {bound >> 20} MiB; {held}")
    assert posts * memory.EVENTS_PER_POST >= 2 * TASKS  # every task got more than a budget's share
    assert sum(v for k, v in held.items() if k.startswith("progressista_telemetry_bytes")) <= BUDGET
    assert sum(v for k, v in held.items() if k.startswith("progressista_telemetry_trimmed")) > 0
    assert daemon.request("GET", "/health")[2]["tasks"] == TASKS
    assert peak <= bound
