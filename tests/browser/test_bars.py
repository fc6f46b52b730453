"""Bars: numbers, units, live updates, buckets, groups, filters and the XSS guard."""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import rows, visible_ids, wait_connection, wait_rows
from tests.support import post

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DASHBOARD = "/static/index.html"


def test_bars_show_numbers_units_and_indeterminate_style(daemon, dashboards):
    post(daemon, [
        {"task_id": "upload", "desc": "Upload backup", "n": 1536, "total": 1048576, "unit": "B"},
        {"task_id": "files", "n": 1234567, "total": 5000000, "unit": "files"},
        {"task_id": "crawl", "desc": "Crawl", "n": 42, "unit": "pages"},
    ])
    page = dashboards.open(daemon.url + DASHBOARD)
    shown = wait_rows(page, lambda r: len(r) == 3, message="three bars")
    upload, files, crawl = shown["upload"], shown["files"], shown["crawl"]
    assert upload["desc"] == "Upload backup"
    assert upload["amount"] == "1.5 KiB / 1 MiB"
    assert upload["percent"] == "0.1%"
    assert upload["valuenow"] == "0.1"
    assert files["desc"] == "files"
    assert files["amount"] == "1.23M / 5M files"
    assert files["percent"] == "24%"
    assert files["valuenow"] == "24.7"
    assert crawl["amount"] == "42 pages"
    assert crawl["indeterminate"] and crawl["valuenow"] is None and crawl["percent"] == ""
    assert page.locator("li.task[data-task-id=upload] .task-id").inner_text() == "upload"
    assert {r["bucket"] for r in shown.values()} == {"active"}


def test_rate_eta_elapsed_and_age_tick_without_messages(daemon, dashboards):
    post(daemon, {"task_id": "job", "n": 0, "total": 1000, "unit": "it", "status": "start"})
    time.sleep(0.3)
    post(daemon, {"task_id": "job", "n": 100})
    page = dashboards.open(daemon.url + DASHBOARD)
    first = wait_rows(page, lambda r: r.get("job", {}).get("rate"), message="a rate")["job"]
    assert first["rate"].endswith(" it/s")
    assert first["eta"].startswith("ETA ")
    assert first["elapsed"].startswith("elapsed ")
    assert first["age"].startswith("updated ")
    # No event is sent from here on: only the page's own clock can move these.
    later = wait_rows(page, lambda r: r["job"]["age"] not in (first["age"], "updated just now"),
                      timeout=5, message="the age to tick")["job"]
    assert later["age"].endswith("s ago")


def test_post_shows_up_within_a_second(daemon, dashboards):
    page = dashboards.open(daemon.url + DASHBOARD)
    started = time.monotonic()
    post(daemon, {"task_id": "fresh", "n": 5, "total": 10})
    wait_rows(page, lambda r: r.get("fresh", {}).get("percent") == "50%", timeout=2,
              message="the POSTed task")
    latency = time.monotonic() - started
    print(f"\nPOST to bar on screen: {latency * 1000:.0f} ms")
    post(daemon, {"task_id": "fresh", "n": 9})
    wait_rows(page, lambda r: r["fresh"]["percent"] == "90%", timeout=2, message="the update")


