"""The pure parts of bench/: fan-out freshness, percentiles, the run's table and its parsers."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import fanout  # noqa: E402
import harness  # noqa: E402
import run  # noqa: E402


def test_freshness_counts_each_probe_once_per_dashboard():
    acked = {0: 10.0, 1: 10.5}
    latencies, superseded = fanout.freshness([[[0, 10.1], [1, 10.7]]], acked)
    assert latencies == pytest.approx([0.1, 0.2])
    assert superseded == 0


def test_freshness_takes_a_later_value_of_the_same_task_for_a_missed_probe():
    later = fanout.PROBE_TASKS
    acked = {0: 10.0, later: 11.0}
    latencies, superseded = fanout.freshness([[[later, 11.25]]], acked)
    assert latencies == pytest.approx([1.25, 0.25])
    assert superseded == 1


def test_freshness_leaves_out_a_probe_never_seen_in_any_form():
    latencies, _ = fanout.freshness([[]], {0: 1.0})
    assert latencies == []


def test_percentile():
    values = list(range(1, 101))
    assert harness.percentile(values, 0.5) == 51
    assert harness.percentile(values, 0.99) == 100


def test_table_renders_markdown_with_verdicts():
    table = run.Table()
    table.add("memory", "per task", "515 B", target="< 2 KiB", met=True)
    table.add("cost", "sweep", "78 ms", target="< 50 ms", met=False)
    lines = table.render().splitlines()
    assert lines[0] == "| area | case | ours | reference | ratio | target | met |"
    assert lines[2].endswith("| < 2 KiB | yes |")
    assert lines[3].endswith("| < 50 ms | **no** |")


def test_startup_figures_and_client_output_become_rows(monkeypatch):
    table = run.Table()
    for ready in (1.49, 1.5):
        monkeypatch.setattr(run.startup, "measure", lambda **kw: {
            "ready_s": ready, "ready_min_s": 1.2, "state_mb": 35.2, "history_mb": 99.0})
        run.run_startup(table, {}, 3)
    run.parse_client(table, "update(1)      729.3      677.1   0.93    1.5x\n")
    assert [row[2] for row in table.rows] == ["1.49 s (best 1.20 s)", "1.50 s (best 1.20 s)", "677 ns"]
    assert [row[6] for row in table.rows] == ["yes", "**no**", "yes"]
    with pytest.raises(ValueError):
        run.parse_client(run.Table(), "no figures\n")


def test_cpu_seconds_counts_this_process_working():
    import os
    import time

    before = harness.cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert harness.cpu_seconds(os.getpid()) >= before + 0.03
