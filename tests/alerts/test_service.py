"""`Alerts` as the daemon will hold it: task changes from the task service to messages at a
real receiver, the restart rule, reload, test messages, /notifications, /health."""

from __future__ import annotations

import time

import pytest

from progressistad.alerts import Alerts, UnknownRoute
from progressistad.core.store import SweepPolicy, TaskStore
from progressistad.service import TaskService
from tests.alerts.helpers import DASHBOARD, FAST, LoopLag, wait_until

pytestmark = pytest.mark.gen_test(timeout=60)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def make(io_loop, route_file):
    """`make(text)`: a started Alerts over a task service on the in-memory store."""
    made = []

    def build(text, clock=time.time, **kwargs):
        kwargs.setdefault("policy", FAST)
        path = route_file(text)
        alerts = Alerts.load(path, {}, clock, dashboard_url=DASHBOARD, hostname="box", **kwargs)
        alerts.delivery._poll = 0.05
        service = TaskService(TaskStore(), clock, SweepPolicy(stale_seconds=60))
        service.add_listener(alerts.listener(service.store))
        alerts.start()
        made.append(alerts)
        return alerts, service, path

    yield build
    for alerts in made:
        io_loop.run_sync(alerts.close)


async def test_eight_ranks_finishing_together_are_one_message(make, receiver):
    alerts, service, _ = make(f"[hook]\nurl = {receiver.url()}\nevents = close\ngroup-wait = 0.3\n")
    await service.ingest([{"task_id": f"train:rank{i}", "status": "start"} for i in range(8)])
    for i in range(8):
        await service.ingest([{"task_id": f"train:rank{i}", "status": "close"}])
    await wait_until(lambda: receiver.received())
    await wait_until(lambda: alerts.stats().messages[("hook", "sent")] == 1)
    (got,) = receiver.received()
    body = got.json()
    assert body["title"] == "train: 8 tasks finished" and body["group"] == "train"
    assert [task["task_id"] for task in body["tasks"]] == [f"train:rank{i}" for i in range(8)]
    assert body["dashboard_url"] == DASHBOARD
    (record,) = await alerts.deliveries()
    assert record["result"] == "sent" and record["tasks"] == [t["task_id"] for t in body["tasks"]]


async def test_stalled_and_resumed_and_the_restart_rule(make, receiver):
    clock = Clock()
    alerts, service, _ = make(f"[hook]\nurl = {receiver.url()}\nevents = stalled, resumed\n"
                              "group-wait = 0\n", clock=clock)
    service.store.load([_recovered("old:1", clock.now)])
    alerts.prime(service.store.snapshot().values())
    await service.ingest([{"task_id": "new:1", "status": "start"}])
    clock.now += 120
    await service.sweep()
    await wait_until(lambda: alerts.stats().messages[("hook", "sent")] == 1)
    assert [got.json()["tasks"][0]["task_id"] for got in receiver.received()] == ["new:1"]
    assert receiver.received()[0].json()["event"] == "stalled"
    await service.ingest([{"task_id": "new:1", "n": 2}, {"task_id": "old:1", "n": 2}])
    clock.now += 120
    await service.sweep()
    await wait_until(lambda: alerts.stats().messages[("hook", "sent")] == 4)
    kinds = sorted((got.json()["event"], got.json()["tasks"][0]["task_id"])
                   for got in receiver.received()[1:])
    # old:1 stalls now, after its first event since the restart; its silent stall before
    # that is not followed by a `resumed`.
    assert kinds == [("resumed", "new:1"), ("stalled", "new:1"), ("stalled", "old:1")]


async def test_overdue_from_the_served_flag(make, receiver):
    alerts, service, _ = make(f"[hook]\nurl = {receiver.url()}\nevents = overdue\ngroup-wait = 0\n")
    served = {"task_id": "nightly", "status": "update", "created_at": 1.0, "updated_at": 2.0,
              "meta": None, "overdue": False}
    alerts.observe([dict(served, created_at=2.0)])
    alerts.observe([dict(served, overdue=True, expected_duration=60)])
    alerts.observe([dict(served, overdue=True, expected_duration=60)])
    await wait_until(lambda: alerts.stats().messages[("hook", "sent")] == 1)
    assert receiver.received()[0].json()["event"] == "overdue"


