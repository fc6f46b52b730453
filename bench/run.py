"""Every benchmark, on loopback, bounded in time, printed as one table (Markdown) with targets.

    python bench/run.py            # the full run, well under 15 minutes
    python bench/run.py --quick    # a couple of minutes: shorter measurements, fewer repeats
    python bench/run.py --json results.json   # also keep every raw figure

Sections: ingest (wrk against the daemon and a bare Tornado handler, side by side), fan-out
latency, memory, cost growth (in process), startup to READY=1 (bench/startup.py) and client
cost (bench/client_overhead.py), the run history (bench/history.py); scripts other engineers own are skipped with a note when
they are not in this checkout. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

import harness

import costs
import dashboard_ui
import fanout
import ingest
import memory
import reads
import startup

TASK_COUNTS = (1, 1000, 10000)
DASHBOARD_COUNTS = (0, 5, 100)
BATCHES = (1, 100)
KIB = 1024
SECTIONS = ("ingest", "snapshot", "telemetry", "fanout", "reads", "memory", "costs", "startup",
            "dashboard", "client", "redis", "history")


class Table:
    """Rows of (area, case, ours, reference, ratio, target, met), printed as Markdown."""

    COLUMNS = ("area", "case", "ours", "reference", "ratio", "target", "met")

    def __init__(self) -> None:
        self.rows: List[tuple] = []
        self.notes: List[str] = []

    def add(self, area: str, case: str, ours: str, reference: str = "", ratio: str = "",
            target: str = "", met: Optional[bool] = None) -> None:
        verdict = "" if met is None else ("yes" if met else "**no**")
        self.rows.append((area, case, ours, reference, ratio, target, verdict))

    def render(self) -> str:
        lines = ["| " + " | ".join(self.COLUMNS) + " |", "|" + "---|" * len(self.COLUMNS)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores "
            f"(nproc), {model}; Python {platform.python_version()}; {platform.system()} "
            f"{platform.release()}")


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run_ingest(table: Table, raw: Dict, seconds: int) -> None:
    """Every feature on (SPEC 16) against the bare handler parsing the same events, and
    against features off; CPU per event decides (the rate one core sustains)."""
    rows = list(ingest.features_matrix(TASK_COUNTS, DASHBOARD_COUNTS, BATCHES, seconds, connections=8))
    raw["ingest"] = rows
    for row in rows:
        single = row["batch"] == 1
        case = f"{row['tasks']} tasks, {row['dashboards']} dash, " + \
            ("single" if single else f"batch {row['batch']}") + ", every feature on"
        on, off, bare = row["on"], row["off"], row["bare"]
        errors = on["errors"] + off["errors"]
        ours = (f"{on['events']:,.0f} ev/s, {on['cpu_us']:.1f} µs CPU/ev (p99 {on['p99']:.0f} ms)"
                + (f", {errors} errors" if errors else ""))
        reference = (f"bare {bare['events']:,.0f} ev/s, {bare['cpu_us']:.1f} µs CPU/ev; features off "
                     f"{off['events']:,.0f} ev/s, {off['cpu_us']:.1f} µs CPU/ev")
        target = ingest.TARGET_SINGLE if single else ingest.TARGET_BATCH
        ratio = (f"{row['cpu_ratio']:.2f} of bare (rate {row['ratio']:.2f}); "
                 f"{row['features_cpu_ratio']:.2f} of off (rate {row['features_ratio']:.2f})")
        table.add("ingest", case, ours, reference, ratio,
                  f">= {target}x bare, >= {ingest.TARGET_FEATURES}x off (CPU per event)",
                  row["cpu_ratio"] >= target and row["features_cpu_ratio"] >= ingest.TARGET_FEATURES
                  and not errors)
    add_curve(table, rows)


def run_snapshot_watchers(table: Table, raw: Dict, seconds: int) -> None:
    """The guide's protocol (/ws, a snapshot per message): 100 watchers at 10,000 tasks."""
    rows = list(ingest.features_matrix([10000], [100], [1], seconds, connections=8,
                                       protocol="snapshot"))
    raw["snapshot_watchers"] = rows
    row = rows[0]
    on = row["on"]
    table.add("ingest", "10000 tasks, 100 snapshot-protocol (/ws) watchers, single, every feature on",
              f"{on['events']:,.0f} ev/s, {on['cpu_us']:.1f} µs CPU/ev",
              f"bare {row['bare']['events']:,.0f} ev/s, {row['bare']['cpu_us']:.1f} µs CPU/ev",
              f"{row['cpu_ratio']:.2f} (rate {row['ratio']:.2f})",
              f">= {ingest.TARGET_SNAPSHOT_WATCHERS}x bare (CPU per event)",
              row["cpu_ratio"] >= ingest.TARGET_SNAPSHOT_WATCHERS and not on["errors"])
    heard = ingest.snapshot_rounds(max(10, 3 * seconds))
    raw["snapshot_rounds"] = heard
    table.add("fan-out", "how often a snapshot-protocol watcher hears, 100 of them at 10000 tasks "
              "under single-event load", f"every {heard['seconds_per_message']:.2f} s",
              f"{heard['snapshot_bytes'] / 2**20:.1f} MiB a snapshot", "", "")


