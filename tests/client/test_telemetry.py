"""Telemetry from RemoteTqdm: postfix and metrics, description, log lines, the logging handler, tqdm.write.

What the client sends is read from a recording proxy in front of a real daemon, which
judges every event (none refused) and is then asked what it keeps: metrics, postfix,
the last line and the log tail.
"""

from __future__ import annotations

import math
import time

import pytest

from progressistad.client.events import log_lines, merge_metrics
from progressistad.client.logqueue import LINES_PER_TASK, LogQueue
from tests.client.helpers import (RecordingServer, assert_acceptable, log_tail, rejected,
                                  run_program, start_program, wait_task)
from tests.support import free_port, wait_for


def _task_events(server, task_id):
    events = [e for e in server.events() if e["task_id"] == task_id]
    for event in events:
        assert_acceptable(event)
    return events


def _merged_metrics(events):
    merged = {}
    for event in events:
        merged.update(event.get("metrics", {}))
    return merged


def _last(events, field):
    return [e[field] for e in events if field in e][-1]


@pytest.mark.integration
def test_postfix_metrics_description_and_log_reach_the_wire(daemon):
    with RecordingServer(daemon=daemon) as server:
        done = run_program("""
            import io, time
            from progressistad.client import RemoteTqdm
            bar = RemoteTqdm(total=10, desc="train", task_id="t", file=io.StringIO())
            bar.set_postfix(loss=0.25, acc=0.5, note="warm", ok=True)
            print(bar.postfix)
            bar.update(5)
            time.sleep(0.3)
            bar.set_postfix({"lr": 0.001}, epoch=2)
            print(bar.postfix)
            time.sleep(0.3)
            bar.set_postfix_str("nearly there")
            bar.set_description("validate")
            bar.log("first\\nsecond\\n")
            bar.log(["third", "fourth"])
            bar.update(5)
            bar.close()
        """, server.url)
        assert done.returncode == 0, done.stderr
    events = _task_events(server, "t")
    shown = done.stdout.splitlines()
    assert shown == ["acc=0.5, loss=0.25, note=warm, ok=1", "lr=0.001, epoch=2"], "tqdm's own text"
    postfixes = [e["postfix"] for e in events if "postfix" in e]
    assert postfixes == shown + ["nearly there"]
    assert _merged_metrics(events) == {"loss": 0.25, "acc": 0.5, "lr": 0.001, "epoch": 2}
    assert _last(events, "desc") == "validate" and events[-1]["status"] == "close"
    assert server.logs("t") == ["first", "second", "third", "fourth"]
    kept = wait_task(daemon, "t", status="close")
    assert kept["metrics"] == {"loss": 0.25, "acc": 0.5, "lr": 0.001, "epoch": 2}
    assert (kept["postfix"], kept["desc"]) == ("nearly there", "validate")
    assert (kept["last_log"], kept["log_lines"]) == ("fourth", 4)
    assert log_tail(daemon, "t") == ["first", "second", "third", "fourth"]
    assert rejected(daemon) == 0


@pytest.mark.integration
def test_what_the_daemon_would_refuse_is_never_sent(daemon):
    with RecordingServer(daemon=daemon) as server:
        done = run_program("""
            from progressistad.client import RemoteTqdm
            bar = RemoteTqdm(total=None, task_id="limits", disable=True)
            bar.set_postfix(nan=float("nan"), inf=float("inf"), fine=1.5)
            bar.set_postfix(**{f"k{i:02d}": i for i in range(20)})
            bar.set_postfix(**{"x" * 100: 7})
            bar.set_postfix_str("p" * 1000)
            bar.close()
            with RemoteTqdm(total=None, task_id="cut", disable=True) as cut:
                cut.log(["é" * 1000, "a" + "€" * 400])
            with RemoteTqdm(total=None, task_id="many", disable=True) as many:
                many.log([f"line {i}" for i in range(120)])
        """, server.url)
        assert done.returncode == 0, done.stderr
    events = _task_events(server, "limits")
    metrics = _merged_metrics(events)
    assert "nan" not in metrics and "inf" not in metrics and metrics["fine"] == 1.5
    assert len(metrics) == 16 and "k14" in metrics and "k15" not in metrics, sorted(metrics)
    assert "x" * 64 not in metrics, "a 17th key, however cut, is dropped"
    assert _last(events, "postfix") == "p" * 256
    assert server.logs("cut") == ["é" * 512, "a" + "€" * 341]
    # 120 lines queued at once: the newest 100, as the daemon keeps them, in runs of 50.
    assert server.logs("many") == [f"line {i}" for i in range(20, 120)]
    assert [len(e["log"]) for e in _task_events(server, "many") if "log" in e] == [50, 50]
    assert rejected(daemon) == 0 and "refused an event" not in done.stderr
    limits = wait_task(daemon, "limits", status="close")
    assert limits["metrics"] == metrics and limits["postfix"] == "p" * 256
    assert log_tail(daemon, "cut") == ["é" * 512, "a" + "€" * 341]
    assert log_tail(daemon, "many") == [f"line {i}" for i in range(20, 120)]


def test_long_lines_are_cut_on_a_character_boundary():
    assert log_lines("é" * 1000) == ["é" * 512]
    assert log_lines("a" + "€" * 400) == ["a" + "€" * 341]
    assert log_lines(["x\ny", b"caf\xc3\xa9", "progress 10%\rprogress 20%\r\n"]) == [
        "x", "y", "café", "progress 20%"]
    assert log_lines("a\n") == ["a"] and log_lines("") == [""] and log_lines("\n") == [""]
    assert log_lines("bad \udc80 surrogate") == ["bad ? surrogate"]


