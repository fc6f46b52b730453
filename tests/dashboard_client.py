"""A dashboard stand-in for tests against real daemons: a WebSocket client on its own thread."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Callable, Dict, List, Optional

import tornado.websocket


class Dashboard:
    """Connects to `/ws`, keeps every message and the task state they add up to."""

    def __init__(self, url: str, connect_timeout: float = 10.0) -> None:
        self.url = url
        self.messages: List[Dict[str, Any]] = []
        self.tasks: Dict[str, Dict[str, Any]] = {}
        self.closed = False
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._error: Optional[BaseException] = None
        self._loop = asyncio.new_event_loop()
        self._conn: Any = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._connected.wait(connect_timeout):
            raise AssertionError(f"no WebSocket connection to {url} after {connect_timeout}s")
        if self._error is not None:
            raise AssertionError(f"WebSocket connection to {url} failed: {self._error}")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._read())

    async def _read(self) -> None:
        try:
            self._conn = await tornado.websocket.websocket_connect(self.url, connect_timeout=10)
        except Exception as error:  # reported to the constructor
            self._error = error
            self._connected.set()
            return
        self._connected.set()
        while True:
            text = await self._conn.read_message()
            if text is None:
                with self._lock:
                    self.closed = True
                return
            self._record(json.loads(text))

    def _record(self, message: Dict[str, Any]) -> None:
        with self._lock:
            self.messages.append(message)
            if message.get("type") == "delta":
                self.tasks.update(message["tasks"])
                for task_id in message["removed"]:
                    self.tasks.pop(task_id, None)
            else:
                self.tasks = dict(message["tasks"])

    def state(self) -> Dict[str, Dict[str, Any]]:
        with self._lock:
            return {task_id: dict(task) for task_id, task in self.tasks.items()}

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def wait_until(self, predicate: Callable[[Dict[str, Dict[str, Any]]], bool],
                   timeout: float = 15.0, what: str = "dashboard state") -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state()
            if predicate(state):
                return state
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; dashboard has "
                             f"{json.dumps(self.state())[:500]}")

    def close(self) -> None:
        if self._conn is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._conn.close)
        self._thread.join(5)
