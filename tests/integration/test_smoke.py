"""The real daemon as a subprocess: it starts, answers, and stops cleanly on SIGTERM."""

import signal


def test_post_then_read_back_then_sigterm_exits_zero(daemon):
    status, _, body = daemon.request("POST", "/progress", {"task_id": "job", "n": 3, "total": 10})
    assert (status, body["accepted"]) == (200, 1)
    status, _, body = daemon.request("GET", "/tasks/job")
    assert status == 200 and body["n"] == 3 and body["total"] == 10
    assert daemon.stop(signal.SIGTERM) == 0
