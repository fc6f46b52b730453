"""The dashboard with many tasks in headless Chromium: first snapshot drawn, deltas, frame times.

Against the real daemon (harness.daemon) with `--tasks` tasks, grouped (`gNN:rank-NN` ids,
groups of `--group-size`) or ungrouped, all running. The page is the packaged dashboard in
Debian's Chromium driven by Playwright (tests/browser's launch options); figures come from the
page's own `window.progressistaTimings` (static/main.js) and a requestAnimationFrame loop:

- first draw: from navigation start (`first_draw_ms`) and from the snapshot message's arrival
  at the socket handler (`snapshot_draw_ms`) to the frame after the one whose render pass wrote
  the bars (the DOM written, then styled, laid out and painted);
- a delta of `--delta-tasks` updated tasks, all matching the filter: the script time of
  parsing and handling the message plus the render pass that applies it (`delta_script_ms`),
  p50 and max over `--deltas` deltas sent one at a time;
- frame times while such deltas arrive every `--feed-interval` s for `--feed-seconds`:
  intervals between requestAnimationFrame callbacks, p50, p95 and max.

Prints figures only, asserts nothing. Loopback only, bounded in time.

    python bench/dashboard_ui.py                       # 10,000 tasks, grouped and not, 5 runs
    python bench/dashboard_ui.py --cases ungrouped --runs 1 --profile /tmp/ui.cpuprofile
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import threading
import time
from typing import Dict, List, Optional

import harness

from tests.browser.conftest import CHROMIUM_ARGS

DASHBOARD = "/static/index.html"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 120_000
TOTAL = 1_000_000

FRAME_LOOP = """() => {
  const intervals = [];
  let last = null;
  window.benchFrames = { intervals, running: true };
  const step = (at) => {
    if (last !== null) intervals.push(at - last);
    last = at;
    if (window.benchFrames.running) requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}"""
"""Records the intervals between animation frames until `benchFrames.running` turns false."""


def task_ids(tasks: int, grouped: bool, group_size: int) -> List[str]:
    if grouped:
        return [f"g{i // group_size:02d}:rank-{i % group_size:02d}" for i in range(tasks)]
    return [f"job-{i:05d}" for i in range(tasks)]


def events(ids: List[str], n: int) -> List[Dict]:
    return [{"task_id": task_id, "n": n, "total": TOTAL, "unit": "it",
             "desc": f"Process shard {task_id}"} for task_id in ids]


def post_all(url: str, batch: List[Dict]) -> None:
    for start in range(0, len(batch), 1000):
        harness.post_json(url, batch[start:start + 1000])


def spread(ids: List[str], count: int, offset: int) -> List[str]:
    """`count` ids evenly through `ids` (so a delta reaches every group), shifted by `offset`."""
    step = max(1, len(ids) // count)
    return [ids[(i * step + offset) % len(ids)] for i in range(count)]


def wait_timing(page, kind: str, tasks: int) -> Dict:
    page.wait_for_function(
        "([kind, tasks]) => { const t = window.progressistaTimings[kind]; return t && t.tasks >= tasks; }",
        arg=[kind, tasks], timeout=TIMEOUT_MS, polling=50)
    return page.evaluate("kind => window.progressistaTimings[kind]", kind)


def caught_up(page, timing: Dict) -> float:
    """Milliseconds from `timing`'s message to the render pass that left no bar behind."""
    page.wait_for_function("at => window.progressistaTimings.caughtUpAt > at", arg=timing["arrivedAt"],
                           timeout=TIMEOUT_MS, polling=20)
    return page.evaluate("window.progressistaTimings.caughtUpAt") - timing["arrivedAt"]


def feed(url: str, ids: List[str], count: int, interval: float, stop: threading.Event) -> int:
    sent = 0
    while not stop.is_set():
        started = time.monotonic()
        post_all(url, events(spread(ids, count, sent), 1000 + sent))
        sent += 1
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    return sent


PHASES = {"script": "ScriptDuration", "style": "RecalcStyleDuration", "layout": "LayoutDuration",
          "busy": "TaskDuration"}
"""Chromium's own counters (CDP Performance.getMetrics, seconds so far) of where the main thread's time goes."""


class Phases:
    """Main-thread time by phase over a stretch of the page's life, from CDP's counters."""

    def __init__(self, page) -> None:
        self.session = page.context.new_cdp_session(page)
        self.session.send("Performance.enable")
        self.start = self.read()

    def read(self) -> Dict[str, float]:
        metrics = {m["name"]: m["value"] for m in self.session.send("Performance.getMetrics")["metrics"]}
        return {phase: metrics.get(name, 0.0) for phase, name in PHASES.items()}

    def since(self, prefix: str) -> Dict[str, float]:
        """Milliseconds of each phase since the last call (or since made), keys `prefix_phase_ms`."""
        now = self.read()
        spent = {f"{prefix}_{phase}_ms": (now[phase] - self.start[phase]) * 1000 for phase in PHASES}
        self.start = now
        return spent


def frames_under_load(page, url: str, ids: List[str], count: int, interval: float, seconds: float) -> Dict:
    stop = threading.Event()
    sent: List[int] = []
    feeder = threading.Thread(target=lambda: sent.append(feed(url, ids, count, interval, stop)))
    page.evaluate(FRAME_LOOP)
    feeder.start()
    time.sleep(seconds)
    stop.set()
    feeder.join(30)
    intervals = page.evaluate("() => { window.benchFrames.running = false; return window.benchFrames.intervals; }")
    return {"frame_p50_ms": statistics.median(intervals), "frame_p95_ms": harness.percentile(intervals, 0.95),
            "frame_max_ms": max(intervals), "frames": len(intervals), "feed_deltas": sent[0] if sent else 0}


class Profile:
    """Chromium's CPU profile of the page (CDP Profiler) while it is on, written as .cpuprofile."""

    def __init__(self, page, path: Optional[str]) -> None:
        self.path = path
        self.session = page.context.new_cdp_session(page) if path else None

    def __enter__(self) -> "Profile":
        if self.session:
            self.session.send("Profiler.enable")
            self.session.send("Profiler.setSamplingInterval", {"interval": 200})
            self.session.send("Profiler.start")
        return self

    def __exit__(self, *exc) -> None:
        if not self.session:
            return
        profile = self.session.send("Profiler.stop")["profile"]
        with open(self.path, "w") as stream:
            json.dump(profile, stream)
        print(f"CPU profile written to {self.path}; heaviest functions (self time):")
        for line in heaviest(profile):
            print("   ", line)


def heaviest(profile: Dict, top: int = 15) -> List[str]:
    """Self time per function of a CDP profile, heaviest first."""
    nodes = {node["id"]: node for node in profile["nodes"]}
    hits: Dict[int, int] = {}
    for sample in profile["samples"]:
        hits[sample] = hits.get(sample, 0) + 1
    deltas = profile.get("timeDeltas") or [0]
    sample_ms = (sum(deltas) / len(deltas)) / 1000 if deltas else 0
    per_function: Dict[str, float] = {}
    for node_id, count in hits.items():
        frame = nodes[node_id]["callFrame"]
        name = f"{frame['functionName'] or '(anonymous)'} {os.path.basename(frame['url'])}:{frame['lineNumber'] + 1}"
        per_function[name] = per_function.get(name, 0) + count * sample_ms
    ordered = sorted(per_function.items(), key=lambda item: -item[1])[:top]
    return [f"{ms:8.1f} ms  {name}" for name, ms in ordered]


def measure(tasks: int = 10000, grouped: bool = True, group_size: int = 100, deltas: int = 8,
            delta_tasks: int = 1000, feed_interval: float = 0.1, feed_seconds: float = 5.0,
            profile: Optional[str] = None, browser=None) -> Dict:
    """One page on a fresh daemon: first draw, delta script time, frame times (figures in ms)."""
    ids = task_ids(tasks, grouped, group_size)
    with harness.daemon() as server, launched(browser) as chromium:
        post_all(server.url, [dict(e, status="start") for e in events(ids, 0)])
        post_all(server.url, events(ids, 1))  # every task running and updated, as on a busy board
        context = chromium.new_context(viewport=VIEWPORT)
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.on("pageerror", lambda error: print(f"page error: {error}"))
            phases = Phases(page)
            with Profile(page, profile):
                page.goto(server.url + DASHBOARD)
                snapshot = wait_timing(page, "snapshot", tasks)
                spent = phases.since("load")
                snapshot_all = caught_up(page, snapshot)
                page.wait_for_timeout(500)
                script, script_all, delta_all = [], [], []
                for index in range(deltas):
                    page.evaluate("window.progressistaTimings.delta = null")
                    phases.since("pause")
                    post_all(server.url, events(spread(ids, delta_tasks, index), 2 + index))
                    delta = wait_timing(page, "delta", delta_tasks)
                    script.append(delta["handledMs"] + delta["scriptMs"])
                    delta_all.append(caught_up(page, delta))
                    script_all.append(phases.since("delta")["delta_script_ms"])
                    page.wait_for_timeout(150)
                phases.since("pause")
                frames = frames_under_load(page, server.url, ids, delta_tasks, feed_interval, feed_seconds)
                spent.update(phases.since("feed"))
        finally:
            context.close()
    return {"tasks": tasks, "grouped": grouped, "first_draw_ms": snapshot["paintedAt"],
            "snapshot_draw_ms": snapshot["paintedMs"], "snapshot_script_ms": snapshot["handledMs"] + snapshot["scriptMs"],
            "snapshot_all_ms": snapshot_all,
            "delta_script_p50_ms": statistics.median(script), "delta_script_max_ms": max(script),
            "delta_all_p50_ms": statistics.median(delta_all),
            "delta_all_script_p50_ms": statistics.median(script_all),
            **frames, **spent}


class launched:
    """`browser` if given, else a headless Chromium of its own for the block."""

    def __init__(self, browser=None) -> None:
        self.browser = browser
        self.driver = None

    def __enter__(self):
        if self.browser is not None:
            return self.browser
        from playwright.sync_api import sync_playwright

        self.driver = sync_playwright().start()
        self.browser = self.driver.chromium.launch(executable_path=shutil.which("chromium") or CHROMIUM,
                                                   args=CHROMIUM_ARGS)
        return self.browser

    def __exit__(self, *exc) -> None:
        if self.driver is not None:
            self.browser.close()
            self.driver.stop()


def repeated(runs: int, **options) -> Dict:
    """`measure` `runs` times: per figure the median, the best (lowest) and the worst run."""
    results = [measure(**options) for _ in range(runs)]
    summary = {key: value for key, value in results[0].items() if not key.endswith("_ms")}
    for key in results[0]:
        if key.endswith("_ms"):
            summary[key] = statistics.median(r[key] for r in results)
            summary[key.replace("_ms", "_min_ms")] = min(r[key] for r in results)
            summary[key.replace("_ms", "_max_ms")] = max(r[key] for r in results)
    summary["runs"] = runs
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--cases", nargs="+", choices=["grouped", "ungrouped"], default=["grouped", "ungrouped"])
    parser.add_argument("--group-size", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--deltas", type=int, default=8)
    parser.add_argument("--delta-tasks", type=int, default=1000)
    parser.add_argument("--feed-interval", type=float, default=0.1)
    parser.add_argument("--feed-seconds", type=float, default=5.0)
    parser.add_argument("--profile", help="write the page's CPU profile (one run) to this .cpuprofile")
    args = parser.parse_args()
    print(f"load average {harness.load_average()}; median (least-most) of {args.runs} runs, ms")
    print(f"{'case':>10} {'first draw':>16} {'from snapshot':>14} {'delta p50':>12} {'delta max':>12} "
          f"{'frame p50':>11} {'frame p95':>11} {'frame max':>11}")
    with launched() as browser:
        for case in args.cases:
            options = dict(tasks=args.tasks, grouped=case == "grouped", group_size=args.group_size,
                           deltas=args.deltas, delta_tasks=args.delta_tasks, feed_interval=args.feed_interval,
                           feed_seconds=args.feed_seconds, browser=browser)
            if args.profile:
                result = repeated(1, profile=args.profile.replace(".cpuprofile", f"-{case}.cpuprofile"), **options)
            else:
                result = repeated(args.runs, **options)
            cells = [f"{result[k]:.0f} ({result[k.replace('_ms', '_min_ms')]:.0f}-"
                     f"{result[k.replace('_ms', '_max_ms')]:.0f})" for k in
                     ("first_draw_ms", "snapshot_draw_ms", "delta_script_p50_ms", "delta_script_max_ms",
                      "frame_p50_ms", "frame_p95_ms", "frame_max_ms")]
            print(f"{case:>10} {cells[0]:>16} {cells[1]:>14} {cells[2]:>12} {cells[3]:>12} "
                  f"{cells[4]:>11} {cells[5]:>11} {cells[6]:>11}")
            print(" " * 11 + f"every bar written: snapshot {result['snapshot_all_ms']:.0f} ms after it arrived, "
                  f"a delta {result['delta_all_p50_ms']:.0f} ms after (p50), "
                  f"{result['delta_all_script_p50_ms']:.0f} ms of script in all (p50)")
            print(" " * 11 + "main thread, ms (load = until the snapshot is drawn, feed = the frames' "
                  f"{args.feed_seconds:.0f} s): " + ", ".join(
                      f"{key[:-3]} {result[key]:.0f}" for key in result
                      if key.startswith(("load_", "feed_")) and key.endswith("_ms")
                      and "_min_" not in key and "_max_" not in key))
    print(f"load average {harness.load_average()}")


if __name__ == "__main__":
    main()
