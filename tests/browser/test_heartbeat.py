"""A dashboard whose link goes silent without closing (the daemon frozen by SIGSTOP) says
"Reconnecting" within three heartbeat periods, then resyncs once the daemon runs again."""

from __future__ import annotations

import signal
import time

import pytest

from progressistad import contract
from tests.browser.conftest import FAKE_SOCKETS, wait_connection, wait_rows
from tests.support import post

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DASHBOARD = "/static/index.html"
HEARTBEAT = 0.5
SILENCE = HEARTBEAT * contract.WS_HEARTBEAT_MISSED
"""What the page waits without a message before it gives the link up."""
# Chromium's own line when the page gives up a socket still in its handshake.
HANDSHAKE_ABANDONED = r"WebSocket connection to .* failed"


def connection_state(page) -> str:
    return page.evaluate("document.getElementById('connection').dataset.state")


def sockets_opened(dashboards) -> int:
    return sum(url.startswith("ws://") for url in dashboards.requests)


def test_a_frozen_daemon_shows_reconnecting_then_the_page_resyncs(daemon_factory, dashboards):
    dashboards.allow_errors(HANDSHAKE_ABANDONED)
    daemon = daemon_factory(["--ws-heartbeat-interval", str(HEARTBEAT)])
    post(daemon, {"task_id": "before", "n": 1, "total": 4})
    page = dashboards.open(daemon.url + DASHBOARD)
    wait_rows(page, lambda r: "before" in r)
    served = page.evaluate("import('./contract.js').then((m) => m.WS_HEARTBEAT_SECONDS)")
    assert served == HEARTBEAT, "the page follows the daemon's --ws-heartbeat-interval"
    time.sleep(3 * SILENCE)
    assert connection_state(page) == "connected", "heartbeats keep an idle page connected"
    opened = sockets_opened(dashboards)

    daemon.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        wait_connection(page, "reconnecting", timeout=SILENCE + 5)
        noticed = time.monotonic() - stopped
        assert page.locator("#connection-text").inner_text().startswith("Reconnecting")
    finally:
        daemon.send_signal(signal.SIGCONT)
    print(f"heartbeat {HEARTBEAT} s: 'Reconnecting' {noticed:.2f} s after SIGSTOP")
    # The last message may have come up to a period and a half before the freeze.
    assert SILENCE - 1.5 * HEARTBEAT - 0.2 <= noticed <= SILENCE + 2.0, noticed

    post(daemon, {"task_id": "after", "n": 2, "total": 2})
    wait_connection(page, "connected", timeout=30)
    wait_rows(page, lambda r: set(r) == {"before", "after"}, message="the state after the freeze")
    assert sockets_opened(dashboards) > opened, "the page resynced on a new socket"
    post(daemon, {"task_id": "after", "n": 1})
    wait_rows(page, lambda r: r["after"]["amount"].startswith("1"), message="live again")


WATCHDOG_SCRIPT = "async (silenceMs) => {" + FAKE_SOCKETS + """
  const seen = [];
  const connection = new LiveConnection('ws://127.0.0.1:1/ws?protocol=delta', {
    onSnapshot: () => seen.push('snapshot'), onDelta: () => seen.push('delta'),
    onState: (state) => seen.push(state),
  });
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  try {
    connection.start();
    send(sockets[0], { type: 'snapshot', seq: 3, tasks: {} });
    for (let i = 0; i < 4; i += 1) {
      await pause(silenceMs / 2);
      send(sockets[0], { type: 'heartbeat', seq: 3 });
    }
    const keptBy = sockets.length;
    send(sockets[0], { type: 'heartbeat', seq: 4 });
    const afterGap = sockets.length;
    send(sockets[1], { type: 'snapshot', seq: 4, tasks: {} });
    await pause(silenceMs * 1.5);
    return { seen, keptBy, afterGap, gapClosed: sockets[0].closedWith,
             silentClosed: sockets[1].closedWith };
  } finally {
    connection.stop();
    window.WebSocket = real;
  }
}"""


def test_heartbeats_keep_the_link_a_seq_gap_resyncs_and_silence_gives_it_up(daemon_factory,
                                                                            dashboards):
    daemon = daemon_factory(["--ws-heartbeat-interval", "0.2"])
    page = dashboards.open(daemon.url + DASHBOARD)
    result = page.evaluate(WATCHDOG_SCRIPT, 1000 * 0.2 * contract.WS_HEARTBEAT_MISSED)
    assert result["keptBy"] == 1, "heartbeats with the last seq keep the socket"
    assert result["afterGap"] == 2 and result["gapClosed"] == 4000, "a heartbeat past our seq resyncs"
    assert result["silentClosed"] == 4000, "a silent socket is given up"
    seen = result["seen"]
    assert seen[:7] == ["connecting", "snapshot", "connected", "connecting", "snapshot",
                        "connected", "reconnecting"], seen
    assert set(seen[7:]) <= {"reconnecting"}, seen