def run_ingest_telemetry(table: Table, raw: Dict, seconds: int) -> None:
    """Plain events against SPEC 16's telemetry shape on one daemon, 1,000 tasks, 5 dashboards."""
    rows = list(ingest.telemetry_matrix([1000], [5], BATCHES, seconds, connections=8))
    raw["ingest_telemetry"] = rows
    for row in rows:
        case = ("single" if row["batch"] == 1 else f"batch {row['batch']}")
        telemetry, plain = row["telemetry"], row["plain"]
        errors = telemetry["errors"] + plain["errors"]
        cost = 1 / row["cpu_ratio"]  # CPU per event with telemetry over plain
        table.add("ingest", f"1000 tasks, 5 dash, {case}, 4 metrics and a log line in 1 of 10",
                  f"{telemetry['events']:,.0f} ev/s, {telemetry['cpu_us']:.1f} µs CPU/ev",
                  f"{plain['events']:,.0f} ev/s, {plain['cpu_us']:.1f} µs CPU/ev plain",
                  f"CPU {cost:.2f}", "within 1.1x plain (CPU per event)",
                  cost <= 1.1 and not errors)


def add_curve(table: Table, rows: List[Dict]) -> None:
    """Cost per event over the matrix, every feature on: the CPU per event at each task count
    per dashboard count and batch size, and the largest case against the smallest."""
    for batch in BATCHES:
        kind = "single" if batch == 1 else f"batch {batch}"
        mine = [r for r in rows if r["batch"] == batch]
        for watchers in DASHBOARD_COUNTS:
            cpu = [f"{r['on']['cpu_us']:.1f}" for r in mine if r["dashboards"] == watchers]
            table.add("curve", f"µs CPU/event at {'/'.join(map(str, TASK_COUNTS))} tasks, "
                      f"{watchers} dash, {kind}", " / ".join(cpu) + " µs")
        cost = {(r["tasks"], r["dashboards"]): r["on"]["cpu_us"] for r in mine}
        largest, smallest = cost[(TASK_COUNTS[-1], DASHBOARD_COUNTS[-1])], cost[(TASK_COUNTS[0], DASHBOARD_COUNTS[0])]
        table.add("curve", f"{TASK_COUNTS[-1]} tasks x {DASHBOARD_COUNTS[-1]} dash against "
                  f"{TASK_COUNTS[0]} x {DASHBOARD_COUNTS[0]}, {kind}, µs CPU/event",
                  f"{largest:.1f} µs", f"{smallest:.1f} µs", f"{largest / smallest:.2f}x",
                  "<= 1.3x", largest / smallest <= 1.3)


