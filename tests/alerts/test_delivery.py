"""Delivery against real receivers: down then back (every message once), receivers that hang,
reset, redirect in a loop, answer slowly or answer 100 MB (bounded cost, counted, logged once),
the bounded queue, Retry-After, the log and the counters."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import pytest

from progressistad.alerts import events, messages
from progressistad.alerts.delivery import Delivery, RetryPolicy
from progressistad.alerts.queue import MemoryQueue
from tests.alerts.helpers import FAST, LoopLag, targets, wait_until
from tests.alerts.test_events import T0, task

pytestmark = pytest.mark.gen_test(timeout=60)


def failure(i=0, route="hook", group="train"):
    served = task("error", task_id=f"{group}:{i}", created=T0, updated=T0 + 1)
    return messages.burst(route, events.ERROR, group, [served], T0 + i, T0 + i)


@pytest.fixture
def delivery(io_loop):
    """`delivery(config, out, **kwargs)`: a started Delivery; all are closed at teardown."""
    made = []

    def make(config, out, **kwargs):
        kwargs.setdefault("policy", FAST)
        kwargs.setdefault("poll_seconds", 0.05)
        sender = Delivery(targets(config, out), time.time, **kwargs)
        sender.start()
        made.append(sender)
        return sender

    yield make
    for sender in made:
        io_loop.run_sync(sender.close)


def failed_lines(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "progressistad.alerts" and "failed after" in r.getMessage()]


async def test_receiver_down_then_back_every_message_arrives_once(
        config, out, receiver, delivery):
    routes = config(f"[hook]\nurl = {receiver.url('ok')}\n")
    receiver.stop()
    sender = delivery(routes, out)
    sent = [failure(i) for i in range(5)]
    for message in sent:
        await sender.submit(message)
    await wait_until(lambda: sender.stats.attempts["hook"] >= 10)
    receiver.start()
    await wait_until(lambda: len(receiver.received()) >= 5)
    await wait_until(lambda: sender.stats.messages[("hook", "sent")] == 5)
    ids = [got.json()["id"] for got in receiver.received()]
    assert sorted(ids) == sorted(m.id for m in sent)
    records = await sender.journal.last()
    assert {r.result for r in records} == {"sent"} and all(r.attempts > 1 for r in records)
    assert all(r.latency is not None and r.latency > 0 for r in records)
    assert sender.stats.latency.count == 5
    assert await sender.queue.pending() == []


async def test_a_hanging_receiver_holds_back_only_its_route(
        config, out, receiver, delivery, caplog):
    routes = config(f"[stuck]\nurl = {receiver.url('hang')}\n[hook]\nurl = {receiver.url('ok')}\n")
    policy = RetryPolicy(first=0.05, most=0.1, give_up_after=2.5, timeout=1.0)
    sender = delivery(routes, out, policy=policy)
    with LoopLag() as lag:
        await sender.submit(failure(0, route="stuck"))
        await wait_until(lambda: receiver.received())
        started = time.monotonic()
        await sender.submit(failure(1, route="hook"))
        await wait_until(lambda: sender.stats.messages[("hook", "sent")] == 1)
        assert time.monotonic() - started < 0.5
        await wait_until(lambda: sender.stats.messages[("stuck", "failed")] == 1, timeout=15)
    assert lag.worst < 0.3
    (record,) = [r for r in await sender.journal.last() if r.route == "stuck"]
    assert record.result == "failed" and record.error == "timeout" and record.attempts >= 2
    assert len(failed_lines(caplog)) == 1
    assert sender.last_result["stuck"] == ("failed", "timeout")


async def test_a_receiver_that_resets_is_retried_then_fails_logged_once(
        config, out, receiver, delivery, caplog):
    routes = config(f"[hook]\nurl = {receiver.url('reset')}\n")
    sender = delivery(routes, out, policy=replace(FAST, give_up_after=1.0))
    await sender.submit(failure())
    await wait_until(lambda: sender.stats.messages[("hook", "failed")] == 1)
    assert len(receiver.received()) > 1 and len(failed_lines(caplog)) == 1


async def test_a_redirect_loop_is_not_followed_nor_retried(
        config, out, receiver, delivery, caplog):
    routes = config(f"[hook]\nurl = {receiver.url('redirect')}\n")
    sender = delivery(routes, out)
    await sender.submit(failure())
    await wait_until(lambda: sender.stats.messages[("hook", "failed")] == 1)
    assert len(receiver.received()) == 1
    (line,) = failed_lines(caplog)
    assert line.endswith("failed after 1 attempt(s): HTTP 302: redirect not followed")


async def test_other_4xx_are_not_retried(config, out, receiver, delivery):
    routes = config(f"[hook]\nurl = {receiver.url('ok')}?status=410\n")
    sender = delivery(routes, out)
    await sender.submit(failure())
    await wait_until(lambda: sender.stats.messages[("hook", "failed")] == 1)
    assert len(receiver.received()) == 1


async def test_a_slow_answer_within_the_timeout_is_sent_and_its_latency_counted(
        config, out, receiver, delivery):
    routes = config(f"[hook]\nurl = {receiver.url('slow')}?seconds=0.5\n")
    sender = delivery(routes, out)
    with LoopLag() as lag:
        await sender.submit(failure())
        await wait_until(lambda: sender.stats.messages[("hook", "sent")] == 1)
    (record,) = await sender.journal.last()
    assert record.attempts == 1 and 0.5 <= record.latency < 2
    assert lag.worst < 0.3
    buckets = dict(sender.stats.latency.cumulative())
    assert buckets[0.25] == 0 and buckets[1.0] == 1 and buckets[float("inf")] == 1


async def test_a_100_mb_answer_costs_the_loop_nothing(config, out, receiver, delivery, caplog):
    routes = config(f"[ok]\nurl = {receiver.url('big')}?how=chunked\n"
                    f"[bad]\nurl = {receiver.url('big')}?how=close&status=503\n")
    sender = delivery(routes, out, policy=replace(FAST, give_up_after=1.0))
    with LoopLag() as lag:
        await sender.submit(failure(0, route="ok"))
        await sender.submit(failure(1, route="bad"))
        await wait_until(lambda: sender.stats.messages[("ok", "sent")] == 1)
        await wait_until(lambda: sender.stats.messages[("bad", "failed")] == 1)
    assert lag.worst < 0.3
    assert sender.stats.attempts["bad"] > 1
    assert [line.split(": ")[-1] for line in failed_lines(caplog)] == ["HTTP 503"]


async def test_retry_after_is_honoured(config, out, receiver, delivery):
    routes = config(f"[hook]\nurl = {receiver.url('ok')}?status=429&retry_after=1\n")
    sender = delivery(routes, out, policy=replace(FAST, give_up_after=1.5))
    await sender.submit(failure())
    await wait_until(lambda: len(receiver.received()) == 2, timeout=5)
    first, second = receiver.received()
    assert second.at - first.at >= 0.95
    await wait_until(lambda: sender.stats.messages[("hook", "failed")] == 1, timeout=5)
    assert len(receiver.received()) == 2


async def test_a_full_queue_drops_the_oldest_and_counts_them(
        config, out, receiver, delivery, caplog):
    routes = config(f"[hook]\nurl = {receiver.url('ok')}\n")
    receiver.stop()
    sender = delivery(routes, out, queue=MemoryQueue(capacity=3))
    sent = [failure(i) for i in range(6)]
    for message in sent:
        await sender.submit(message)
    dropped = [r for r in await sender.journal.last() if r.result == "dropped"]
    assert sender.stats.messages[("hook", "dropped")] == len(dropped) >= 2
    assert {r.id for r in dropped} <= {m.id for m in sent[:3]}
    lines = [r.getMessage() for r in caplog.records if "queue full" in r.getMessage()]
    assert lines == [f"notification queue full: dropped 1 oldest message(s)"]
    receiver.start()
    await wait_until(lambda: sender.stats.messages[("hook", "sent")] == 6 - len(dropped))
    assert sent[-1].id in {got.json()["id"] for got in receiver.received()}


async def test_a_message_for_a_removed_route_fails_once(config, out, receiver, delivery, caplog):
    sender = delivery(config(f"[hook]\nurl = {receiver.url('ok')}\n"), out)
    await sender.submit(failure(route="gone"))
    await wait_until(lambda: sender.stats.messages[("gone", "failed")] == 1)
    (record,) = await sender.journal.last()
    assert record.error == "the route is no longer configured"


async def test_the_failure_line_never_holds_a_secret(config, out, receiver, delivery, caplog):
    url = receiver.url("ok").replace("//", "//user:hunter2@") + "?status=403&token=tk_leak"
    sender = delivery(config(f"[hook]\nurl = {url}\ntoken = tk_bearer\n"), out)
    await sender.submit(failure())
    await wait_until(lambda: sender.stats.messages[("hook", "failed")] == 1)
    (line,) = failed_lines(caplog)
    assert "***@127.0.0.1" in line
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("progressistad"))
    for secret in ("hunter2", "tk_leak", "tk_bearer"):
        assert secret not in ours and secret not in str(await sender.journal.last())


async def test_a_single_attempt_message_is_not_retried(config, out, receiver, delivery):
    sender = delivery(config(f"[hook]\nurl = {receiver.url('fail')}\n"), out)
    outcome = sender.expect(failure().id)
    await sender.submit(failure(), once=True)
    record = await outcome
    assert (record.result, record.attempts, record.error) == ("failed", 1, "HTTP 500")


def test_backoff_doubles_to_its_ceiling_and_yields_to_retry_after():
    policy = RetryPolicy()
    assert [policy.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert policy.delay(1, retry_after=120) == 120
    assert policy.delay(6, retry_after=3) == 32


def test_module_logger_is_the_alerts_one():
    assert logging.getLogger("progressistad.alerts").name == "progressistad.alerts"
