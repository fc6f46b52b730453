"""Helpers of the notification tests: a fast retry policy, waiting, the loop's lag, sinks."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict

from progressistad.alerts.delivery import RetryPolicy, Target
from progressistad.alerts.routes import RouteConfig
from progressistad.alerts.sinks import Outbound, http, make_sink

FAST = RetryPolicy(first=0.05, most=0.2, give_up_after=20.0, timeout=2.0)
"""Backoff shortened so that a test waits for tenths of seconds, not minutes."""
DASHBOARD = "http://progress.lan:8000/"


async def wait_until(predicate: Callable[[], object], timeout: float = 10.0,
                     step: float = 0.02) -> None:
    """Poll `predicate` on the loop until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s")
        await asyncio.sleep(step)


class LoopLag:
    """The longest the loop took to run a callback due every `interval` seconds, while running."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.worst = 0.0
        self._task = None

    def __enter__(self) -> "LoopLag":
        self._task = asyncio.ensure_future(self._tick())
        return self

    def __exit__(self, *exc) -> None:
        self._task.cancel()

    async def _tick(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.interval)
            self.worst = max(self.worst, time.monotonic() - before - self.interval)


def outbound(timeout: float = 2.0) -> Outbound:
    """An Outbound for tests; build it on the loop, close its client and pool after."""
    return Outbound(http=http.client(), executor=ThreadPoolExecutor(2), dashboard_url=DASHBOARD,
                    hostname="box", user_agent="progressistad/test", timeout=timeout)


def targets(config: RouteConfig, out: Outbound) -> Dict[str, Target]:
    return {route.name: Target(route, make_sink(route, config.smtp, out))
            for route in config.routes}
