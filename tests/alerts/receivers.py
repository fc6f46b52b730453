"""Real receivers on 127.0.0.1, each on a thread of its own: an HTTP server that behaves well
or badly by path, and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import tornado.httpserver
import tornado.web

from tests.support import free_port

BIG_BYTES = 100 * 1024 * 1024
CHUNK = b"x" * (1024 * 1024)


@dataclass
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    body: bytes
    at: float
    """time.monotonic() when the request arrived."""

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Sent:
    """What the receiver managed to write of a large answer before the client hung up."""

    bytes: int = 0
    finished: bool = False


class _Handler(tornado.web.RequestHandler):
    def initialize(self, receiver: "HttpReceiver") -> None:
        self.receiver = receiver

    def check_xsrf_cookie(self) -> None:
        pass

    async def post(self, mode: str) -> None:
        self.receiver.record(self.request)
        await getattr(self, "_" + (mode or "ok"))()

    async def _ok(self) -> None:
        status = int(self.get_argument("status", "200"))
        self.set_status(status)
        if self.get_argument("retry_after", None):
            self.set_header("Retry-After", self.get_argument("retry_after"))
        self.finish(None if status == 204 else "ok")

    async def _slack(self) -> None:
        """Slack's incoming webhook: 200 with the text `ok`."""
        self.finish("ok")

    async def _discord(self) -> None:
        """Discord's webhook without ?wait=true: 204."""
        self.set_status(204)
        self.finish()

    async def _apprise(self) -> None:
        """Where an Apprise json:// route posts."""
        self.finish("ok")

    async def _fail(self) -> None:
        self.set_status(500)
        self.finish("down")

    async def _hang(self) -> None:
        await asyncio.sleep(3600)

    async def _slow(self) -> None:
        await asyncio.sleep(float(self.get_argument("seconds")))
        self.finish("ok")

    async def _reset(self) -> None:
        stream = self.request.connection.detach()
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stream.close()

    async def _redirect(self) -> None:
        self.redirect(self.request.path, status=302)

    async def _big(self) -> None:
        """A 100 MB answer: with a Content-Length, chunked, or until the connection closes."""
        how = self.get_argument("how", "length")
        status = int(self.get_argument("status", "200"))
        stream = self.request.connection.detach()
        head = f"HTTP/1.1 {status} Whatever\r\n"
        if how == "length":
            head += f"Content-Length: {BIG_BYTES}\r\n"
        elif how == "chunked":
            head += "Transfer-Encoding: chunked\r\n"
        else:
            head += "Connection: close\r\n"
        sent = self.receiver.big = Sent()
        try:
            await stream.write((head + "\r\n").encode())
            while sent.bytes < BIG_BYTES:
                piece = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if how == "chunked" else CHUNK
                await stream.write(piece)
                sent.bytes += len(CHUNK)
            sent.finished = True
        except Exception:
            pass
        finally:
            stream.close()


class _NtfyHandler(tornado.web.RequestHandler):
    """ntfy's publish API (POST /TOPIC, the text as the body): the JSON of the message kept."""

    def initialize(self, receiver: "HttpReceiver") -> None:
        self.receiver = receiver

    def check_xsrf_cookie(self) -> None:
        pass

    def post(self, topic: str) -> None:
        self.receiver.record(self.request)
        self.write({"id": f"m{len(self.receiver.requests)}", "time": int(time.time()),
                    "event": "message", "topic": topic,
                    "title": self.request.headers.get("Title"),
                    "message": self.request.body.decode("utf-8")})


class HttpReceiver:
    """A Tornado server on its own thread and loop; paths: /ok (?status=, ?retry_after=),
    /fail (500), /hang, /slow?seconds=, /reset, /redirect, /big?how=length|chunked|close&status=,
    /slack and /discord (as those webhooks answer), /apprise, /t-TOPIC (ntfy's publish API)."""

    def __init__(self, port: Optional[int] = None) -> None:
        self.port = port or free_port()
        self.requests: List[Received] = []
        self.big: Optional[Sent] = None
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server: Optional[tornado.httpserver.HTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    def url(self, path: str = "ok", scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def record(self, request: Any) -> None:
        with self._lock:
            self.requests.append(Received(
                request.method, request.path,
                {k: v[-1].decode() for k, v in request.query_arguments.items()},
                dict(request.headers), request.body, time.monotonic()))

    def received(self) -> List[Received]:
        with self._lock:
            return list(self.requests)

    def start(self) -> "HttpReceiver":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.start()
        assert ready.wait(10), "receiver did not start"
        return self

    def _serve(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        async def listen() -> None:
            app = tornado.web.Application([(r"/(\w*)", _Handler, {"receiver": self}),
                                           (r"/(t-[-\w]+)", _NtfyHandler, {"receiver": self})])
            self._server = tornado.httpserver.HTTPServer(app)
            self._server.listen(self.port, "127.0.0.1")

        loop.run_until_complete(listen())
        ready.set()
        loop.run_forever()
        loop.close()

    def stop(self) -> None:
        """Stop listening and drop open connections: the receiver is down."""
        if self._loop is None:
            return
        loop = self._loop

        async def shut() -> None:
            assert self._server is not None
            self._server.stop()
            await self._server.close_all_connections()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shut(), loop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop = None


@dataclass
class Mail:
    sender: str
    recipients: List[str]
    data: bytes
    at: float = field(default_factory=time.monotonic)


class SmtpReceiver:
    """aiosmtpd on a thread; `reply` set to e.g. "451 try later" refuses each message so.
    `stop()` then `start()` brings it back on the same port (a controller runs once)."""

    def __init__(self, **controller: Any) -> None:
        self.mails: List[Mail] = []
        self.reply: Optional[str] = None
        self.port = free_port()
        self._options = controller
        self.controller: Optional[Any] = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply:
            return self.reply
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"

    def start(self) -> "SmtpReceiver":
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, **self._options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