def run_fanout(table: Table, raw: Dict, seconds: int) -> None:
    rows = {state: fanout.measure(dashboards=100, tasks=1000, seconds=seconds, load_connections=8,
                                  load_delay_ms=2, interval=0.1, features_on=state == "on")
            for state in ("off", "on")}
    raw["fanout"] = rows
    on, off = rows["on"], rows["off"]
    table.add("fan-out", f"POST to receipt, 100 dash, 1000 tasks, every feature on, under "
              f"{on['load_events_per_s']:,.0f} ev/s load, {on['samples']:,} receipts "
              f"({on['superseded']} superseded)",
              f"p50 {on['p50_ms']:.0f} ms, p99 {on['p99_ms']:.0f} ms",
              f"features off: p50 {off['p50_ms']:.0f} ms, p99 {off['p99_ms']:.0f} ms",
              f"p99 {on['p99_ms'] / off['p99_ms']:.2f} of off",
              f"p99 <= {on['target_ms']:.0f} ms (interval + 20), within 5% of off",
              on["p99_ms"] <= on["target_ms"] and on["p99_ms"] <= 1.05 * off["p99_ms"]
              and on["samples"] == on["probes"] * on["dashboards"])


def run_reads(table: Table, raw: Dict) -> None:
    figures = reads.measure(10000, 50)
    raw["reads"] = figures
    table.add("reads", "GET /tasks at 10,000 tasks, every feature on, nothing changed between requests",
              f"{figures['all_cpu_ms']:.2f} ms CPU", f"{figures['all_bytes'] / 2**20:.1f} MiB answer", "",
              f"< {reads.TARGET_MS:.0f} ms", figures["all_cpu_ms"] < reads.TARGET_MS)
    table.add("reads", "GET /tasks at 10,000 tasks, an event posted before each request",
              f"{figures['changed_cpu_ms']:.2f} ms CPU", "", "", f"< {reads.TARGET_MS:.0f} ms",
              figures["changed_cpu_ms"] < reads.TARGET_MS)
    table.add("reads", "GET /tasks?status=update at 10,000 tasks (all match)",
              f"{figures['filtered_cpu_ms']:.2f} ms CPU", "", "", "")


TAILS_HELD = 'progressista_telemetry_bytes{kind="tails"}'


def run_memory(table: Table, raw: Dict) -> None:
    tasks = memory.per_task(100000)
    watchers = memory.with_dashboards(1000, 1000)
    raw["memory"] = {"tasks": tasks, "dashboards": watchers}
    table.add("memory", f"RSS per task at {tasks['tasks'] - 1:,} tasks",
              f"{tasks['bytes_per_task']:,.0f} B/task",
              f"RSS {tasks['idle_rss_mib']:.0f} -> {tasks['loaded_rss_mib']:.0f} MiB", "",
              "< 2 KiB/task", tasks["bytes_per_task"] < 2 * KIB)
    table.add("memory", f"RSS with 1,000 dashboards ({watchers['tasks']:,} tasks)",
              f"{watchers['rss_after_mib']:.0f} MiB ({watchers['bytes_per_dashboard'] / KIB:.0f} KiB/dash)",
              f"{watchers['rss_before_mib']:.0f} MiB without", "", "< 20 KiB/dash",
              watchers["bytes_per_dashboard"] < 20 * KIB)
    logged = memory.per_task_with_telemetry(4000, 10000)
    raw["memory"]["telemetry"] = logged
    held = logged["held_within"]
    table.add("memory", f"RSS per task with 4 metrics and a full log tail ({logged['tasks']:,} tasks)",
              f"{logged['bytes_per_task']:,.0f} B/task",
              f"{held.get(TAILS_HELD, 0) / logged['tasks']:,.0f} B/task "
              "of tails by the budget's estimate", "", "")
    past = logged["held_past"]
    kept = sum(v for k, v in past.items() if k.startswith("progressista_telemetry_bytes"))
    trimmed = sum(v for k, v in past.items() if k.startswith("progressista_telemetry_trimmed"))
    table.add("memory", f"{logged['flood_tasks']:,} tasks so logged, past the 64 MiB budget",
              f"RSS {logged['flooded_rss_mib']:.0f} MiB",
              f"{kept / 2**20:.0f} MiB held, {trimmed / 2**20:.0f} MiB trimmed", "",
              "held <= budget", kept <= 64 * 2**20)


