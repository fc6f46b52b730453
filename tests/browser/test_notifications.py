"""Browser notifications: opted in, for the bars the current filter shows, only while the tab is
hidden; refused permission and plain http to a LAN address say why they are unavailable."""

from __future__ import annotations

import pytest

from tests.browser.conftest import wait_rows
from tests.support import post, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DASHBOARD = "/static/index.html"
# The real Notification API with the permission granted; each notification is also recorded,
# since a headless browser shows none.
RECORD_NOTIFICATIONS = """
window.notified = [];
const Real = window.Notification;
window.Notification = class extends Real {
  constructor(title, options) {
    super(title, options);
    window.notified.push({ title, body: (options && options.body) || "", tag: options && options.tag });
  }
};
"""
# Headless Chromium keeps every page visible; the test says when the tab is hidden.
HIDE = """
hidden => {
  Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(document, "visibilityState", { configurable: true,
                                                        get: () => hidden ? "hidden" : "visible" });
  document.dispatchEvent(new Event("visibilitychange"));
}
"""


def notified(page):
    return page.evaluate("window.notified")


def opted_in_page(daemon, dashboards, hash_part=""):
    context = dashboards.new_context(permissions=["notifications"])
    context.add_init_script(RECORD_NOTIFICATIONS)
    page = dashboards.open(daemon.url + DASHBOARD + hash_part, context=context)
    assert page.is_enabled("#notify-toggle") and not page.is_checked("#notify-toggle")
    assert page.is_hidden("#notify-note")
    page.check("#notify-toggle")
    page.wait_for_function("localStorage.getItem('progressista.notifications') === 'on'")
    return context, page


def test_notifications_for_the_filtered_bars_only_while_the_tab_is_hidden(daemon_factory,
                                                                            dashboards):
    daemon = daemon_factory(["--stale-seconds", "1", "--cleanup-interval", "0.2"])
    post(daemon, [{"task_id": f"train-{i}", "status": "start", "desc": f"rank {i}"}
                  for i in range(1, 4)] + [{"task_id": "other-1", "status": "start"}])
    context, page = opted_in_page(daemon, dashboards, "#q=train")
    wait_rows(page, lambda r: set(r) == {"train-1", "train-2", "train-3"})

    post(daemon, {"task_id": "train-1", "status": "close"})
    wait_rows(page, lambda r: r["train-1"]["status"] == "close")
    assert notified(page) == [], "a visible tab is not notified"

    page.evaluate(HIDE, True)
    post(daemon, [{"task_id": "train-2", "status": "error"}, {"task_id": "other-1", "status": "close"}])
    wait_for(lambda: notified(page), timeout=10, message="a notification")
    assert notified(page) == [{"title": "rank 2 (train-2) failed", "body": "",
                               "tag": "progressista:train-2"}]
    wait_for(lambda: len(notified(page)) == 2, timeout=10, message="the stall")
    assert notified(page)[1]["title"] == "rank 3 (train-3) stalled"

    post(daemon, [{"task_id": f"train-b{i}", "status": "start"} for i in range(5)])
    wait_rows(page, lambda r: "train-b4" in r)
    post(daemon, [{"task_id": f"train-b{i}", "status": "close"} for i in range(5)])
    wait_for(lambda: len(notified(page)) == 3, timeout=10, message="one summary of five")
    assert notified(page)[2] == {"title": "5 tasks: 5 finished",
                                 "body": ", ".join(f"train-b{i}" for i in range(5)),
                                 "tag": "progressista:summary"}

    page.evaluate(HIDE, False)
    post(daemon, {"task_id": "train-x", "status": "start"})
    post(daemon, {"task_id": "train-x", "status": "error"})
    wait_rows(page, lambda r: r.get("train-x", {}).get("status") == "error")
    page.evaluate(HIDE, True)
    page.uncheck("#notify-toggle")
    post(daemon, {"task_id": "train-x", "status": "start"})
    post(daemon, {"task_id": "train-x", "status": "error"})
    wait_rows(page, lambda r: r["train-x"]["status"] == "error")
    page.wait_for_timeout(300)
    assert len(notified(page)) == 3, "a visible tab, then an opted-out one, is not notified"

    page.check("#notify-toggle")
    page.reload()
    page.wait_for_function("document.getElementById('connection').dataset.state === 'connected'")
    assert page.is_checked("#notify-toggle"), "the choice is remembered"


def test_a_refused_permission_is_said_and_nothing_is_enabled(daemon, dashboards):
    context = dashboards.new_context()
    page = dashboards.open(daemon.url + DASHBOARD, context=context)
    page.check("#notify-toggle")
    page.wait_for_selector("#notify-note:not([hidden])")
    assert not page.is_checked("#notify-toggle")
    assert "blocks notifications" in page.inner_text("#notify-note")


def test_plain_http_to_a_lan_address_says_why_notifications_are_unavailable(daemon, dashboards):
    lan = f"http://progress.lan:{daemon.port}"
    context = dashboards.new_context(permissions=["notifications"])
    # The LAN name is served by the daemon on 127.0.0.1 (nothing leaves this host), so that
    # the page is what a browser elsewhere on the LAN gets: not a secure context.
    context.route(f"{lan}/**", lambda route: route.fulfill(
        response=route.fetch(url=route.request.url.replace(lan, daemon.url))))
    context.route_web_socket(f"ws://progress.lan:{daemon.port}/**", lambda ws: None)
    page = context.new_page()
    page.goto(lan + DASHBOARD)
    page.wait_for_selector("#notify-note:not([hidden])")
    assert page.evaluate("window.isSecureContext") is False
    assert page.is_disabled("#notify-toggle") and not page.is_checked("#notify-toggle")
    note = page.inner_text("#notify-note")
    assert "secure page" in note and f"progress.lan:{daemon.port}" in note and "https" in note
