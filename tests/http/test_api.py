"""Every endpoint and error code of SPEC section 2, over real HTTP against the application."""

import urllib.parse

import pytest

from progressistad import contract

pytestmark = pytest.mark.gen_test


async def test_post_one_event_then_read_it(api):
    status, _, body = await api.post({"task_id": "job", "desc": "Copy", "n": 5, "total": 10, "totl": 1})
    assert status == 200 and body == {"ok": True, "accepted": 1, "ignored": ["totl"]}
    status, _, task = await api.call("GET", "/tasks/job")
    assert status == 200
    assert {k: task[k] for k in ("task_id", "desc", "n", "total", "status")} == {
        "task_id": "job", "desc": "Copy", "n": 5, "total": 10, "status": "update"}
    assert set(task) == set(contract.TASK_FIELDS)


async def test_partial_updates_keep_previous_values(api, clock):
    await api.post({"task_id": "job", "desc": "Copy", "n": 0, "total": 10, "unit": "B"})
    clock.advance(1)
    await api.post({"task_id": "job", "n": 4})
    _, _, task = await api.call("GET", "/tasks/job")
    assert (task["desc"], task["n"], task["total"], task["unit"]) == ("Copy", 4, 10, "B")
    assert task["rate"] == pytest.approx(4.0) and task["eta"] == pytest.approx(1.5)


async def test_batch_is_applied(api):
    status, _, body = await api.post([{"task_id": f"t{i}", "n": i} for i in range(100)])
    assert status == 200 and body["accepted"] == 100
    _, _, listing = await api.call("GET", "/tasks")
    assert len(listing["tasks"]) == 100 and listing["tasks"]["t42"]["n"] == 42


async def test_batch_with_one_bad_event_applies_none(api):
    await api.post({"task_id": "keep", "n": 1})
    status, _, body = await api.post([{"task_id": "keep", "n": 9}, {"task_id": "new"}, {"task_id": "x", "n": "7"}])
    assert status == 400 and body["index"] == 2 and body["field"] == "n"
    assert "event 2" in body["error"]
    _, _, listing = await api.call("GET", "/tasks")
    assert list(listing["tasks"]) == ["keep"] and listing["tasks"]["keep"]["n"] == 1


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b"{nope", "malformed JSON"),
        (b"", "malformed JSON"),
        (b'{"task_id": "a", "n": NaN}', "field 'n'"),
        (b'{"task_id": "a", "total": Infinity}', "field 'total'"),
        (b'{"task_id": "a", "n": -3}', "field 'n'"),
        (b'{"task_id": "a", "status": "finished"}', "field 'status'"),
        (b'{"n": 3}', "field 'task_id'"),
        (b"[]", "empty batch"),
        (b'"just a string"', "JSON object"),
    ],
)
async def test_bad_bodies_get_400_naming_the_problem(api, raw, fragment):
    status, headers, body = await api.call("POST", "/progress", raw=raw)
    assert status == 400 and fragment in body["error"]
    assert headers["Content-Type"].startswith("application/json")


async def test_meta_token_never_stored(api):
    await api.post({"task_id": "a", "meta": {"_token": "whatever", "rank": 3}})
    _, _, task = await api.call("GET", "/tasks/a")
    assert task["meta"] == {"rank": 3}


async def test_get_unknown_task_is_404_json(api):
    status, _, body = await api.call("GET", "/tasks/missing")
    assert status == 404 and body["error"] == "no such task" and body["task_id"] == "missing"


async def test_task_ids_with_slashes_colons_and_spaces_round_trip(api):
    task_id = "train:rank 0/epoch?x=1"
    await api.post({"task_id": task_id, "n": 1})
    path = "/tasks/" + urllib.parse.quote(task_id, safe="")
    status, _, task = await api.call("GET", path)
    assert status == 200 and task["task_id"] == task_id
    status, _, body = await api.call("DELETE", path)
    assert body == {"removed": True}


async def test_status_filter(api):
    await api.post([{"task_id": "a", "status": "close"}, {"task_id": "b", "status": "error"}, {"task_id": "c"}])
    _, _, body = await api.call("GET", "/tasks?status=close")
    assert list(body["tasks"]) == ["a"]
    _, _, body = await api.call("GET", "/tasks?status=close,error")
    assert set(body["tasks"]) == {"a", "b"}
    status, _, body = await api.call("GET", "/tasks?status=closed")
    assert status == 400 and body["parameter"] == "status"


async def test_delete_one(api):
    await api.post({"task_id": "a"})
    assert (await api.call("DELETE", "/tasks/a"))[2] == {"removed": True}
    assert (await api.call("DELETE", "/tasks/a"))[2] == {"removed": False}
    assert (await api.call("GET", "/tasks/a"))[0] == 404


async def test_bulk_delete_by_status_and_age(api, clock):
    await api.post([{"task_id": "old-closed", "status": "close"}, {"task_id": "old-active"}])
    clock.advance(700)
    await api.post({"task_id": "new-closed", "status": "close"})
    status, _, body = await api.call("DELETE", "/tasks?status=close&older_than=600")
    assert status == 200 and body == {"removed": ["old-closed"]}
    _, _, body = await api.call("GET", "/tasks")
    assert set(body["tasks"]) == {"old-active", "new-closed"}


@pytest.mark.parametrize("query", ["older_than=-5", "older_than=soon", "status=nope", "statsu=close", "",
                                   "token=x"])