def test_buckets_and_folded_completed(daemon_factory, dashboards):
    daemon = daemon_factory(["--stale-seconds", "1", "--cleanup-interval", "0.2"])
    post(daemon, [{"task_id": "idle", "n": 1, "total": 10},
                  {"task_id": "broken", "n": 3, "total": 10, "status": "error"}])
    for index in range(12):
        post(daemon, {"task_id": f"done-{index:02d}", "n": 1, "total": 1, "status": "close"})
        time.sleep(0.01)
    page = dashboards.open(daemon.url + DASHBOARD)
    shown = wait_rows(page, lambda r: r.get("idle", {}).get("bucket") == "attention",
                      message="the idle task to go stale")
    assert shown["idle"]["status"] == "stale"
    assert shown["broken"]["bucket"] == "attention"
    completed = visible_ids(page, "completed")
    assert completed == [f"done-{i:02d}" for i in range(11, 1, -1)], "newest first, ten shown"
    more = page.locator("#bucket-completed .more")
    assert more.inner_text() == "Show 2 older completed"
    more.click()
    page.wait_for_function("() => document.querySelectorAll('#bucket-completed li.task').length === 12")
    assert visible_ids(page, "completed")[-2:] == ["done-01", "done-00"]
    # Watched in the page on every frame: the revived task goes stale again a second later.
    page.evaluate("""() => { window.revived = new Promise(resolve => {
      const until = performance.now() + 10000;
      const poll = () => {
        if (document.querySelector("#bucket-active li.task[data-task-id='idle']")) resolve(true);
        else if (performance.now() > until) resolve(false);
        else requestAnimationFrame(poll);
      };
      poll();
    }); }""")
    post(daemon, {"task_id": "idle", "n": 2})
    assert page.evaluate("() => window.revived") is True, "a stale task revives into the active section"


def test_groups_fold_with_an_aggregate_bar(daemon, dashboards):
    post(daemon, [{"task_id": f"train:rank-{i}", "n": 10 * i, "total": 100, "unit": "steps"}
                  for i in range(4)] +
         [{"task_id": f"etl-{i}", "n": 1, "total": 2, "meta": {"group": "nightly etl"}} for i in range(2)] +
         [{"task_id": "solo:one", "n": 1, "total": 4}])
    page = dashboards.open(daemon.url + DASHBOARD)
    page.wait_for_function("() => document.querySelectorAll('li.group').length === 2")
    train = page.locator("li.group[data-group-key='active:train']")
    assert train.locator(".group-count").inner_text() == "4 tasks"
    assert train.locator(".stat-amount").inner_text() == "60 / 400 steps"
    assert train.locator("[role=progressbar]").first.get_attribute("aria-valuenow") == "15"
    assert train.locator(".members").is_hidden()
    assert visible_ids(page) == ["solo:one"], "a lone prefix is not a group; members start folded"
    toggle = train.locator(".group-toggle")
    toggle.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("li.group[data-group-key='active:train'] .group-toggle[aria-expanded=true]")
    page.wait_for_function("() => document.querySelectorAll('li.group .members li.task').length === 4")
    assert [i for i in visible_ids(page) if i.startswith("train:")] == [f"train:rank-{i}" for i in range(4)]
    post(daemon, {"task_id": "train:rank-0", "n": 100})
    page.wait_for_function(
        "() => document.querySelector(\"li.group[data-group-key='active:train'] > .stats .stat-amount\")"
        ".textContent === '160 / 400 steps'")
    post(daemon, {"task_id": "train:rank-3", "status": "error"})
    shown = wait_rows(page, lambda r: r.get("train:rank-3", {}).get("bucket") == "attention",
                      message="the errored member in attention")
    assert shown["train:rank-3"]["status"] == "error"
    assert train.locator(".group-count").inner_text() == "3 tasks"


