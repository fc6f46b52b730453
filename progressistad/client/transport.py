"""One keep-alive HTTP connection to the daemon, standard library only."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

USER_AGENT = "progressista-client"


@dataclass(frozen=True)
class Response:
    """What the daemon answered: status, headers of interest and the parsed JSON body."""

    status: int
    body: Any
    retry_after: Optional[float] = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> str:
        """The daemon's error message, or the bare status."""
        if isinstance(self.body, dict) and self.body.get("error"):
            return f"{self.status}: {self.body['error']}"
        return f"HTTP {self.status}"


class Connection:
    """A reusable HTTP/1.1 connection to one daemon; reconnects once when a kept-alive socket went away."""

    def __init__(self, url: str, timeout: float, headers: Optional[Mapping[str, str]] = None) -> None:
        parts = urlsplit(url)
        self.scheme = parts.scheme
        self.netloc = parts.netloc.rpartition("@")[2]
        self.prefix = parts.path.rstrip("/")
        self.query = parts.query
        self.timeout = timeout
        self.headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._conn: Optional[http.client.HTTPConnection] = None

    def request(self, method: str, path: str = "", payload: Any = None,
                query: str = "") -> Response:
        """Send one request to `prefix + path`; raises OSError or http.client errors when unreachable."""
        body = None if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        target = self._target(path, query)
        reused = self._conn is not None
        try:
            return self._exchange(method, target, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
            # The daemon closed an idle kept-alive socket: one fresh attempt.
            return self._exchange(method, target, body, headers)
        except BaseException:
            self.close()
            raise

    def _target(self, path: str, query: str) -> str:
        queries = "&".join(q for q in (self.query, query) if q)
        return (self.prefix + path or "/") + (f"?{queries}" if queries else "")

    def _exchange(self, method: str, target: str, body: Optional[bytes], headers: dict) -> Response:
        conn = self._connection()
        conn.request(method, target, body=body, headers=headers)
        reply = conn.getresponse()
        raw = reply.read()
        if reply.will_close:
            self.close()
        return Response(reply.status, _decode(raw), _retry_after(reply.getheader("Retry-After")))

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            self._conn = cls(self.netloc, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except OSError:
                pass


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


def _retry_after(raw: Optional[str]) -> Optional[float]:
    try:
        return float(raw) if raw else None
    except ValueError:
        return None
