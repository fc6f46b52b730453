"""WS /ws: snapshot on connect, coalescing, the delta protocol, backpressure, stall reaping."""

import asyncio
import base64
import json
import os
import socket

import pytest
import tornado.websocket

pytestmark = pytest.mark.gen_test(timeout=30)


async def connect(api, query=""):
    return await tornado.websocket.websocket_connect(api.ws_url + "/ws" + query)


async def read_json(conn, timeout=5.0):
    message = await asyncio.wait_for(conn.read_message(), timeout)
    assert message is not None, f"socket closed ({conn.close_code})"
    return json.loads(message)


async def read_until(conn, predicate, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen = []
    while True:
        message = await read_json(conn, max(0.01, deadline - loop.time()))
        seen.append(message)
        if predicate(message):
            return seen


async def test_default_protocol_sends_full_snapshots(api, ctx):
    await ctx.service.ingest([{"task_id": "a", "n": 1}])
    conn = await connect(api)
    first = await read_json(conn)
    assert list(first) == ["tasks"] and first["tasks"]["a"]["n"] == 1
    await api.post({"task_id": "b", "n": 2})
    second = await read_json(conn)
    assert set(second["tasks"]) == {"a", "b"}


async def test_delta_protocol_seq_upserts_and_removals(api, ctx):
    await ctx.service.ingest([{"task_id": "a"}, {"task_id": "gone"}])
    conn = await connect(api, "?protocol=delta")
    snapshot = await read_json(conn)
    assert snapshot["type"] == "snapshot" and set(snapshot["tasks"]) == {"a", "gone"}
    seq = snapshot["seq"]
    await api.post({"task_id": "a", "n": 5})
    delta = await read_json(conn)
    assert delta == {"type": "delta", "seq": seq + 1, "tasks": {"a": delta["tasks"]["a"]}, "removed": []}
    assert delta["tasks"]["a"]["n"] == 5
    await api.call("DELETE", "/tasks/gone")
    delta = await read_json(conn)
    assert delta["seq"] == seq + 2 and delta["removed"] == ["gone"] and delta["tasks"] == {}


@pytest.mark.parametrize("tasks", [3, 1000])  # frames with 16-bit and 64-bit lengths
async def test_messages_of_every_frame_size_arrive_whole_on_both_protocols(api, ctx, tasks):
    events = [{"task_id": f"t{i}", "desc": "x" * 20} for i in range(tasks)]
    await ctx.service.ingest(events)
    plain, delta = await connect(api), await connect(api, "?protocol=delta")
    first = [await read_json(plain), await read_json(delta)]
    assert all(len(message["tasks"]) == tasks for message in first)
    await api.post([dict(event, n=7) for event in events])
    messages = [await read_json(plain), await read_json(delta)]
    for message in messages:
        assert len(message["tasks"]) == tasks and all(t["n"] == 7 for t in message["tasks"].values())
    sizes = sorted(len(json.dumps(message)) for message in first + messages)
    assert 126 <= sizes[0] and sizes[-1] <= 65535 if tasks == 3 else sizes[0] > 65535


@pytest.mark.settings(broadcast_interval=0.5)
async def test_hundreds_of_events_coalesce_into_a_handful_of_messages(api):
    conn = await connect(api, "?protocol=delta")
    await read_json(conn)
    for n in range(300):
        await api.post({"task_id": "busy", "n": n})
    messages = await read_until(conn, lambda m: m["tasks"].get("busy", {}).get("n") == 299, timeout=15)
    assert len(messages) <= 8, len(messages)
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_sweep_changes_reach_dashboards(api, ctx, clock):
    conn = await connect(api, "?protocol=delta")
    await read_json(conn)
    await ctx.service.ingest([{"task_id": "idle"}])
    await read_json(conn)
    clock.advance(10**6)
    ctx.service.policy = type(ctx.service.policy)(stale_seconds=10)
    await ctx.service.sweep()
    delta = await read_json(conn)
    assert delta["tasks"]["idle"]["status"] == "stale"


async def test_dashboard_count_in_health(api):
    conns = [await connect(api) for _ in range(3)]
    for conn in conns:
        await read_json(conn)
    assert (await api.call("GET", "/health"))[2]["dashboards"] == 3
    for conn in conns:
        conn.close()


def raw_websocket_that_never_reads(port):
    """A real client that completes the handshake, then never reads again."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (f"GET /ws?protocol=delta HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    )
    return sock


async def watchers_connected(ctx, count):
    while len(ctx.hub) < count:
        await asyncio.sleep(0.01)


async def post_bulky_round(api, round_, tasks=200):
    """One batch that changes `tasks` tasks carrying 1 kB each: enough to fill socket buffers."""
    await api.post([{"task_id": f"t{i}", "n": round_, "desc": "x" * 1000} for i in range(tasks)])
    await asyncio.sleep(0.02)


def queued_bytes(handler):
    """Bytes the server holds for one WebSocket peer (IOStream internals, tornado 6.x)."""
    return len(handler.ws_connection.stream._write_buffer)


@pytest.mark.settings(broadcast_interval=0.01, ws_stall_timeout=3600)
async def test_a_watcher_that_never_reads_is_skipped_not_queued(api, ctx, http_port):
    stuck = raw_websocket_that_never_reads(http_port)
    healthy = await connect(api, "?protocol=delta")
    await read_json(healthy)
    await watchers_connected(ctx, 2)
    for round_ in range(40):
        await post_bulky_round(api, round_)
    await api.post({"task_id": "t0", "n": 10**6})
    await read_until(healthy, lambda m: m.get("tasks", {}).get("t0", {}).get("n") == 10**6, timeout=10)
    assert ctx.hub.stats.skipped_busy > 0
    snapshot_size = len(json.dumps(ctx.service.store.snapshot()))
    unsent = [queued_bytes(s) for s in ctx.hub.subscribers()]
    assert max(unsent) > 0, "expected the stuck watcher to have unsent data"
    assert max(unsent) <= 2 * snapshot_size + 65536, (max(unsent), snapshot_size)
    stuck.close()


@pytest.mark.settings(broadcast_interval=0.01, ws_stall_timeout=0.5)
async def test_a_stalled_watcher_is_closed(api, ctx, http_port):
    stuck = raw_websocket_that_never_reads(http_port)
    await watchers_connected(ctx, 1)
    for round_ in range(60):
        await post_bulky_round(api, round_)
        ctx.hub.reap()
        if len(ctx.hub) == 0:
            break
    assert len(ctx.hub) == 0 and ctx.hub.stats.closed_stalled == 1
    stuck.close()


# ---- heartbeats (SPEC 3): the delta protocol hears something at least once a period


@pytest.mark.settings(ws_heartbeat_interval=0.3)
async def test_a_silent_delta_watcher_gets_a_heartbeat_with_the_last_seq(api):
    conn = await connect(api, "?protocol=delta")
    snapshot = await read_json(conn)
    await api.post({"task_id": "a", "n": 1})
    delta = await read_json(conn)
    assert delta["type"] == "delta" and delta["seq"] == snapshot["seq"] + 1
    loop = asyncio.get_running_loop()
    delta_at = loop.time()
    beat = await read_json(conn, timeout=3)
    assert beat == {"type": "heartbeat", "seq": delta["seq"]}
    assert loop.time() - delta_at >= 0.25, "a heartbeat came before a period of silence"
    again = await read_json(conn, timeout=3)
    assert again == beat, "heartbeats do not move seq"
    await api.post({"task_id": "a", "n": 2})
    after = await read_json(conn)
    assert after["type"] == "delta" and after["seq"] == delta["seq"] + 1


@pytest.mark.settings(ws_heartbeat_interval=0.5)
async def test_no_heartbeat_while_deltas_flow(api):
    conn = await connect(api, "?protocol=delta")
    await read_json(conn)
    loop = asyncio.get_running_loop()
    seen = []
    deadline = loop.time() + 2.0
    n = 0
    while loop.time() < deadline:
        n += 1
        await api.post({"task_id": "busy", "n": n})
        seen.append(await read_json(conn))
        await asyncio.sleep(0.05)
    assert len(seen) > 10 and {m["type"] for m in seen} == {"delta"}


@pytest.mark.settings(ws_heartbeat_interval=0.2)
async def test_the_snapshot_protocol_gets_no_heartbeat(api, ctx):
    plain = await connect(api)
    await read_json(plain)
    delta = await connect(api, "?protocol=delta")
    await read_json(delta)
    assert (await read_json(delta, timeout=3))["type"] == "heartbeat"
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(plain.read_message(), 1.0)
    assert ctx.hub.stats.heartbeats >= 1