def test_search_status_filter_and_sort_live_in_the_hash(daemon, dashboards):
    post(daemon, [{"task_id": "alpha", "desc": "Resize photos", "n": 9, "total": 10},
                  {"task_id": "beta", "desc": "Encode video", "n": 1, "total": 10},
                  {"task_id": "gamma", "desc": "Encode audio", "n": 5, "total": 10, "status": "close"}])
    page = dashboards.open(daemon.url + DASHBOARD)
    wait_rows(page, lambda r: len(r) == 3)
    page.fill("#search", "encode")
    page.wait_for_function("() => location.hash === '#q=encode'")
    page.wait_for_function("() => document.querySelectorAll('li.task').length === 2")
    page.uncheck("input[name=status][value=close]")
    page.wait_for_function("() => location.hash.includes('status=start%2Cupdate%2Crecovered%2Cstale%2Cerror')")
    assert set(rows(page)) == {"beta"}
    page.fill("#search", "")
    page.select_option("#sort", "progress")
    page.wait_for_function("() => location.hash.includes('sort=progress')")
    page.wait_for_function("() => [...document.querySelectorAll('#bucket-active li.task')].map(li => "
                           "li.dataset.taskId).join() === 'alpha,beta'")
    bookmarked = page.url
    assert "#" in bookmarked
    second = dashboards.open(bookmarked)
    second.wait_for_function("() => [...document.querySelectorAll('#bucket-active li.task')].map(li => "
                             "li.dataset.taskId).join() === 'alpha,beta'")
    assert second.locator("#sort").input_value() == "progress"
    assert not second.locator("input[name=status][value=close]").is_checked()
    assert "gamma" not in rows(second)
    second.select_option("#sort", "updated")
    post(daemon, {"task_id": "beta", "n": 2})
    second.wait_for_function("() => [...document.querySelectorAll('#bucket-active li.task')].map(li => "
                             "li.dataset.taskId).join() === 'beta,alpha'")
    post(daemon, {"task_id": "alpha", "n": 10})
    second.wait_for_function("() => [...document.querySelectorAll('#bucket-active li.task')].map(li => "
                             "li.dataset.taskId).join() === 'alpha,beta'")


def test_task_text_is_never_html(daemon, dashboards):
    hostile = '<img src=x onerror=alert(1)>'
    post(daemon, {"task_id": "<script>alert(2)</script>", "desc": hostile, "unit": "<b>u</b>", "n": 1})
    page = dashboards.open(daemon.url + DASHBOARD)
    shown = wait_rows(page, lambda r: len(r) == 1)
    row = shown["<script>alert(2)</script>"]
    assert row["desc"] == hostile
    assert row["amount"] == "1 <b>u</b>"
    assert page.evaluate("document.querySelectorAll('#board img, #board script, #board b').length") == 0
    wait_connection(page, "connected")


def test_bars_in_blocks_keep_their_order_and_neighbours(daemon, dashboards):
    """Bars go CHUNK_SIZE to a block; order, moves between blocks and the neighbour a discard
    focuses all cross block boundaries."""
    page = dashboards.open(daemon.url + DASHBOARD)
    result = page.evaluate("""async () => {
      const { CHUNK_SIZE, ChunkedList, neighbourOf } = await import(new URL('chunks.js', location.href).href);
      const watched = new Set();
      const watch = { observe: (n) => watched.add(n), unobserve: (n) => watched.delete(n) };
      const container = document.createElement('div');
      const list = new ChunkedList(container, watch);
      const items = Array.from({ length: 2 * CHUNK_SIZE + 3 }, (_, i) => {
        const li = document.createElement('li');
        li.textContent = String(i);
        return li;
      });
      const order = () => [...container.querySelectorAll('li')].map((li) => Number(li.textContent));
      list.place(items);
      const placed = order();
      const blocks = container.children.length;
      const reversed = items.slice().reverse();
      list.place(reversed);
      const moved = order();
      const last = reversed[CHUNK_SIZE - 1];
      const across = [neighbourOf(last).textContent, neighbourOf(reversed[reversed.length - 1]).textContent];
      list.place(items.slice(0, 2));
      return { size: CHUNK_SIZE, placed, blocks, moved, across, after: order(),
               blocksAfter: container.children.length, watched: watched.size };
    }""")
    count = 2 * result["size"] + 3
    assert result["placed"] == list(range(count)) and result["blocks"] == 3
    assert result["moved"] == list(reversed(range(count)))
    assert result["across"] == [str(count - 1 - result["size"]), "1"]
    assert result["after"] == [0, 1] and result["blocksAfter"] == 1 and result["watched"] == 1
