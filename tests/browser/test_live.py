"""Actions reaching every open dashboard, surviving a daemon restart, and tokens."""

from __future__ import annotations

import pytest

from tests.browser.conftest import FAKE_SOCKETS, rows, wait_connection, wait_rows
from tests.support import DaemonProcess, post

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DASHBOARD = "/static/index.html"
WRITE_TOKEN = "write-secret-9f2c"
READ_TOKEN = "read-secret-41ab"
TOKENS_ENV = {"PROGRESSISTA_API_TOKENS": WRITE_TOKEN, "PROGRESSISTA_READ_TOKENS": READ_TOKEN}
# Chromium's own console lines while the daemon is down: the refused socket and fetch.
REFUSED = r"WebSocket connection to .* failed|Failed to load resource|ERR_CONNECTION_REFUSED"


def test_discard_and_clear_buttons_reach_every_dashboard(daemon_factory, dashboards):
    daemon = daemon_factory(["--stale-seconds", "1", "--cleanup-interval", "0.2"])
    post(daemon, [{"task_id": "a/b c%d", "n": 1, "total": 9, "status": "close"},
                  {"task_id": "done", "n": 1, "total": 1, "status": "close"},
                  {"task_id": "failed", "n": 1, "total": 3, "status": "error"},
                  {"task_id": "forgotten", "n": 1, "total": 5}])
    first = dashboards.open(daemon.url + DASHBOARD)
    second = dashboards.open(daemon.url + DASHBOARD)
    for page in (first, second):
        wait_rows(page, lambda r: r.get("forgotten", {}).get("status") == "stale", message="stale")
    first.click("li.task[data-task-id='a/b c%d'] .discard")
    for page in (first, second):
        wait_rows(page, lambda r: "a/b c%d" not in r and len(r) == 3, message="discarded everywhere")
    second.click("#clear-completed")
    for page in (first, second):
        wait_rows(page, lambda r: set(r) == {"failed", "forgotten"}, message="completed cleared")
    first.click("#clear-stale")
    for page in (first, second):
        wait_rows(page, lambda r: set(r) == {"failed"}, message="stale cleared")
    second.click("#clear-errors")
    for page in (first, second):
        wait_rows(page, lambda r: r == {}, message="errors cleared")
        page.wait_for_selector("#empty:not([hidden])")
    status, _, body = daemon.request("GET", "/tasks")
    assert status == 200 and body == {"tasks": {}}


def test_daemon_restart_is_survived_with_a_resync(daemon_factory, dashboards):
    dashboards.allow_errors(REFUSED)
    first = daemon_factory()
    post(first, {"task_id": "before", "n": 1, "total": 2})
    page = dashboards.open(first.url + DASHBOARD)
    wait_rows(page, lambda r: "before" in r)
    assert first.stop() == 0
    wait_connection(page, "reconnecting")
    assert page.locator("#connection-text").inner_text().startswith("Reconnecting")
    # Same port, empty state: the page must drop what it showed and take the new snapshot.
    second = DaemonProcess(port=first.port)
    try:
        second.start()
        post(second, {"task_id": "after", "n": 3, "total": 4})
        wait_connection(page, "connected", timeout=30)
        wait_rows(page, lambda r: set(r) == {"after"}, message="the new daemon's tasks only")
        post(second, {"task_id": "after", "n": 4})
        wait_rows(page, lambda r: r["after"]["percent"] == "100%", message="live again")
    finally:
        second.__exit__(None, None, None)


def test_tasks_recovered_after_a_restart_need_attention(daemon_factory, dashboards, tmp_path):
    dashboards.allow_errors(REFUSED)
    state = str(tmp_path / "state.json")
    first = daemon_factory(["--storage-path", state])
    post(first, [{"task_id": "long-job", "n": 2, "total": 8}, {"task_id": "finished", "status": "close"}])
    page = dashboards.open(first.url + DASHBOARD)
    wait_rows(page, lambda r: r.get("long-job", {}).get("bucket") == "active")
    assert first.stop() == 0
    second = DaemonProcess(["--storage-path", state], port=first.port)
    try:
        second.start()
        shown = wait_rows(page, lambda r: r.get("long-job", {}).get("status") == "recovered", timeout=30,
                          message="the recovered task")
        assert shown["long-job"]["bucket"] == "attention"
        assert shown["finished"]["bucket"] == "completed"
        post(second, {"task_id": "long-job", "n": 3})
        wait_rows(page, lambda r: r["long-job"]["bucket"] == "active", message="back to active")
    finally:
        second.__exit__(None, None, None)


def test_token_in_the_address_becomes_a_cookie_and_leaves(daemon_factory, dashboards):
    daemon = daemon_factory(env=TOKENS_ENV)
    post(daemon, {"task_id": "secret-job", "n": 1, "total": 2},
         headers={"Authorization": f"Bearer {WRITE_TOKEN}"})
    page = dashboards.open(f"{daemon.url}/?token={WRITE_TOKEN}#q=secret")
    wait_rows(page, lambda r: "secret-job" in r)
    assert WRITE_TOKEN not in page.url
    assert page.url.endswith(DASHBOARD + "#q=secret"), page.url
    assert WRITE_TOKEN not in page.evaluate("document.cookie"), "the cookie is HttpOnly"
    # Write access is learnt from /health, apart from the rows: wait for it, then check.
    page.wait_for_function("() => document.body.classList.contains('can-write')")
    assert page.locator("#clear-completed").is_visible()
    page.reload()
    wait_connection(page, "connected")
    page.click("li.task[data-task-id=secret-job] .discard")
    wait_rows(page, lambda r: r == {}, message="discard with the cookie")
    later = [url for url in dashboards.requests[1:] if WRITE_TOKEN in url]
    assert later == [], "only the first request may carry the token"


