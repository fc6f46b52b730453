"""Notifications through the application: GET /notifications, POST /notifications/test, the
notifier in /health (degraded, still 200) and /metrics, on the in-memory store and on Redis."""

from __future__ import annotations

import re

import pytest

from progressistad.daemon.config import Settings
from tests.route_matrix import CREDENTIALS, READ_TOKEN, WRITE_TOKEN

pytestmark = pytest.mark.gen_test(timeout=30)
WRITE = CREDENTIALS["write"].headers
READ = CREDENTIALS["read"].headers


@pytest.fixture
def settings(tmp_path, receiver):
    """Tokens, and a route file with a route that works, one that fails and one that hangs."""
    path = tmp_path / "notify.conf"
    path.write_text(f"[hook]\nurl = {receiver.url()}\nevents = error, close\ngroup-wait = 0\n"
                    f"[down]\nurl = {receiver.url('fail')}\n"
                    f"[phone]\nurl = {receiver.url(scheme='ntfy')}\n"
                    "events = error\ngroup-wait = 0\n")
    return Settings(broadcast_interval=0.02, notify_config=str(path), api_tokens=(WRITE_TOKEN,),
                    read_tokens=(READ_TOKEN,), public_url="https://progress.example/")


async def until(predicate, what="condition", timeout=10.0):
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        await asyncio.sleep(0.05)


async def test_a_failure_reaches_the_receivers_and_is_listed(api, receiver):
    await api.post([{"task_id": "train:1", "status": "start"}], headers=WRITE)
    status, _, _ = await api.post([{"task_id": "train:1", "status": "error"}], headers=WRITE)
    assert status == 200

    async def listing():
        return (await api.call("GET", "/notifications", headers=READ))[2]

    async def both_sent():
        return [d["result"] for d in (await listing())["deliveries"]] == ["sent", "sent"]

    await until(both_sent, "two deliveries sent")
    listed = await listing()
    assert [r["name"] for r in listed["routes"]] == ["hook", "down", "phone"]
    assert listed["routes"][0]["events"] == ["close", "error"]
    for delivery in listed["deliveries"]:
        assert {"id", "route", "event", "tasks", "result", "attempts", "error"} <= set(delivery)
        assert (delivery["event"], delivery["tasks"], delivery["attempts"]) == \
            ("error", ["train:1"], 1)
    assert sorted(d["route"] for d in listed["deliveries"]) == ["hook", "phone"]
    (hook,) = [got.json() for got in receiver.received() if "Title" not in got.headers]
    assert (hook["version"], hook["event"], hook["dashboard_url"]) == \
        (1, "error", "https://progress.example/")
    (ntfy,) = [got for got in receiver.received() if "Title" in got.headers]
    assert ntfy.headers["Click"] == "https://progress.example/" and b"train:1" in ntfy.body


async def test_the_test_route_sends_once_and_says_how_it_went(api, receiver):
    status, _, record = await api.call("POST", "/notifications/test?route=hook", headers=WRITE)
    assert status == 200 and (record["result"], record["attempts"], record["event"]) == \
        ("sent", 1, "test")
    assert [got.json()["id"] for got in receiver.received()] == [record["id"]]
    status, _, record = await api.call("POST", "/notifications/test?route=down", headers=WRITE)
    assert status == 200 and (record["result"], record["error"]) == ("failed", "HTTP 500")


async def test_an_unknown_route_is_404_naming_the_routes_and_a_missing_one_400(api):
    status, _, body = await api.call("POST", "/notifications/test?route=nope", headers=WRITE)
    assert status == 404 and body == {"error": "no such notification route", "route": "nope",
                                      "routes": ["hook", "down", "phone"]}
    status, _, body = await api.call("POST", "/notifications/test", headers=WRITE)
    assert status == 400 and "route=NAME" in body["error"]
    assert (await api.call("POST", "/notifications/test?route=hook", headers=READ))[0] == 403


async def test_a_failing_route_degrades_health_without_a_503(api):
    status, _, health = await api.call("GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["notifications"]["ok"]
    await api.call("POST", "/notifications/test?route=down", headers=WRITE)
    status, _, health = await api.call("GET", "/health")
    assert status == 200 and health["status"] == "degraded"
    assert health["failing"] == ["notifications"]
    assert health["notifications"]["failing"] == {"down": "HTTP 500"}


async def test_metrics_count_messages_attempts_latency_and_the_queue(api):
    await api.call("POST", "/notifications/test?route=hook", headers=WRITE)
    await api.call("POST", "/notifications/test?route=down", headers=WRITE)
    status, _, text = await api.call("GET", "/metrics", headers=READ)
    assert status == 200
    assert 'progressista_notifications_total{result="sent",route="hook"} 1' in text
    assert 'progressista_notifications_total{result="failed",route="down"} 1' in text
    assert 'progressista_notification_attempts_total{route="down"} 1' in text
    assert "progressista_notification_latency_seconds_count 1" in text
    assert re.search(r'progressista_notification_latency_seconds_bucket\{le="\+Inf"\} 1\n', text)
    assert "# TYPE progressista_notification_latency_seconds histogram" in text
    assert "progressista_notification_queue_length 0" in text
    assert "progressista_notifications_dropped_total 0" in text