def test_metrics_keep_16_finite_numbers():
    merged = merge_metrics({}, [("a", 1), ("b", math.nan), ("c", True), ("d", "2"), ("e", -math.inf)])
    assert merged == {"a": 1}
    full = merge_metrics({}, [(f"k{i}", i) for i in range(16)])
    assert merge_metrics(full, [("new", 1), ("k3", 30.5)]) == {**full, "k3": 30.5}
    assert merge_metrics({}, [("y" * 80, 2.5)]) == {"y" * 64: 2.5}


def test_log_queue_is_bounded_in_order_and_counts_drops():
    queue = LogQueue()
    assert queue.add(["a", "b"], room=1000) == (2, 0)
    seqs = queue.peek()
    assert [line for _, line in seqs] == ["a", "b"]
    assert queue.add([str(i) for i in range(LINES_PER_TASK)], room=1000) == (LINES_PER_TASK - 2, 2)
    assert queue.dropped == 2 and len(queue) == LINES_PER_TASK
    assert queue.acknowledge(seqs[-1][0]) == 0, "a and b were dropped already"
    first, *_ = queue.peek()
    assert queue.acknowledge(first[0]) == 1 and len(queue) == LINES_PER_TASK - 1
    assert queue.add(["x", "y", "z"], room=1) == (1, 2), "the process-wide budget holds too"
    assert queue.clear() == LINES_PER_TASK


@pytest.mark.integration
def test_logging_handler_and_tqdm_write_reach_the_innermost_bar(daemon):
    with RecordingServer(daemon=daemon) as server:
        done = run_program("""
            import logging, sys
            from progressistad.client import LogHandler, patch
            patch.install()
            from tqdm import tqdm
            outer = tqdm(total=2, task_id="outer", file=sys.stderr)
            log = logging.getLogger("job")
            log.setLevel(logging.INFO)
            log.addHandler(LogHandler(outer))
            log.info("starting %s", "now")
            inner = tqdm(total=1, task_id="inner", file=sys.stderr)
            tqdm.write("from inside")
            inner.close()
            tqdm.write("after inner")
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("failed")
            outer.close()
            log.warning("after close")
        """, server.url)
        assert done.returncode == 0, done.stderr
    assert done.stdout == "from inside\nafter inner\n"
    assert server.logs("inner") == ["from inside"]
    outer = server.logs("outer")
    assert outer[:3] == ["starting now", "after inner", "failed"]
    assert outer[3] == "Traceback (most recent call last):" and outer[-1] == "ValueError: boom"
    assert "after close" not in outer
    for task_id in ("outer", "inner"):
        _task_events(server, task_id)
    wait_task(daemon, "outer", status="close")
    assert log_tail(daemon, "inner") == ["from inside"] and log_tail(daemon, "outer") == outer
    assert rejected(daemon) == 0


@pytest.mark.integration
def test_log_lines_wait_for_a_daemon_that_is_away(tmp_path, daemon_factory):
    port = free_port()
    logged, go = tmp_path / "logged", tmp_path / "go"
    program = start_program("""
        import os, sys, time
        from progressistad.client import RemoteTqdm
        bar = RemoteTqdm(total=None, task_id="patient", disable=True)
        for i in range(300):
            bar.log(f"line {i}")
            time.sleep(0.001)
        open(sys.argv[1], "w").close()
        while not os.path.exists(sys.argv[2]):
            time.sleep(0.01)
        bar.log("back")
        bar.close()
    """, f"http://127.0.0.1:{port}", args=[str(logged), str(go)])
    try:
        wait_for(logged.exists, 30, message="lines logged")
        time.sleep(0.3)
        daemon = daemon_factory(port=port)
        queued = [f"line {i}" for i in range(200, 300)]
        wait_for(lambda: wait_task(daemon, "patient")["log_lines"] == len(queued), 30,
                 message="lines delivered")
        assert log_tail(daemon, "patient") == queued, "the newest lines, in order"
        go.touch()
        assert program.wait(30) == 0
        # The client queued 100 lines and then one: the daemon's tail of 100 keeps the last.
        wait_task(daemon, "patient", status="close", last_log="back")
        lines = log_tail(daemon, "patient")
    finally:
        program.kill()
    stderr = program.stderr.read()
    assert lines == queued[1:] + ["back"], lines[:3]
    assert stderr.count("cannot report progress") == 1, stderr
    assert rejected(daemon) == 0 and "refused an event" not in stderr


@pytest.mark.integration
def test_the_daemon_takes_the_new_fields(daemon):
    done = run_program("""
        import logging
        logging.basicConfig()
        from progressistad.client import RemoteTqdm
        with RemoteTqdm(total=3, desc="fit", task_id="fit", disable=True) as bar:
            for step in range(3):
                bar.set_postfix(loss=1 / (step + 1), stage="warm")
                bar.log(f"step {step}")
                bar.update(1)
            bar.set_description("fitted")
    """, daemon.url)
    assert done.returncode == 0 and "refused" not in done.stderr, done.stderr
    task = wait_task(daemon, "fit", status="close")
    assert (task["n"], task["desc"]) == (3, "fitted")
    assert task["metrics"] == {"loss": 1 / 3}
    assert task["postfix"].startswith("loss=0.333") and task["postfix"].endswith("stage=warm")
    assert (task["last_log"], task["log_lines"]) == ("step 2", 3)
    assert log_tail(daemon, "fit") == ["step 0", "step 1", "step 2"]