def run_costs(table: Table, raw: Dict, repeat: int) -> None:
    rows = [costs.measure(tasks, repeat, [0, 5, 100, 1000]) for tasks in (1000, 10000, 100000)]
    raw["costs"] = rows
    held = costs.full_telemetry_bytes()
    raw["costs_telemetry_bytes"] = held

    def series(key: str, fmt: str) -> str:
        return " / ".join(fmt.format(row[key]) for row in rows)

    big = rows[-1]
    where = "at 1k / 10k / 100k tasks"
    table.add("cost", f"sweep, nothing due, {where}", series("sweep_nothing_due_ms", "{:.3f}") + " ms",
              "", "", "< 50 ms at 100k", big["sweep_nothing_due_ms"] < 50)
    table.add("cost", f"sweep, every task due (all marked stale), longest step, {where}",
              series("sweep_all_due_step_ms", "{:.1f}") + " ms",
              series("sweep_all_due_ms", "{:.1f}") + " ms in all", "", "< 50 ms at 100k",
              big["sweep_all_due_step_ms"] < 50)
    table.add("cost", f"sweep again, every task stale and kept, {where}",
              series("sweep_all_kept_ms", "{:.3f}") + " ms", "", "", "< 50 ms at 100k",
              big["sweep_all_kept_ms"] < 50)
    table.add("cost", f"snapshot (store.snapshot) {where}", series("snapshot_ms", "{:.1f}") + " ms")
    table.add("cost", f"snapshot JSON (wirejson.dumps) {where}", series("dumps_ms", "{:.1f}") + " ms",
              series("snapshot_bytes", "{:,}") + " bytes")
    table.add("curve", f"CPU per event (store + hub publish) {where}", series("event_us", "{:.1f}") + " µs",
              "", "", "flat")
    ratios = [row["event_telemetry_us"] / row["event_us"] for row in rows]
    table.add("cost", f"CPU per event with 4 metrics (a log line in 1 of 10), store + hub, {where}",
              series("event_telemetry_us", "{:.2f}") + " µs",
              series("event_us", "{:.2f}") + " µs plain", " / ".join(f"{r:.2f}" for r in ratios),
              "within 1.1x plain", max(ratios) <= 1.1)
    table.add("cost", f"CPU per event in validation, with telemetry and plain, {where}",
              series("validate_telemetry_us", "{:.2f}") + " µs",
              series("validate_us", "{:.2f}") + " µs plain", "", "")
    table.add("cost", f"one series sample per changed task (4 metrics), {where}",
              series("sample_us", "{:.2f}") + " µs", "", "", "")
    table.add("memory", "telemetry of one task: 4 metrics, full log tail (80-char lines), full series",
              f"{held['traced']:,.0f} B (tracemalloc)", f"{held['estimate']:,.0f} B budget estimate", "", "")
    stages = {name: min((costs.batch_stages(make) for _ in range(repeat)), key=lambda s: s["ingest"])
              for name, make in (("plain", costs.plain_event), ("telemetry", costs.telemetry_event))}
    raw["costs_batch_stages"] = stages
    names = ("parse", "validate", "ingest", "sample", "flush")

    def stage_line(values: Dict[str, float]) -> str:
        return " / ".join(f"{values[name]:.2f}" for name in names) + f" µs ({values['body_bytes']:.0f} B)"

    table.add("cost", "batch of 100, CPU per event: parse / validate / store+publish / series "
              "sample / flush to 5 dash (body bytes per event), with telemetry",
              stage_line(stages["telemetry"]), stage_line(stages["plain"]) + " plain",
              f"{sum(stages['telemetry'][n] for n in names) / sum(stages['plain'][n] for n in names):.2f}",
              "")
    sizes = costs.delta_bytes()
    raw["costs_delta_bytes"] = sizes
    table.add("fan-out", f"bytes of a delta of {sizes['tasks']} tasks, 4 metrics and a log line "
              "in 1 of 10 events", f"{sizes['telemetry']:,} B ({sizes['telemetry'] / sizes['tasks']:.0f} B/task)",
              f"{sizes['plain']:,} B plain ({sizes['plain'] / sizes['tasks']:.0f} B/task)",
              f"{sizes['telemetry'] / sizes['plain']:.2f}", "")
    for watchers in (0, 5, 100, 1000):
        table.add("curve", f"one flush of 100 changed tasks to {watchers} dash, {where}",
                  series(f"flush_{watchers}_ms", "{:.2f}") + " ms", "", "", "")
    table.add("curve", f"one flush of 100 changed tasks to snapshot-protocol dashboards, {where}",
              series("flush_snapshot_protocol_ms", "{:.1f}") + " ms", "", "", "")


