"""The server's own accept loop: the connection limit's 503, and 413s that drain the body."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.gen_test(timeout=30)

MIB = 1024 * 1024


@pytest.fixture
def port(http_server, http_port):
    """The port of the server under test, started (`http_port` alone starts nothing)."""
    return http_port


async def open_connections(port, count):
    return [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]


async def until(predicate, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def close_all(connections):
    for _, writer in connections:
        writer.close()


@pytest.mark.settings(max_connections=3)
async def test_a_connection_over_the_limit_gets_a_clear_503_and_is_closed(api, ctx, port):
    held = await open_connections(port, 3)
    try:
        await until(lambda: ctx.metrics.connections.open == 3)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503 "), answer
        for header in (b"Retry-After: 1", b"Connection: close", b"Content-Type: application/json",
                       b"X-Content-Type-Options: nosniff"):
            assert header in head.split(b"\r\n"), head
        assert b'"max_connections": 3' in body and b"too many connections" in body
    finally:
        close_all(held)
    await until(lambda: ctx.metrics.connections.open == 0)
    status, _, text = await api.call("GET", "/metrics")
    assert status == 200
    lines = text.splitlines()
    assert "progressista_connections_refused_total 1" in lines
    assert "progressista_connections_max 3" in lines
    assert "progressista_connections 1" in lines, "the scrape's own connection"


async def post_whole_body(port, head, body, piece=256 * 1024):
    """Send `head` and all of `body` before reading, as urllib does; the answer and EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    for start in range(0, len(body), piece):
        writer.write(body[start:start + piece])
        await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


@pytest.mark.settings(max_body_bytes=1000)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_client_that_sends_all_of_a_5_mb_body_reads_the_413(ctx, port, framing):
    size = 5 * MIB
    if framing == "content-length":
        head = (f"POST /progress HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n").encode()
        body = b"x" * size
    else:
        head = b"POST /progress HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunk = b"x" * 65536
        body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (size // len(chunk)) + b"0\r\n\r\n"
    answer = await post_whole_body(port, head, body)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"Connection: close" in answer and b"max-body-bytes" in answer
    await until(lambda: ctx.metrics.connections.open == 0)


@pytest.mark.settings(max_body_bytes=1000, body_timeout=0.5)
async def test_a_refused_body_is_drained_no_longer_than_the_body_timeout(ctx, port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST /progress HTTP/1.1\r\nHost: x\r\nContent-Length: {5 * MIB}\r\n\r\n".encode()
                 + b"x" * 1000)
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 413 ")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await until(lambda: ctx.metrics.connections.open == 0, timeout=5)
    assert loop.time() - started < 2, "the drain outlived --body-timeout"
    writer.close()
