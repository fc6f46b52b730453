"""Bursts, rate limits, summaries, the words of a message and the webhook body: pure."""

from __future__ import annotations

import json

import pytest

from progressistad.alerts import events, messages
from progressistad.alerts.grouping import Gatherer
from progressistad.alerts.messages import humanise
from progressistad.alerts.routes import Route
from tests.alerts.test_events import T0, task


def route(name="phone", group_wait=10.0, rate_limit=20):
    return Route(name=name, sink="webhook", safe_url="https://h/", url="https://h/",
                 events=frozenset(events.KINDS), group_wait=group_wait, rate_limit=rate_limit)


def finished(i, group="train", start=T0, end=T0 + 2 * 3600 + 13 * 60 + 5, **fields):
    return task("close", task_id=f"{group}:rank{i}", created=start, updated=end, **fields)


def test_a_burst_of_one_group_is_one_message():
    gatherer, phone = Gatherer(), route()
    for i in range(8):
        gatherer.add(phone, events.CLOSE, finished(i), T0 + i)
    assert gatherer.due(T0 + 9.9) == []
    assert gatherer.next_due() == T0 + 10
    (message,) = gatherer.due(T0 + 10)
    assert message.title == "train: 8 tasks finished"
    assert message.text == "train: 8 tasks finished in 2 h 13 min"
    assert message.group == "train" and message.event == "close" and message.route == "phone"
    assert message.task_ids == tuple(f"train:rank{i}" for i in range(8))
    assert gatherer.due(T0 + 100) == [] and gatherer.next_due() is None


def test_bursts_part_by_route_event_and_group():
    gatherer, phone, mail = Gatherer(), route(), route("mail")
    gatherer.add(phone, events.CLOSE, finished(0), T0)
    gatherer.add(phone, events.CLOSE, finished(0, group="backup"), T0)
    gatherer.add(phone, events.ERROR, dict(finished(1), status="error"), T0)
    gatherer.add(mail, events.CLOSE, finished(2), T0)
    gatherer.add(phone, events.CLOSE, {**finished(9, group="x"), "task_id": "lonely"}, T0)
    gatherer.add(phone, events.CLOSE, {**finished(9, group="x"), "task_id": "alone"}, T0)
    keys = sorted((m.route, m.event, m.group or "", m.task_ids) for m in gatherer.due(T0 + 10))
    assert keys == [
        ("mail", "close", "train", ("train:rank2",)),
        ("phone", "close", "", ("alone",)),
        ("phone", "close", "", ("lonely",)),
        ("phone", "close", "backup", ("backup:rank0",)),
        ("phone", "close", "train", ("train:rank0",)),
        ("phone", "error", "train", ("train:rank1",)),
    ]


def test_a_task_repeated_in_a_burst_counts_once_with_its_latest_state():
    gatherer, phone = Gatherer(), route(group_wait=0)
    gatherer.add(phone, events.STALLED, task("stale", n=1), T0)
    gatherer.add(phone, events.STALLED, task("stale", n=2), T0)
    (message,) = gatherer.due(T0)
    assert message.task_ids == ("train:0",) and message.tasks[0]["n"] == 2


def test_the_rate_limit_folds_the_excess_into_one_summary():
    gatherer, phone = Gatherer(), route(group_wait=0, rate_limit=2)
    sent = []
    for i in range(5):
        gatherer.add(phone, events.ERROR, dict(finished(i, group=f"g{i}"), status="error"), T0 + i)
        sent += gatherer.due(T0 + i)
    assert [m.group for m in sent] == ["g0", "g1"]
    assert gatherer.next_due() == T0 + 60
    assert gatherer.due(T0 + 59.9) == []
    (summary,) = gatherer.due(T0 + 60)
    assert summary.event == events.SUMMARY
    assert summary.title == "3 more notifications"
    assert summary.text == ("3 more notifications held back by the limit of 2 per minute: "
                            "3 failed (g2, g3, g4)")
    assert summary.task_ids == ("g2:rank2", "g3:rank3", "g4:rank4")
    # The summary took a slot: a burst while the last minute holds two messages is held.
    gatherer.add(phone, events.ERROR, dict(finished(7, group="g7"), status="error"), T0 + 60.5)
    assert gatherer.due(T0 + 60.5) == []
    assert gatherer.next_due() == T0 + 61
    (later,) = gatherer.due(T0 + 61)
    assert later.event == events.SUMMARY and later.task_ids == ("g7:rank7",)


def test_no_rate_limit_with_zero():
    gatherer, phone = Gatherer(), route(group_wait=0, rate_limit=0)
    for i in range(50):
        gatherer.add(phone, events.ERROR, dict(finished(i, group=f"g{i}"), status="error"), T0)
    assert len(gatherer.due(T0)) == 50