def run_script(table: Table, raw: Dict, name: str, argv: List[str], timeout: float,
               parse: Callable[[Table, str], None]) -> None:
    """Run another engineer's bench script if it is in this checkout; its output goes to the notes."""
    path = harness.HERE / name
    if not path.exists():
        table.notes.append(f"{name}: not in this checkout yet, skipped")
        return
    try:
        done = subprocess.run([sys.executable, str(path), *argv], capture_output=True, text=True,
                              timeout=timeout, cwd=harness.REPO)
    except subprocess.TimeoutExpired:
        table.notes.append(f"{name}: did not finish within {timeout:.0f} s, skipped")
        return
    raw[name] = done.stdout
    table.notes.append(f"{name} {' '.join(argv)} (exit {done.returncode}):\n{done.stdout.rstrip()}"
                       + (f"\n{done.stderr.strip()[-2000:]}" if done.returncode else ""))
    try:
        parse(table, done.stdout)
    except (ValueError, IndexError, AttributeError):
        table.notes.append(f"{name}: output not understood; see above")


def run_startup(table: Table, raw: Dict, runs: int) -> None:
    figures = startup.measure(tasks=100000, history_runs=100000, runs=runs)
    raw["startup"] = figures
    table.add("startup", f"spawn to READY=1 with 100,000 tasks and 100,000 runs of history on disk "
              f"(median of {runs})", f"{figures['ready_s']:.2f} s (best {figures['ready_min_s']:.2f} s)",
              f"state file {figures['state_mb']:.0f} MB, history {figures['history_mb']:.0f} MB", "",
              f"< {startup.TARGET_READY_S} s", figures["ready_s"] < startup.TARGET_READY_S)


def run_dashboard(table: Table, raw: Dict, runs: int) -> None:
    """The bundled dashboard with 10,000 tasks in headless Chromium (bench/dashboard_ui.py)."""
    for grouped in (True, False):
        figures = dashboard_ui.repeated(runs, tasks=10000, grouped=grouped)
        raw["dashboard_" + ("grouped" if grouped else "ungrouped")] = figures
        case = "10,000 tasks " + ("in 100 groups" if grouped else "ungrouped") + f", median of {runs}"
        table.add("dashboard", f"{case}: first snapshot drawn, from page load",
                  f"{figures['first_draw_ms']:.0f} ms",
                  f"{figures['snapshot_draw_ms']:.0f} ms from the snapshot's arrival", "", "<= 1000 ms",
                  figures["first_draw_ms"] <= 1000)
        table.add("dashboard", f"{case}: a delta of 1,000 bars, script time p50 / max",
                  f"{figures['delta_script_p50_ms']:.1f} / {figures['delta_script_max_ms']:.1f} ms",
                  f"every bar written {figures['delta_all_p50_ms']:.0f} ms after (p50)", "", "<= 16 ms",
                  figures["delta_script_max_ms"] <= 16)
        table.add("dashboard", f"{case}: frame time while 1,000-bar deltas arrive every 0.1 s, p95",
                  f"{figures['frame_p95_ms']:.1f} ms", f"p50 {figures['frame_p50_ms']:.1f} ms", "",
                  "<= 33 ms", figures["frame_p95_ms"] <= 33)


def parse_client(table: Table, out: str) -> None:
    found = False
    for line in out.splitlines():
        match = re.match(r"(update\(1\)|iteration)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)x", line)
        if match:
            name, plain, remote, ratio, target = match.groups()
            table.add("client", f"per {name} vs plain tqdm", f"{float(remote):.0f} ns",
                      f"{float(plain):.0f} ns tqdm", ratio, f"<= {target}x (client issue)",
                      float(ratio) <= float(target))
            found = True
    if not found:
        raise ValueError("no rows")


