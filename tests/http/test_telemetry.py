"""Telemetry over HTTP (SPEC section 15): the fields' limits as 400s, the served fields, the log
tail and series routes, what the WebSocket carries, and the budget in /metrics."""

import asyncio
import json
import urllib.parse

import pytest
import tornado.websocket

from progressistad import contract

pytestmark = pytest.mark.gen_test(timeout=30)

LONG_LINE = "é" * (contract.LOG_LINE_MAX_BYTES // 2 + 1)
"""Fewer characters than the limit, more bytes of UTF-8."""


def metrics(count, prefix="m"):
    return {f"{prefix}{index}": float(index) for index in range(count)}


@pytest.mark.parametrize("field, value, says", [
    ("metrics", {"loss": "low"}, "finite number"),
    ("metrics", {"loss": float("inf")}, "finite number"),
    ("metrics", {"k" * (contract.METRIC_KEY_MAX_CHARS + 1): 1}, "characters"),
    ("metrics", {"": 1}, "characters"),
    ("metrics", [1, 2], "object"),
    ("postfix", "p" * (contract.POSTFIX_MAX_CHARS + 1), str(contract.POSTFIX_MAX_CHARS)),
    ("postfix", 7, "string"),
    ("log", ["line"] * (contract.LOG_MAX_LINES + 1), f"at most {contract.LOG_MAX_LINES}"),
    ("log", "\n".join(["line"] * (contract.LOG_MAX_LINES + 1)), f"at most {contract.LOG_MAX_LINES}"),
    ("log", LONG_LINE, "bytes of UTF-8"),
    ("log", ["fine", 3], "strings"),
])
async def test_a_bad_telemetry_field_is_a_400_naming_field_and_index_and_applies_nothing(
        api, field, value, says):
    raw = json.dumps([{"task_id": "ok", "n": 1}, {"task_id": "bad", field: value}])
    status, _, body = await api.call("POST", "/progress", raw=raw.encode())
    assert status == 400, body
    assert body["field"] == field and body["index"] == 1 and says in body["error"], body
    assert (await api.call("GET", "/tasks"))[2]["tasks"] == {}


async def test_the_largest_values_of_each_field_are_taken(api):
    event = {"task_id": "full", "metrics": metrics(contract.METRICS_MAX_KEYS),
             "postfix": "p" * contract.POSTFIX_MAX_CHARS,
             "log": ["é" * (contract.LOG_LINE_MAX_BYTES // 2)] * contract.LOG_MAX_LINES}
    status, _, body = await api.post(event)
    assert status == 200 and body == {"ok": True, "accepted": 1, "ignored": []}
    _, _, task = await api.call("GET", "/tasks/full")
    assert task["metrics"] == event["metrics"] and task["postfix"] == event["postfix"]
    assert task["log_lines"] == contract.LOG_MAX_LINES and task["last_log"] == event["log"][-1]


async def test_the_seventeenth_metric_is_a_400_naming_field_and_index(api, ctx):
    assert (await api.post({"task_id": "job", "metrics": metrics(contract.METRICS_MAX_KEYS)}))[0] == 200
    status, _, body = await api.post([{"task_id": "other", "n": 3},
                                      {"task_id": "job", "n": 1, "metrics": {"one_more": 1}}])
    assert status == 400 and body["field"] == "metrics" and body["index"] == 1, body
    assert str(contract.METRICS_MAX_KEYS) in body["error"] and "event 1" in body["error"]
    _, _, listing = await api.call("GET", "/tasks")
    assert list(listing["tasks"]) == ["job"] and listing["tasks"]["job"]["n"] == 0
    assert ctx.metrics.rejected["invalid"] == 2
    status, _, body = await api.post({"task_id": "job", "metrics": {"m0": None, "one_more": 1}})
    assert status == 200, body
    _, _, task = await api.call("GET", "/tasks/job")
    assert len(task["metrics"]) == contract.METRICS_MAX_KEYS and "m0" not in task["metrics"]


async def test_one_event_with_seventeen_metrics_names_index_zero(api):
    status, _, body = await api.post({"task_id": "job", "metrics": metrics(contract.METRICS_MAX_KEYS + 1)})
    assert status == 400 and body["field"] == "metrics" and body["index"] == 0, body


async def test_served_fields_merge_metrics_keep_the_postfix_and_count_the_tail(api):
    await api.post({"task_id": "job", "metrics": {"loss": 0.9, "acc": 0.1}, "postfix": "loss=0.9",
                    "log": "epoch 1\nepoch 2\n"})
    await api.post({"task_id": "job", "metrics": {"loss": 0.5, "acc": None}, "n": 3})
    _, _, task = await api.call("GET", "/tasks/job")
    assert task["metrics"] == {"loss": 0.5} and task["postfix"] == "loss=0.9"
    assert task["last_log"] == "epoch 2" and task["log_lines"] == 2
    assert "log" not in task and set(task) == set(contract.TASK_FIELDS)


async def test_the_log_route_serves_the_tail_oldest_first(api):
    lines = [f"line {index}" for index in range(contract.LOG_TAIL_LINES + 20)]
    for start in range(0, len(lines), contract.LOG_MAX_LINES):
        await api.post({"task_id": "job", "log": lines[start:start + contract.LOG_MAX_LINES]})
    status, headers, body = await api.call("GET", "/tasks/job/log")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert body == {"task_id": "job", "lines": lines[-contract.LOG_TAIL_LINES:]}


async def test_a_task_without_log_lines_serves_an_empty_tail_and_series(api):
    await api.post({"task_id": "quiet"})
    assert (await api.call("GET", "/tasks/quiet/log"))[2] == {"task_id": "quiet", "lines": []}
    status, _, series = await api.call("GET", "/tasks/quiet/series")
    assert status == 200 and set(series) == {"task_id", "t", "n", "rate", "metrics"}


@pytest.mark.parametrize("route", ["log", "series"])
async def test_an_unknown_task_is_a_404_on_log_and_series(api, route):
    status, _, body = await api.call("GET", f"/tasks/missing/{route}")
    assert status == 404 and body == {"error": "no such task", "task_id": "missing"}


@pytest.mark.parametrize("task_id", ["a/b", "train:rank 0/epoch?x=1", "ends/log", "x/series"])
async def test_ids_holding_a_slash_reach_log_series_and_the_task_percent_encoded(api, task_id):
    await api.post({"task_id": task_id, "log": "hello"})
    path = "/tasks/" + urllib.parse.quote(task_id, safe="")
    assert (await api.call("GET", path))[2]["task_id"] == task_id
    assert (await api.call("GET", path + "/log"))[2] == {"task_id": task_id, "lines": ["hello"]}
    assert (await api.call("GET", path + "/series"))[2]["task_id"] == task_id


async def until(predicate, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value or loop.time() > deadline:
            return value
        await asyncio.sleep(0.01)


async def test_each_broadcast_flush_adds_a_point_to_the_series_of_the_tasks_it_changed(api, clock):
    points = []
    for step in range(4):
        clock.advance(1)
        await api.post({"task_id": "job", "n": 10 * (step + 1), "metrics": {"loss": 1.0 / (step + 1)}})

        async def sampled(count=step + 1):
            series = (await api.call("GET", "/tasks/job/series"))[2]
            return series if len(series["t"]) >= count else None

        points.append(await until(sampled))
    series = points[-1]
    assert series["task_id"] == "job" and len(series["t"]) == 4
    assert series["t"] == sorted(series["t"]) and series["t"][-1] == clock.now
    assert series["n"] == [10, 20, 30, 40]
    assert series["metrics"]["loss"] == pytest.approx([1.0, 0.5, 1 / 3, 0.25])
    assert series["rate"][-1] == (await api.call("GET", "/tasks/job"))[2]["rate"] > 0
    assert (await api.call("GET", "/tasks/other/series"))[0] == 404


async def test_websocket_deltas_carry_the_served_fields_never_series_or_tails(api, clock):
    conn = await tornado.websocket.websocket_connect(api.ws_url + "/ws?protocol=delta")
    snapshot = json.loads(await conn.read_message())
    assert snapshot["type"] == "snapshot"
    sent = [f"line {index}" for index in range(30)]
    await api.post({"task_id": "job", "n": 1, "metrics": {"loss": 0.4}, "postfix": "loss=0.4",
                    "log": sent})
    clock.advance(1)
    await api.post({"task_id": "job", "n": 2})
    seen = {}
    while seen.get("n") != 2:
        message = json.loads(await asyncio.wait_for(conn.read_message(), 5))
        raw = json.dumps(message)
        assert "line 0" not in raw and '"lines"' not in raw and '"t"' not in raw
        if message["type"] == "delta":
            seen = message["tasks"].get("job", seen)
    assert set(seen) == set(contract.TASK_FIELDS)
    assert (seen["metrics"], seen["postfix"], seen["last_log"], seen["log_lines"]) == (
        {"loss": 0.4}, "loss=0.4", "line 29", 30)
    conn.close()


@pytest.mark.settings(telemetry_budget_bytes=60_000)
async def test_metrics_report_telemetry_held_and_trimmed_within_the_budget(api, store_kind):
    if store_kind == "redis":
        pytest.skip("with Redis the tails are Redis's, the budget holds a daemon's series")
    for task in range(40):
        await api.post({"task_id": f"t{task}", "log": ["x" * 200] * contract.LOG_MAX_LINES})
    _, _, text = await api.call("GET", "/metrics")
    values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines() if line.startswith("progressista_telemetry")}
    held = values['progressista_telemetry_bytes{kind="tails"}']
    assert 0 < held <= 60_000
    assert values['progressista_telemetry_trimmed_bytes_total{kind="tails"}'] > 0
    assert 'progressista_telemetry_bytes{kind="series"}' in values
    assert 'progressista_telemetry_trimmed_bytes_total{kind="series"}' in values
    _, _, listing = await api.call("GET", "/tasks")
    assert listing["tasks"]["t0"]["log_lines"] == 0 and listing["tasks"]["t39"]["log_lines"] == 50
