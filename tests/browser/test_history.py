"""The History view and the expectations on bars: jobs and their counts, a job's runs as a chart
and a table, a run's details, the keyboard, "usually ..." and the overdue badge."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.browser.conftest import wait_rows
from tests.support import post, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DASHBOARD = "/static/index.html"
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "history.png"
FAST = ["--cleanup-interval", "0.1", "--broadcast-interval", "0.02"]


def run_once(daemon, task_id, job, seconds, status="close", **last):
    post(daemon, {"task_id": task_id, "status": "start", "total": 10, "meta": {"job": job}})
    time.sleep(seconds)
    post(daemon, {"task_id": task_id, "status": status, "n": 10 if status == "close" else 4, **last})


def history_runs(daemon, job):
    status, _, body = daemon.request("GET", f"/history?job={job}")
    assert status == 200, body
    return body["runs"]


def post_runs(daemon):
    """Three closed runs of `nightly`, a failed one with log lines, and a run of another job."""
    for night, seconds in enumerate((0.2, 0.5, 0.3)):
        run_once(daemon, f"nightly:{night}", "nightly", seconds,
                 metrics={"rows": 1000 + night}, postfix=f"rows={1000 + night}")
    post(daemon, {"task_id": "nightly:3", "status": "start", "total": 10, "meta": {"job": "nightly"}})
    post(daemon, {"task_id": "nightly:3", "n": 4, "log": ["copying table users", "rsync: connection reset"]})
    post(daemon, {"task_id": "nightly:3", "status": "error"})
    run_once(daemon, "weekly:0", "weekly", 0.1)
    wait_for(lambda: len(history_runs(daemon, "nightly")) == 4, message="four runs of nightly")


def job_rows(page):
    return page.evaluate("""() => [...document.querySelectorAll('#jobs tbody tr')].map(tr =>
      [...tr.children].map(td => td.textContent))""")


def test_history_lists_jobs_charts_runs_and_shows_a_failure(daemon, dashboards):
    post_runs(daemon)
    page = dashboards.open(daemon.url + DASHBOARD + "#history")
    page.wait_for_function("() => document.querySelectorAll('#jobs tbody tr').length === 2")
    assert page.locator("#tab-history").get_attribute("aria-current") == "page"
    assert page.locator("#board").is_hidden() and page.locator("#sort").is_hidden()
    jobs = {row[0]: row for row in job_rows(page)}
    assert jobs["nightly"][1:4] == ["4", "3", "1"], "runs, ok, failed"
    assert jobs["nightly"][4].startswith("error, ")
    assert jobs["nightly"][5] and jobs["nightly"][6], "median and p90"
    assert jobs["weekly"][1:4] == ["1", "1", "0"]

    page.fill("#search", "NIGHT")
    page.wait_for_function("() => document.querySelectorAll('#jobs tbody tr').length === 1")
    assert job_rows(page)[0][0] == "nightly"
    assert "q=NIGHT" in page.evaluate("location.hash")

    page.click("#jobs button[data-job=nightly]")
    page.wait_for_function("() => document.querySelectorAll('#run-chart .run-mark').length === 4")
    assert "job=nightly" in page.evaluate("location.hash")
    chart = page.locator("#run-chart")
    assert chart.get_attribute("role") == "img"
    assert "nightly" in chart.get_attribute("aria-label")
    assert page.locator("#run-chart line.median").count() == 1
    assert page.locator("#run-chart .median-label").text_content().startswith("median ")
    assert page.locator("#run-chart .run-close").count() == 3
    assert page.locator("#run-chart .run-error").count() == 1
    assert page.locator("#chart-legend li").count() == 4
    assert page.locator("#runs tbody tr").count() == 4

    failed = [run for run in history_runs(daemon, "nightly") if run["status"] == "error"][0]
    page.click(f"#run-chart [data-run-id='{failed['id']}']")
    details = page.locator("#run-details")
    details.wait_for(state="visible")
    text = details.inner_text()
    assert "error" in text and "Started" in text and "Ended" in text and "Duration" in text
    assert page.locator("#run-log").inner_text() == "copying table users\nrsync: connection reset"

    closed = [run for run in history_runs(daemon, "nightly") if run["status"] == "close"][0]
    page.click(f"#runs button[data-run-id='{closed['id']}']")
    page.wait_for_function("() => document.getElementById('run-fields').textContent.includes('rows=')")
    fields = page.locator("#run-fields").inner_text()
    assert "rows 1" in fields and "10 / 10" in fields
    assert page.locator("#run-log").is_hidden()

    page.set_viewport_size({"width": 360, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "no sideways scroll on a phone"
    page.fill("#search", "")
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        page.click(f"#run-chart [data-run-id='{failed['id']}']")
        page.set_viewport_size({"width": 1100, "height": 1100})
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    # A linked address opens the same job.
    linked = dashboards.open(page.url)
    linked.wait_for_function("() => document.querySelectorAll('#run-chart .run-mark').length === 4")


def focus_by_tab(page, selector, presses=40):
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("sel => document.activeElement.matches(sel)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_history_is_reachable_and_operable_by_keyboard(daemon, dashboards):
    post_runs(daemon)
    page = dashboards.open(daemon.url + DASHBOARD)
    focus_by_tab(page, "#tab-history")
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.hash.startsWith('#history')")
    page.wait_for_function("() => !document.getElementById('history').hidden")
    focus_by_tab(page, "#jobs button[data-job=nightly]")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#runs tbody button').length === 4")
    focus_by_tab(page, "#runs tbody button")
    page.keyboard.press("Enter")
    page.locator("#run-details").wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "run-details-heading"
    assert page.locator("#runs button[aria-pressed=true]").count() == 1
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Space")
    assert page.locator("#run-details").is_visible()
    focus_by_tab(page, "#tab-board")
    page.keyboard.press("Enter")
    page.wait_for_function("() => !document.getElementById('board').hidden")
    assert page.locator("#history").is_hidden()


EXPECTED_TEXT = """id => {
  const row = [...document.querySelectorAll('li.task')].find(li => li.dataset.taskId === id);
  return row ? row.querySelector('.stat-expected').textContent : '';
}"""


def expected_text(page, task_id):
    """The "usually ..." figure of a task's bar; empty when it shows none or is not shown."""
    return page.evaluate(EXPECTED_TEXT, task_id)