def parse_history(table: Table, out: str) -> None:
    jobs = re.search(r"/history/jobs \(limit 100\)\s+best\s+([\d.]+) ms\s+median\s+([\d.]+) ms", out)
    size = re.search(r"size: ([\d,]+) bytes per run", out)
    write = re.search(r"write: ([\d,]+) runs/s", out)
    if not (jobs and size and write):
        raise ValueError("no figures")
    median = float(jobs.group(2))
    table.add("history", "/history/jobs (100 jobs) with 100,000 runs in SQLite, median",
              f"{median:.1f} ms", f"best {float(jobs.group(1)):.1f} ms", "", "< 50 ms", median < 50)
    table.add("history", "SQLite file size per run; runs written per second by the worker",
              f"{size.group(1)} bytes", f"{write.group(1)} runs/s")
    for row in re.finditer(r"(\d+) events a run, batch\s+(\d+): on\s+([\d,]+) ev/s\s+([\d.]+) us "
                           r"CPU/ev \| off\s+([\d,]+) ev/s\s+([\d.]+) us CPU/ev \| ratio ([\d.]+) "
                           r"\(CPU ([\d.]+)\)", out):
        steps, batch, on, on_cpu, off, off_cpu, ratio, cpu_ratio = row.groups()
        table.add("history", f"ingest, 1,000 tasks finishing, {steps} events a run, batch "
                  f"{batch}: history on", f"{on} ev/s, {on_cpu} µs CPU/ev",
                  f"{off} ev/s, {off_cpu} µs CPU/ev off", f"{ratio} (CPU {cpu_ratio})",
                  "within 5% (rate)", float(ratio) >= 0.95)


def parse_nothing(table: Table, out: str) -> None:
    """The Redis bench's figures stay in the notes."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a couple of minutes instead of ~10")
    parser.add_argument("--json", metavar="FILE", help="write every raw figure to FILE")
    parser.add_argument("--only", nargs="+", metavar="SECTION",
                        choices=SECTIONS,
                        help="run only these sections")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian package wrk): apt-get install wrk", file=sys.stderr)
        return 1
    harness.raise_file_limit()
    seconds = 2 if args.quick else 5
    wanted = set(args.only or SECTIONS)
    table, raw = Table(), {"machine": machine(), "quick": args.quick}
    started = time.monotonic()
    print(f"# progressistad benchmarks{' (--quick)' if args.quick else ''}: {raw['machine']}", flush=True)
    print(f"# load average at start: {load_average()}", flush=True)
    sections = [
        ("ingest", lambda: run_ingest(table, raw, seconds)),
        ("telemetry", lambda: run_ingest_telemetry(table, raw, seconds)),
        ("snapshot", lambda: run_snapshot_watchers(table, raw, seconds)),
        ("fanout", lambda: run_fanout(table, raw, 5 if args.quick else 10)),
        ("reads", lambda: run_reads(table, raw)),
        ("memory", lambda: run_memory(table, raw)),
        ("costs", lambda: run_costs(table, raw, 1 if args.quick else 3)),
        ("startup", lambda: run_startup(table, raw, 1 if args.quick else 3)),
        ("dashboard", lambda: run_dashboard(table, raw, 1 if args.quick else 3)),
        ("client", lambda: run_script(table, raw, "client_overhead.py",
                                      ["--n", "200000", "--repeat", "2"] if args.quick else [],
                                      300, parse_client)),
        ("redis", lambda: run_script(table, raw, "redis_ingest.py", ["--quick"] if args.quick else [],
                                     300, parse_nothing)),
        ("history", lambda: run_script(table, raw, "history.py",
                                       ["--repeat", "3" if args.quick else "7"], 300, parse_history)),
    ]
    for name, run in sections:
        if name in wanted:
            section_started = time.monotonic()
            print(f"# {name} ...", file=sys.stderr, flush=True)
            run()
            print(f"# {name}: {time.monotonic() - section_started:.0f} s", file=sys.stderr, flush=True)
    print(table.render())
    print(f"\n# load average at end: {load_average()}; whole run {time.monotonic() - started:.0f} s")
    for note in table.notes:
        print(f"\n{note}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(raw, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
