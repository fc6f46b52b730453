"""Two daemons on one Redis (a real redis-server): each message goes out once, the queue and
the log are the group's, a daemon that dies mid-attempt loses nothing, one daemon gathers."""

from __future__ import annotations

import time

import pytest

from progressistad.alerts import Alerts, events, messages
from progressistad.alerts.delivery import Delivery
from progressistad.alerts.queue import Entry
from tests.alerts.helpers import FAST, DASHBOARD, targets, wait_until
from tests.alerts.test_events import T0, task

redis_asyncio = pytest.importorskip("redis.asyncio")
shared = pytest.importorskip("progressistad.alerts.shared")

pytestmark = pytest.mark.gen_test(timeout=60)


def failure(i, route="hook"):
    served = task("error", task_id=f"job{i}:0", created=T0, updated=T0 + 1)
    return messages.burst(route, events.ERROR, f"job{i}", [served], T0 + i, T0 + i)


@pytest.fixture
def client(redis_server, io_loop):
    made = redis_asyncio.Redis.from_url(redis_server.url)
    yield made
    io_loop.run_sync(made.aclose if hasattr(made, "aclose") else made.close)


@pytest.fixture
def daemons(io_loop, client, redis_prefix):
    """`daemons(config, out, n)`: n deliveries sharing one queue and log, started."""
    made = []

    def build(config, out, count=2, lease=5.0):
        group = []
        for _ in range(count):
            sender = Delivery(targets(config, out), time.time, policy=FAST, poll_seconds=0.05,
                              queue=shared.RedisQueue(client, redis_prefix, lease),
                              journal=shared.RedisLog(client, redis_prefix))
            sender.start()
            group.append(sender)
        made.extend(group)
        return group

    yield build
    for sender in made:
        io_loop.run_sync(sender.close)


async def test_two_daemons_send_each_message_once(config, out, receiver, daemons):
    one, two = daemons(config(f"[hook]\nurl = {receiver.url('slow')}?seconds=0.02\n"
                              f"[other]\nurl = {receiver.url('ok')}\n"), out)
    sent = [failure(i, route="hook" if i % 2 else "other") for i in range(30)]
    for i, message in enumerate(sent):
        await (one if i % 3 else two).submit(message)
    await wait_until(lambda: len(receiver.received()) >= 30)
    await wait_until(lambda: sum(d.stats.messages[(r, "sent")] for d in (one, two)
                                 for r in ("hook", "other")) == 30)
    ids = [got.json()["id"] for got in receiver.received()]
    assert sorted(ids) == sorted(m.id for m in sent) and len(set(ids)) == 30
    assert one.stats.attempts and two.stats.attempts  # both daemons sent some
    log_one, log_two = await one.journal.last(), await two.journal.last()
    assert log_one == log_two and len(log_one) == 30
    assert await one.queue.pending() == []


async def test_receiver_down_then_back_with_two_daemons(config, out, receiver, daemons):
    one, two = daemons(config(f"[hook]\nurl = {receiver.url('ok')}\n"), out)
    receiver.stop()
    sent = [failure(i) for i in range(6)]
    for message in sent:
        await one.submit(message)
    await wait_until(lambda: one.stats.attempts["hook"] + two.stats.attempts["hook"] >= 12)
    assert {e.message.id for e in await two.queue.pending()} == {m.id for m in sent}
    receiver.start()
    await wait_until(lambda: len(receiver.received()) >= 6)
    await wait_until(lambda: one.stats.messages[("hook", "sent")]
                     + two.stats.messages[("hook", "sent")] == 6)
    assert sorted(got.json()["id"] for got in receiver.received()) == sorted(m.id for m in sent)


async def test_an_entry_whose_daemon_died_mid_attempt_goes_out_after_its_lease(
        config, out, receiver, client, redis_prefix, daemons):
    routes = config(f"[hook]\nurl = {receiver.url('ok')}\n")
    dead = shared.RedisQueue(client, redis_prefix, lease_seconds=0.5)
    message = failure(0)
    await dead.push(Entry(message, queued_at=time.time()))
    assert (await dead.take(time.time(), set())).message.id == message.id  # then it "dies"
    (alive,) = daemons(routes, out, count=1)
    await wait_until(lambda: alive.stats.messages[("hook", "sent")] == 1)
    assert [got.json()["id"] for got in receiver.received()] == [message.id]