async def test_children_and_globs_are_applied(make, receiver):
    alerts, service, _ = make(f"[hook]\nurl = {receiver.url()}\nevents = error\nmatch = train:*\n"
                              "group-wait = 0\n")
    await service.ingest([
        {"task_id": "train:1", "status": "error"},
        {"task_id": "train:2", "status": "error", "meta": {"parent_id": "train:1"}},
        {"task_id": "backup:1", "status": "error"},
    ])
    await wait_until(lambda: alerts.stats().messages[("hook", "sent")] == 1)
    assert [t["task_id"] for t in receiver.received()[0].json()["tasks"]] == ["train:1"]


async def test_only_the_gathering_daemon_sends(make, receiver):
    alerts, service, _ = make(f"[hook]\nurl = {receiver.url()}\ngroup-wait = 0\n",
                              gathers=lambda: False)
    await service.ingest([{"task_id": "x", "status": "error"}])
    assert len(alerts._gatherer) == 0 and alerts.stats().messages == {}


async def test_send_test(make, receiver):
    alerts, _, _ = make(f"[hook]\nurl = {receiver.url()}\n[down]\nurl = {receiver.url('fail')}\n")
    record = await alerts.send_test("hook")
    assert record["result"] == "sent" and record["attempts"] == 1 and record["event"] == "test"
    assert receiver.received()[0].json()["title"] == "progressistad test notification"
    failed = await alerts.send_test("down")
    assert (failed["result"], failed["attempts"], failed["error"]) == ("failed", 1, "HTTP 500")
    with pytest.raises(UnknownRoute):
        await alerts.send_test("nope")


async def test_send_test_to_a_hanging_receiver_answers_queued_in_time(make, receiver):
    alerts, _, _ = make(f"[stuck]\nurl = {receiver.url('hang')}\n")
    started = time.monotonic()
    record = await alerts.send_test("stuck", wait=0.3)
    assert record["result"] == "retrying" or record["result"] == "queued"
    assert time.monotonic() - started < 1
    (listed,) = await alerts.deliveries()
    assert listed["id"] == record["id"]


async def test_health_names_a_failing_route(make, receiver):
    alerts, _, _ = make(f"[hook]\nurl = {receiver.url()}\n[down]\nurl = {receiver.url('fail')}\n")
    assert alerts.health() == {"ok": True, "routes": 2, "gathering": 0, "failing": {},
                               "error": None}
    await alerts.send_test("down")
    assert alerts.health()["failing"] == {"down": "HTTP 500"} and not alerts.health()["ok"]
    await alerts.send_test("hook")
    assert alerts.health()["failing"] == {"down": "HTTP 500"}


async def test_reload_keeps_the_old_routes_when_the_file_is_bad(make, receiver, caplog):
    alerts, _, path = make(f"[hook]\nurl = {receiver.url()}\n")
    with open(path, "w") as stream:
        stream.write("[hook]\nurl = nope\n")
    assert not alerts.reload(path, {})
    assert [route.name for route in alerts.config.routes] == ["hook"]
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line == (f"notify config {path}:2: route [hook]: url '***' is not a URL (no scheme); "
                    "the previous notification routes stay in use")
    assert alerts.health()["error"].startswith("notify config") and not alerts.health()["ok"]
    with open(path, "w") as stream:
        stream.write(f"[other]\nurl = {receiver.url()}\n")
    assert alerts.reload(path, {})
    assert [route.name for route in alerts.config.routes] == ["other"]
    assert alerts.health()["ok"]


async def test_ingest_is_not_slowed_by_a_hanging_receiver(make, receiver):
    text = "".join(f"[r{i}]\nurl = {receiver.url('hang')}\nevents = close, error\ngroup-wait = 0\n"
                   f"rate-limit = 0\n" for i in range(10))
    alerts, service, _ = make(text)
    with LoopLag() as lag:
        started = time.perf_counter()
        for i in range(50):
            await service.ingest([{"task_id": f"job{i}:x", "status": "error"}])
        ingest_seconds = time.perf_counter() - started
        await wait_until(lambda: sum(alerts.stats().attempts.values()) >= 10)
    assert ingest_seconds < 3 and lag.worst < 0.3
    assert len(await alerts.deliveries()) == 500


def _recovered(task_id, now):
    from progressistad.core.store import Task

    task = Task(task_id, now - 10)
    task.status = "recovered"
    return task