async def test_bulk_delete_rejects_bad_filters_and_removes_nothing(api, query):
    await api.post({"task_id": "a", "status": "close"})
    status, _, body = await api.call("DELETE", "/tasks?" + query)
    assert status == 400 and "error" in body
    assert (await api.call("GET", "/tasks/a"))[0] == 200


async def test_bulk_delete_older_than_zero_removes_everything(api, clock):
    await api.post([{"task_id": "a"}, {"task_id": "b", "status": "close"}])
    clock.advance(0.001)
    _, _, body = await api.call("DELETE", "/tasks?older_than=0")
    assert sorted(body["removed"]) == ["a", "b"]


async def test_health(api):
    await api.post({"task_id": "a"})
    status, _, body = await api.call("GET", "/health")
    assert status == 200 and body["status"] == "ok" and body["tasks"] == 1


async def test_metrics_prometheus_text(api):
    await api.post([{"task_id": "a"}, {"task_id": "b", "status": "close"}])
    await api.post({"task_id": "c", "n": -1})
    status, headers, text = await api.call("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    lines = text.splitlines()
    assert 'progressista_tasks{status="update"} 1' in lines
    assert 'progressista_tasks{status="close"} 1' in lines
    assert "progressista_events_accepted_total 2" in lines
    assert 'progressista_events_rejected_total{reason="invalid"} 1' in lines
    assert "progressista_websocket_clients 0" in lines
    assert any(line.startswith("progressista_build_info{") for line in lines)
    for line in lines:
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2


async def test_root_redirects_to_dashboard_keeping_the_query(api):
    status, headers, _ = await api.call("GET", "/")
    assert status in (301, 302) and headers["Location"] == "/static/index.html"
    status, headers, _ = await api.call("GET", "/?token=abc")
    assert headers["Location"] == "/static/index.html?token=abc"


async def test_dashboard_is_served_with_a_strict_csp(api):
    status, headers, text = await api.call("GET", "/static/index.html")
    assert status == 200 and "<html" in text
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp


async def test_unknown_path_and_method(api):
    status, _, body = await api.call("GET", "/nowhere")
    assert status == 404 and body["error"] == "no such path"
    status, _, body = await api.call("PUT", "/tasks", raw=b"{}")
    assert status == 405 and "error" in body


async def test_security_headers_on_api_responses(api):
    _, headers, _ = await api.call("GET", "/tasks")
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["Cache-Control"] == "no-store"


@pytest.mark.settings(max_body_bytes=1000)
async def test_body_over_the_limit_is_413(api):
    status, _, body = await api.call("POST", "/progress", raw=b"[" + b" " * 2000 + b"]")
    assert status == 413 and body["limit"] == 1000
    status, _, _ = await api.post({"task_id": "small"})
    assert status == 200


@pytest.mark.settings(max_body_bytes=1000)
async def test_chunked_body_over_the_limit_is_413(http_client, base_url):
    async def producer(write):
        for _ in range(10):
            await write(b" " * 500)

    response = await http_client.fetch(base_url + "/progress", method="POST", body_producer=producer,
                                       raise_error=False)
    assert response.code == 413


@pytest.mark.settings(max_tasks=2)
async def test_task_limit_evicts_finished_then_answers_503(api):
    await api.post([{"task_id": "done", "status": "close"}, {"task_id": "active"}])
    status, _, _ = await api.post({"task_id": "third"})
    assert status == 200
    assert (await api.call("GET", "/tasks/done"))[0] == 404
    status, headers, body = await api.post({"task_id": "fourth"})
    assert status == 503 and int(headers["Retry-After"]) >= 1 and "max-tasks" in body["error"]
    assert (await api.call("GET", "/tasks/fourth"))[0] == 404


@pytest.mark.settings(stale_seconds=10, retention_seconds=30, max_task_age=100)
async def test_cleanup_marks_stale_and_purges(api, ctx, clock):
    await api.post([{"task_id": "idle"}, {"task_id": "done", "status": "close"}])
    clock.advance(11)
    await ctx.service.sweep()
    _, _, task = await api.call("GET", "/tasks/idle")
    assert task["status"] == "stale" and task["stale_at"] == clock.now
    clock.advance(20)
    await ctx.service.sweep()
    assert (await api.call("GET", "/tasks/done"))[0] == 404
    clock.advance(70)
    await ctx.service.sweep()
    assert (await api.call("GET", "/tasks"))[2] == {"tasks": {}}


async def test_get_tasks_answers_every_change_at_once_though_its_answer_is_kept(api, ctx, clock):
    async def tasks():
        status, headers, body = await api.call("GET", "/tasks")
        assert status == 200 and "Etag" not in headers
        return body["tasks"]

    await api.post([{"task_id": "a", "n": 1}, {"task_id": "b", "n": 1}])
    assert {k: t["n"] for k, t in (await tasks()).items()} == {"a": 1, "b": 1}
    assert await tasks() == await tasks()
    await api.post({"task_id": "a", "n": 2})
    assert (await tasks())["a"]["n"] == 2
    await api.call("DELETE", "/tasks/b")
    assert set(await tasks()) == {"a"}
    clock.advance(11)
    ctx.service.policy = type(ctx.service.policy)(stale_seconds=10)
    await ctx.service.sweep()
    assert (await tasks())["a"]["status"] == "stale"