def test_read_only_token_hides_the_actions(daemon_factory, dashboards):
    daemon = daemon_factory(env=TOKENS_ENV)
    post(daemon, {"task_id": "watched", "n": 1, "total": 2, "status": "close"},
         headers={"Authorization": f"Bearer {WRITE_TOKEN}"})
    page = dashboards.open(f"{daemon.url}{DASHBOARD}?token={READ_TOKEN}")
    wait_rows(page, lambda r: "watched" in r)
    page.wait_for_function("() => !document.body.classList.contains('can-write')")
    for selector in ("#clear-completed", "#clear-stale", "#clear-errors", "li.task .discard"):
        assert page.locator(selector).is_hidden(), selector
    assert READ_TOKEN not in page.url


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_without_a_valid_token_the_page_says_so_and_shows_nothing(daemon_factory, dashboards, token):
    daemon = daemon_factory(env=TOKENS_ENV)
    post(daemon, {"task_id": "private", "n": 1}, headers={"Authorization": f"Bearer {WRITE_TOKEN}"})
    query = f"?token={token}" if token else ""
    page = dashboards.open(f"{daemon.url}{DASHBOARD}{query}", wait_connected=False)
    wait_connection(page, "unauthorized")
    assert page.locator("#connection-text").inner_text() == "Unauthorized"
    assert page.locator("#unauthorized").is_visible()
    assert rows(page) == {}
    assert "private" not in page.content()
    assert page.locator("#clear-completed").is_hidden()


CONNECTION_SCRIPT = "async () => {" + FAKE_SOCKETS + """
  const seen = [];
  const connection = new LiveConnection('ws://127.0.0.1:1/ws?protocol=delta', {
    onSnapshot: (tasks) => seen.push('snapshot:' + Object.keys(tasks).join()),
    onDelta: (tasks, removed) => seen.push('delta:' + Object.keys(tasks).join() + '-' + removed.join()),
    onState: (state) => seen.push(state),
  });
  try {
    connection.start();
    send(sockets[0], { type: 'snapshot', seq: 5, tasks: { a: {} } });
    send(sockets[0], { type: 'delta', seq: 6, tasks: { b: {} }, removed: ['a'] });
    send(sockets[0], { type: 'delta', seq: 8, tasks: { c: {} }, removed: [] });
    send(sockets[1], { type: 'snapshot', seq: 8, tasks: { b: {}, c: {} } });
    sockets[1].onclose({ code: 1006 });
    const retrying = sockets.length;
    connection.stop();
    const unauthorized = new LiveConnection('ws://127.0.0.1:1/ws', {
      onSnapshot: () => {}, onDelta: () => {}, onState: (state) => seen.push('other:' + state) });
    unauthorized.start();
    sockets[2].onclose({ code: 4401 });
    const delays = [0, 1, 2, 3, 10, 30].map((attempt) =>
      [backoffDelay(attempt, () => 0), backoffDelay(attempt, () => 1)]);
    return { seen, sockets: sockets.length, retrying, gapClosed: sockets[0].closedWith, delays };
  } finally {
    window.WebSocket = real;
  }
}"""


def test_a_seq_gap_resyncs_and_4401_stops_retrying(daemon, dashboards):
    page = dashboards.open(daemon.url + DASHBOARD)
    result = page.evaluate(CONNECTION_SCRIPT)
    assert result["seen"] == [
        "connecting", "snapshot:a", "connected", "delta:b-a",
        "connecting", "snapshot:b,c", "connected", "reconnecting",
        "other:connecting", "other:unauthorized",
    ]
    assert result["gapClosed"] == 4000, "the socket that skipped a seq is dropped"
    assert result["retrying"] == 2 and result["sockets"] == 3, "4401 opens no new socket"
    assert result["delays"] == [[250, 500], [500, 1000], [1000, 2000], [2000, 4000],
                                [7500, 15000], [7500, 15000]]


def test_dashboard_behind_a_base_path(daemon_factory, dashboards):
    daemon = daemon_factory(["--base-path", "/tools/progress"], env=TOKENS_ENV)
    headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
    post_at = lambda events: daemon.request("POST", "/tools/progress/progress", events, headers=headers)
    assert post_at({"task_id": "prefixed", "n": 1, "total": 4, "status": "close"})[0] == 200
    page = dashboards.open(f"{daemon.url}/tools/progress/?token={WRITE_TOKEN}")
    wait_rows(page, lambda r: r.get("prefixed", {}).get("percent") == "25%")
    assert page.url == f"{daemon.url}/tools/progress/static/index.html"
    page.click("#clear-completed")
    wait_rows(page, lambda r: r == {}, message="cleared through the prefixed API")
    assert all("/tools/progress/" in url for url in dashboards.requests), dashboards.requests
