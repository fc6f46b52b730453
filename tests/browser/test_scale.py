"""1000 bars, phone width, dark mode, the keyboard, formatting, and the README screenshot."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from tests.browser.conftest import Dashboards, assert_fits_width, rows, wait_rows
from tests.support import REPO, post

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DASHBOARD = "/static/index.html"
MANY = 1000
SCREENSHOT = REPO / "docs" / "dashboard.png"
ARTIFACTS = REPO / "tests" / "artifacts"


def many_events(n: int):
    return [{"task_id": f"load-{i:04d}", "desc": f"Shard {i}", "n": n, "total": 100, "unit": "MB"}
            for i in range(MANY)]


def wait_timing(page, kind: str, tasks: int) -> dict:
    page.wait_for_function(
        "([kind, tasks]) => { const t = window.progressistaTimings[kind]; return t && t.tasks >= tasks; }",
        arg=[kind, tasks], timeout=30_000)
    return page.evaluate("kind => window.progressistaTimings[kind]", kind)


def test_1000_bars_render_and_keep_updating(daemon, dashboards):
    post(daemon, many_events(1))
    page = dashboards.open(daemon.url + DASHBOARD, viewport={"width": 1280, "height": 900})
    snapshot = wait_timing(page, "snapshot", MANY)
    assert page.evaluate("document.querySelectorAll('li.task [role=progressbar]').length") == MANY
    report = [f"\n1000 bars, snapshot: render pass {snapshot['scriptMs']:.0f} ms, DOM written "
              f"{snapshot['renderedMs']:.0f} ms after the message, next frame {snapshot['paintedMs']:.0f} ms"]
    for n in (20, 50, 99):
        page.evaluate("window.progressistaTimings.delta = null")
        post(daemon, many_events(n))
        delta = wait_timing(page, "delta", MANY)
        page.wait_for_function(
            "n => [...document.querySelectorAll('li.task [role=progressbar]')]"
            ".every(bar => bar.getAttribute('aria-valuenow') === String(n))", arg=n, timeout=30_000)
        report.append(f"1000 bars, delta updating all of them (n={n}): render pass {delta['scriptMs']:.0f} ms, "
                      f"DOM written {delta['renderedMs']:.0f} ms after the message, "
                      f"next frame {delta['paintedMs']:.0f} ms")
    print("\n".join(report))
    last = rows(page)["load-0999"]
    assert last["amount"] == "99 / 100 MB" and last["percent"] == "99%"


def test_phone_width_has_no_horizontal_scroll(daemon, dashboards):
    long_word = "x" * 200
    post(daemon, [{"task_id": "id-" + long_word, "desc": "d" + long_word, "n": 5, "total": 9,
                   "unit": "frobnications"},
                  {"task_id": "grp:" + long_word, "n": 1},
                  {"task_id": "grp:b", "n": 2},
                  {"task_id": "short", "n": 123456789, "total": 987654321, "unit": "B"}])
    page = dashboards.open(daemon.url + DASHBOARD, viewport={"width": 360, "height": 740},
                           is_mobile=True, has_touch=True)
    page.wait_for_function("() => document.querySelectorAll('li.group').length === 1")
    page.click(".group-toggle")
    wait_rows(page, lambda r: len(r) == 4)
    assert_fits_width(page)


def test_light_and_dark_follow_the_system(daemon, dashboards):
    post(daemon, {"task_id": "x", "n": 1, "total": 2})
    colours = {}
    for scheme in ("light", "dark"):
        page = dashboards.open(daemon.url + DASHBOARD, color_scheme=scheme)
        wait_rows(page, lambda r: "x" in r)
        colours[scheme] = page.evaluate(
            "() => { const s = getComputedStyle(document.body); return [s.backgroundColor, s.color]; }")

    def brightness(css: str) -> float:
        red, green, blue = (float(part) for part in css[css.index("(") + 1:].rstrip(")").split(",")[:3])
        return 0.299 * red + 0.587 * green + 0.114 * blue

    light_bg, light_text = (brightness(c) for c in colours["light"])
    dark_bg, dark_text = (brightness(c) for c in colours["dark"])
    assert light_bg > 200 and light_text < 80, colours
    assert dark_bg < 50 and dark_text > 180, colours


def test_everything_is_reachable_by_keyboard(daemon, dashboards):
    post(daemon, [{"task_id": "job:a", "n": 1, "total": 2}, {"task_id": "job:b", "n": 1, "total": 2},
                  {"task_id": "solo", "n": 1, "total": 2, "status": "close"},
                  {"task_id": "solo2", "n": 1, "total": 2, "status": "close"}])
    page = dashboards.open(daemon.url + DASHBOARD)
    wait_rows(page, lambda r: "solo" in r)
    page.wait_for_selector("body.can-write", state="attached")  # actions show once /health says so
    reached = []
    for _ in range(30):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(
            "() => { const e = document.activeElement; return e.id || e.dataset.action || e.name || e.tagName; }"))
        if reached[-1] == "discard":
            break
    for wanted in ("search", "sort", "status", "clear-completed", "clear-stale", "toggle-group", "discard"):
        assert wanted in reached, f"{wanted} not reached by Tab: {reached}"
    assert page.evaluate("document.activeElement.closest('li').dataset.taskId") == "solo"
    page.keyboard.press("Enter")
    wait_rows(page, lambda r: "solo" not in r, message="discard by keyboard")
    assert page.evaluate("document.activeElement.closest('li').dataset.taskId") == "solo2", \
        "focus moves to the next bar"
    bars = page.evaluate("[...document.querySelectorAll('[role=progressbar]')].map(b => "
                         "[b.getAttribute('aria-label'), b.getAttribute('aria-valuemin'), "
                         "b.getAttribute('aria-valuemax'), b.getAttribute('aria-valuenow')])")
    assert ["job (2 tasks)", "0", "100", "50"] in bars


def test_number_formatting(daemon, dashboards):
    page = dashboards.open(daemon.url + DASHBOARD)
    results = page.evaluate("""async () => {
      const f = await import(new URL('format.js', location.href).href);
      return [f.formatProgress(0, 10, null), f.formatProgress(999, 1000, 'it'),
              f.formatProgress(1500, 2000000, 'rows'), f.formatProgress(3.5e9, 7e9, 'items'),
              f.formatProgress(512, 1024, 'B'), f.formatProgress(5 * 1024 ** 3, 8 * 1024 ** 3, 'bytes'),
              f.formatRate(2.5 * 1024 ** 2, 'B'), f.formatRate(0.5, null), f.formatRate(335.0214, 'steps'), f.formatRate(null, 'x'),
              f.formatDuration(59), f.formatDuration(61), f.formatDuration(7260), f.formatDuration(200000),
              f.formatPercent(0), f.formatPercent(0.004), f.formatPercent(0.999), f.formatPercent(1)];
    }""")
    assert results == [
        "0 / 10", "999 / 1k it", "1.5k / 2M rows", "3.5G / 7G items",
        "512 B / 1 KiB", "5 GiB / 8 GiB",
        "2.5 MiB/s", "0.5 it/s", "335 steps/s", "",
        "59s", "1m 01s", "2h 01m", "2d 7h",
        "0%", "0.4%", "99.9%", "100%",
    ]


def test_watch_flags_requests_that_leave_loopback(chromium):
    watch = Dashboards(chromium)
    watch._record("http://127.0.0.1:1/static/index.html")
    watch._record("https://fonts.example.org/font.woff2")
    assert watch.foreign == ["https://fonts.example.org/font.woff2"]


def feed_live_updates(daemon, stop: threading.Event) -> None:
    step = 0
    while not stop.is_set() and step < 200:
        step += 1
        loss = 2.4 / (1 + 0.05 * step)
        post(daemon, [{"task_id": f"train:rank-{r}", "n": 1200 + 37 * r + 9 * step,
                       "metrics": {"loss": loss + 0.02 * r, "acc": 0.6 + 0.3 * (1 - loss / 2.4)},
                       "postfix": f"loss={loss + 0.02 * r:.3f}"} for r in range(4)] + [
            {"task_id": "backup-db", "n": 2_600_000_000 + 95_000_000 * step,
             **({"log": f"pg_dump: dumping contents of table orders_{step:03d}"} if step % 10 == 1 else {})},
            {"task_id": "crawl", "n": 1400 + 23 * step},
            {"task_id": "etl-orders", "n": 91_000 + 1300 * step}])
        stop.wait(0.25)


def test_screenshot_of_a_busy_dashboard(daemon_factory, dashboards):
    """Writes tests/artifacts/dashboard.png; with UPDATE_SCREENSHOT=1 also docs/dashboard.png (README)."""
    daemon = daemon_factory(["--stale-seconds", "2", "--cleanup-interval", "0.25"])
    post(daemon, [{"task_id": "lost-worker", "desc": "Render frames on host b3", "n": 120, "total": 600,
                   "unit": "frames"}])
    post(daemon, [{"task_id": f"train:rank-{r}", "desc": f"Fine-tune resnet50, rank {r}", "n": 1200,
                   "total": 5000, "unit": "steps", "status": "start"} for r in range(4)] + [
        {"task_id": "backup-db", "desc": "Nightly PostgreSQL backup", "n": 0, "total": 8_400_000_000,
         "unit": "B"},
        {"task_id": "crawl", "desc": "Crawl the docs site", "n": 0, "unit": "pages"},
        {"task_id": "etl-orders", "desc": "ETL orders 2026-11", "n": 0, "total": 250_000, "unit": "rows"}])
    for index, name in enumerate(("thumbnails", "reindex", "export-csv")):
        post(daemon, {"task_id": name, "desc": name.replace("-", " ").capitalize(), "n": 100 * (index + 1),
                      "total": 100 * (index + 1), "unit": "files", "status": "close"})
    post(daemon, {"task_id": "import-customers", "desc": "Import customers.csv", "n": 812, "total": 1200,
                  "unit": "rows", "status": "error",
                  "log": ["reading customers.csv", "row 812: bad date '2026-13-01'",
                          "ValueError: month must be in 1..12"]})
    stop = threading.Event()
    feeder = threading.Thread(target=feed_live_updates, args=(daemon, stop), daemon=True)
    feeder.start()
    try:
        page = dashboards.open(daemon.url + DASHBOARD, viewport={"width": 1000, "height": 1400})
        wait_rows(page, lambda r: r.get("lost-worker", {}).get("status") == "stale"
                  and r.get("backup-db", {}).get("rate"), message="a stale task and live rates")
        page.click("li.group .group-toggle")
        page.wait_for_function("() => document.querySelectorAll('li.group .members li.task').length === 4")
        time.sleep(1.2)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"))
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            page.set_viewport_size({"width": 1000, "height": 1400})
            time.sleep(0.3)
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
    finally:
        stop.set()
        feeder.join(5)
    assert Path(ARTIFACTS / "dashboard.png").stat().st_size > 10_000