def test_bars_show_the_usual_duration_an_estimate_and_overdue(daemon_factory, dashboards):
    daemon = daemon_factory(FAST + ["--overdue-factor", "2"])
    for night, seconds in enumerate((0.4, 0.5, 0.45)):
        run_once(daemon, f"etl:{night}", "etl", seconds)
    wait_for(lambda: len(history_runs(daemon, "etl")) == 3, message="three close runs")
    page = dashboards.open(daemon.url + DASHBOARD)
    post(daemon, [{"task_id": "etl:tonight", "status": "start", "meta": {"job": "etl"}},
                  {"task_id": "other", "status": "start", "n": 1}])
    shown = wait_rows(page, lambda r: "etl:tonight" in r and expected_text(
        page, "etl:tonight").startswith("usually "), message="the usual duration")
    eta = shown["etl:tonight"]["eta"]
    assert eta.startswith("ETA ~") and eta.endswith("(estimate)"), "no total: an estimate from the usual duration"
    assert expected_text(page, "other") == ""
    badge = page.locator("li.task[data-task-id='etl:tonight'] .badge.overdue")
    assert badge.is_hidden()
    badge.wait_for(state="visible", timeout=10_000)
    assert badge.inner_text() == "overdue"
    assert page.locator("li.task[data-task-id=other] .badge.overdue").is_hidden()
    post(daemon, {"task_id": "etl:tonight", "status": "close"})
    badge.wait_for(state="hidden")
    assert expected_text(page, "etl:tonight") == ""