async def test_the_shared_queue_is_bounded_and_drops_the_oldest(client, redis_prefix):
    queue = shared.RedisQueue(client, redis_prefix, lease_seconds=5, capacity=3)
    now = time.time()
    entries = [Entry(failure(i), queued_at=now + i) for i in range(5)]
    dropped = []
    for entry in entries:
        dropped += await queue.push(entry)
    assert [e.message.id for e in dropped] == [e.message.id for e in entries[:2]]
    assert [e.message.id for e in await queue.pending()] == [e.message.id for e in entries[2:]]
    assert await queue.push(entries[4]) == []  # the same message twice is queued once
    assert len(await queue.pending()) == 3


async def test_take_skips_busy_routes_and_waits_for_not_before(client, redis_prefix):
    queue = shared.RedisQueue(client, redis_prefix, lease_seconds=5)
    now = time.time()
    later = Entry(failure(0, route="a"), queued_at=now, not_before=now + 100)
    busy = Entry(failure(1, route="b"), queued_at=now)
    for entry in (later, busy):
        await queue.push(entry)
    assert await queue.take(now, {"b"}) is None
    assert await queue.next_due({"b"}) == pytest.approx(now + 100)
    assert (await queue.take(now, set())).message.id == busy.message.id
    assert (await queue.take(now + 101, set())).message.id == later.message.id


async def test_one_daemon_gathers(route_file, receiver, client, redis_prefix, io_loop):
    path = route_file(f"[hook]\nurl = {receiver.url()}\ngroup-wait = 0\n")
    leases = [shared.GatherLease(client, redis_prefix, owner, seconds=0.6) for owner in "ab"]
    group = []
    for lease in leases:
        alerts = Alerts.load(path, {}, time.time, dashboard_url=DASHBOARD, hostname="box",
                             policy=FAST, gathers=lease,
                             queue=shared.RedisQueue(client, redis_prefix, 5),
                             journal=shared.RedisLog(client, redis_prefix))
        alerts.delivery._poll = 0.05
        alerts.start()
        group.append(alerts)
    try:
        assert [await lease.renew() for lease in leases] == [True, False]
        served = task("error", task_id="x:1", created=T0, updated=T0)
        for alerts in group:  # every daemon hears every change of the group
            alerts.observe([served])
        await wait_until(lambda: receiver.received())
        await wait_until(lambda: sum(a.stats().messages[("hook", "sent")] for a in group) == 1)
        await leases[0].close()  # the gatherer stops: the other takes over at once
        assert await leases[1].renew()
        for alerts in group:
            alerts.observe([dict(served, task_id="y:1")])
        await wait_until(lambda: len(receiver.received()) == 2)
        assert len(await group[0].deliveries()) == len(await group[1].deliveries()) == 2
    finally:
        for alerts in group:
            await alerts.close()


async def test_redis_away_then_back(config, out, receiver, redis_prefix, caplog):
    from tests.redis_server import RedisServer

    server = RedisServer().start()
    client = redis_asyncio.Redis.from_url(server.url, socket_timeout=1,
                                          socket_connect_timeout=1)
    sender = Delivery(targets(config(f"[hook]\nurl = {receiver.url()}\n"), out), time.time,
                      policy=FAST, poll_seconds=0.05,
                      queue=shared.RedisQueue(client, redis_prefix, 5),
                      journal=shared.RedisLog(client, redis_prefix))
    sender.start()
    try:
        server.stop()
        await sender.submit(failure(0))  # lost, counted, never raised
        await wait_until(lambda: sender.queue_error is not None)
        await wait_until(lambda: sender.stats.messages[("hook", "dropped")] == 1)
        lines = [r.getMessage() for r in caplog.records if "queue unavailable" in r.getMessage()]
        assert len(lines) == 1
        server.start()
        await sender.submit(failure(1))
        await wait_until(lambda: sender.stats.messages[("hook", "sent")] == 1)
        assert sender.queue_error is None
        assert [got.json()["id"] for got in receiver.received()] == [failure(1).id]
    finally:
        await sender.close()
        server.stop()
