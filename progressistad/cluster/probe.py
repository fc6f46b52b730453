"""A bounded ping that tells /health within about a second that Redis stopped answering.

Writes notice a lost Redis by their own timeout (SOCKET_TIMEOUT), and the follower only
when its blocking read ends; a frozen Redis (stopped, or a host that drops packets) would
look healthy to a proxy's health check until then.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Optional

from progressistad.cluster.link import Link

log = logging.getLogger("progressistad.cluster")

PROBE_INTERVAL = 0.5
"""Seconds between two pings."""
PROBE_TIMEOUT = 1.0
"""Seconds a ping may go unanswered before Redis counts as lost."""


class FrozenRedis(TimeoutError):
    """Redis accepted the connection but did not answer a ping in time."""


class LinkProbe:
    """Pings Redis every PROBE_INTERVAL; marks the link down when an answer is late.

    It only ever marks the link down: the follower brings it up again, after resyncing the
    mirror, so the dashboards never miss what changed while Redis was away. A late ping is
    left to finish by its own socket timeout (never cancelled: redis-py 4.3 swallows a
    cancel that lands in a read), and no second ping starts while one is in flight.
    """

    def __init__(self, ping: Callable[[], Awaitable[object]], link: Link,
                 interval: float = PROBE_INTERVAL, timeout: float = PROBE_TIMEOUT) -> None:
        self._ping = ping
        self._link = link
        self._interval = interval
        self._timeout = timeout
        self._task: Optional["asyncio.Task[None]"] = None
        self._in_flight: Optional["asyncio.Future[object]"] = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=self._timeout)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check()

    async def check(self) -> None:
        """One probe: wait up to the timeout for the ping in flight, or a new one."""
        if self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.ensure_future(self._ping())
            self._in_flight.add_done_callback(_consume)
        await asyncio.wait([self._in_flight], timeout=self._timeout)
        if not self._in_flight.done():
            self._link.down(FrozenRedis(f"no answer to a ping within {self._timeout:g}s"),
                            resync=True)
        elif self._in_flight.exception() is not None:
            self._link.down(self._in_flight.exception(), resync=True)


def _consume(future: "asyncio.Future[object]") -> None:
    """Retrieve a finished ping's exception so that asyncio does not log it as unhandled."""
    if not future.cancelled():
        future.exception()