def test_a_held_summary_keeps_tasks_in_full_only_up_to_its_cap():
    gatherer, phone = Gatherer(), route(group_wait=0, rate_limit=1)
    for i in range(messages.MAX_TASKS + 20):
        gatherer.add(phone, events.ERROR, dict(finished(i, group=f"g{i}"), status="error"), T0)
    gatherer.due(T0)
    (summary,) = gatherer.due(T0 + 60)
    assert len(summary.task_ids) == messages.MAX_TASKS + 19
    assert len(summary.tasks) == messages.MAX_TASKS


def test_drain_gives_everything_at_once():
    gatherer, phone = Gatherer(), route(group_wait=30, rate_limit=1)
    gatherer.add(phone, events.ERROR, dict(finished(0, group="a"), status="error"), T0)
    gatherer.add(phone, events.ERROR, dict(finished(1, group="b"), status="error"), T0)
    assert len(gatherer.drain(T0 + 1)) == 2 and len(gatherer) == 0


def test_forget_drops_what_waits_for_removed_routes():
    gatherer, phone = Gatherer(), route()
    gatherer.add(phone, events.CLOSE, finished(0), T0)
    gatherer.forget(["other"])
    assert gatherer.due(T0 + 100) == [] and len(gatherer) == 0


def test_words_of_single_task_messages():
    def words(event, served, now=T0 + 600):
        message = messages.burst("r", event, events.group_of(served), [served], T0, now)
        return message.title, message.text

    assert words("close", task("close", desc="epoch loop", created=T0, updated=T0 + 303)) == (
        "train:0 finished", "train:0 finished in 5 min 3 s (epoch loop)")
    assert words("error", task("error", created=T0, updated=T0 + 42, unit="it",
                               last_log="CUDA out of memory")) == (
        "train:0 failed", "train:0 failed after 42 s, at 3/10 it: CUDA out of memory")
    assert words("stalled", task("stale", updated=T0 + 5, stale_at=T0 + 125)) == (
        "train:0 stalled", "train:0 stalled: no update for 2 min, at 3/10")
    assert words("resumed", task("update", n=4, total=None)) == (
        "train:0 resumed", "train:0 resumed, at 4")
    assert words("overdue", task("update", created=T0, overdue=True, expected_duration=300)) == (
        "train:0 overdue", "train:0 overdue: running for 10 min, usually 5 min, at 3/10")


def test_an_error_burst_quotes_the_first_failures_last_lines():
    failures = [dict(finished(i), status="error", last_log=f"boom {i}") for i in range(5)]
    message = messages.burst("r", "error", "train", failures, T0, T0)
    assert message.text == ("train: 5 tasks failed in 2 h 13 min\n"
                            "train:rank0: boom 0\ntrain:rank1: boom 1\ntrain:rank2: boom 2")


def test_a_message_carries_at_most_its_cap_of_tasks_but_counts_all():
    many = [finished(i) for i in range(messages.MAX_TASKS + 5)]
    message = messages.burst("r", "close", "train", many, T0, T0)
    assert len(message.tasks) == messages.MAX_TASKS
    assert len(message.task_ids) == messages.MAX_TASKS + 5
    assert message.title == f"train: {messages.MAX_TASKS + 5} tasks finished"


def test_the_webhook_body_is_exactly_version_1():
    message = messages.burst("phone", "error", "train", [dict(finished(0), status="error")],
                             T0, T0 + 1)
    body = message.body("http://progress.lan:8000/", sent_at=T0 + 2)
    assert list(body) == ["version", "id", "route", "event", "group", "title", "message",
                          "tasks", "dashboard_url", "sent_at"]
    assert body["version"] == 1 and body["route"] == "phone" and body["event"] == "error"
    assert body["group"] == "train" and body["tasks"] == [dict(finished(0), status="error")]
    assert body["dashboard_url"] == "http://progress.lan:8000/" and body["sent_at"] == T0 + 2
    json.dumps(body, allow_nan=False)


def test_the_id_is_stable_and_tells_bursts_apart():
    served = [finished(0)]
    one = messages.burst("phone", "close", "train", served, T0, T0 + 10)
    again = messages.burst("phone", "close", "train", served, T0, T0 + 11)
    assert one.id == again.id
    assert one.id != messages.burst("mail", "close", "train", served, T0, T0 + 10).id
    assert one.id != messages.burst("phone", "close", "train", served, T0 + 1, T0 + 10).id
    assert one.body(None, 1)["id"] == one.body(None, 2)["id"]


def test_a_message_goes_through_a_shared_store_unchanged():
    message = messages.burst("phone", "close", "train", [finished(0)], T0, T0)
    assert messages.Message.from_record(json.loads(json.dumps(message.to_record()))) == message


@pytest.mark.parametrize("seconds, words", [
    (0, "0 s"), (-3, "0 s"), (0.44, "0.4 s"), (1, "1 s"), (42, "42 s"), (59.6, "1 min"),
    (60, "1 min"), (303, "5 min 3 s"), (3600, "1 h"), (2 * 3600 + 13 * 60 + 59, "2 h 13 min"),
    (86400 * 3 + 3600 * 4 + 5, "3 d 4 h"), (86400 + 59, "1 d"),
])
def test_durations_in_words(seconds, words):
    assert humanise(seconds) == words
