"""Runs in Redis, so that every daemon of a group answers the same; redis-py's asyncio client.

Imported only with `--redis-url`. Under `<prefix>history:` a hash holds each
run as JSON by id; sorted sets of equal score, ordered by their members (the
run's end as `query.sort_key`, then its id), index all runs, each outcome and
each job, and a job's close runs (their duration appended to the member); a
hash per job counts its runs and a sorted set names the jobs. Adding and
removing runs are Lua scripts, atomic and idempotent (a run added twice, or
removed by two daemons at once, counts once). Writes wait in memory while
Redis cannot take them, as with SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from itertools import islice
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Sequence, Tuple

import redis.asyncio
import redis.exceptions

from progressistad import contract
from progressistad.cluster.store import DEFAULT_PREFIX
from progressistad.core import wirejson
from progressistad.history import expectations
from progressistad.history.backlog import QUEUE_LIMIT, RETRY_FIRST_SECONDS, \
    RETRY_MOST_SECONDS, WRITE_DELAY, Backlog, Faults
from progressistad.history.query import SORT_KEY_CHARS, HistoryUnavailable, JobQuery, \
    RunQuery, from_sort_key, glob_prefix, glob_regex, job_figures, job_summary, jobs_page, \
    runs_page, sort_key
from progressistad.history.records import FAILED_STATUSES, RUN_STATUSES, Run

WRITE_BATCH = 500
"""Runs per script call."""
READ_BATCH = 500
"""Index entries read per round trip while filling a page or removing runs."""
ERRORS = (redis.exceptions.RedisError, OSError)

_ID_END = SORT_KEY_CHARS + 20
"""Members are the sort key, then the run's id (20 hex digits), then for close runs `|duration`."""

_ADD = """
local p = ARGV[1]
local added = 0
for i = 2, #ARGV, 8 do
  local id, job, status, outcome, member, closed, ended = unpack(ARGV, i, i + 6)
  if redis.call('HSETNX', p .. 'runs', id, ARGV[i + 7]) == 1 then
    redis.call('ZADD', p .. 'all', 0, member)
    redis.call('ZADD', p .. 'status:' .. status, 0, member)
    redis.call('ZADD', p .. 'job:' .. job, 0, member)
    if closed ~= '' then redis.call('ZADD', p .. 'closed:' .. job, 0, closed) end
    local stats = p .. 'stats:' .. job
    redis.call('HINCRBY', stats, 'runs', 1)
    redis.call('HINCRBY', stats, outcome, 1)
    redis.call('HINCRBY', stats, 'runs:' .. status, 1)
    local last = redis.call('HGET', stats, 'last:' .. status)
    if not last or tonumber(last) < tonumber(ended) then
      redis.call('HSET', stats, 'last:' .. status, ended)
    end
    redis.call('ZADD', p .. 'jobs', 0, job)
    added = added + 1
  end
end
return added
"""

_REMOVE = """
local p = ARGV[1]
local removed = 0
for i = 2, #ARGV, 7 do
  local id, job, status, outcome, member, closed = unpack(ARGV, i, i + 5)
  redis.call('ZREM', p .. 'all', member)
  redis.call('ZREM', p .. 'status:' .. status, member)
  redis.call('ZREM', p .. 'job:' .. job, member)
  if closed ~= '' then redis.call('ZREM', p .. 'closed:' .. job, closed) end
  if redis.call('HDEL', p .. 'runs', id) == 1 then
    local stats = p .. 'stats:' .. job
    redis.call('HINCRBY', stats, outcome, -1)
    -- Runs go oldest first (retention, max-runs, older_than), so the last of a status goes
    -- only with every other of it: its end time stands until then.
    if redis.call('HINCRBY', stats, 'runs:' .. status, -1) <= 0 then
      redis.call('HDEL', stats, 'runs:' .. status, 'last:' .. status)
    end
    if redis.call('HINCRBY', stats, 'runs', -1) <= 0 then
      redis.call('DEL', stats)
      redis.call('ZREM', p .. 'jobs', job)
    end
    removed = removed + 1
  end
end
return removed
"""


def _keys(run: Run) -> List[str]:
    """What the scripts need of a run besides its body: id, job, status, the counter its
    outcome adds to, its index entry, its entry among the job's close runs (or ""), and
    its end."""
    return [run["id"], run["job"], run["status"],
            "failed" if run["status"] in FAILED_STATUSES else "ok", _member(run),
            _closed_member(run), repr(float(run["ended_at"]))]


def _member(run: Run) -> str:
    return sort_key(run["ended_at"]) + run["id"]


def _closed_member(run: Run) -> str:
    return _member(run) + "|" + repr(float(run["duration"])) if run["status"] == contract.CLOSE \
        else ""


def _text(raw: Any) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


def _closed(member: str) -> expectations.Closed:
    return (from_sort_key(member), member[SORT_KEY_CHARS:_ID_END], float(member[_ID_END + 1:]))


class RedisHistory:
    """The history of a group in Redis, under `prefix` (the task store's) + "history:"."""

    def __init__(self, client: "redis.asyncio.Redis", prefix: str = DEFAULT_PREFIX, *,
                 retention_days: float = 90.0, max_runs: int = 100000,
                 queue_limit: int = QUEUE_LIMIT, clock: Callable[[], float],
                 retry_first: float = RETRY_FIRST_SECONDS,
                 retry_most: float = RETRY_MOST_SECONDS, write_delay: float = WRITE_DELAY) -> None:
        self.client = client
        self.prefix = prefix + "history:"
        self.retention_days = retention_days
        self.max_runs = max_runs
        self._clock = clock
        self._write_delay = write_delay
        self._add = client.register_script(_ADD)
        self._remove = client.register_script(_REMOVE)
        self._backlog = Backlog(queue_limit)
        self._faults = Faults(f"history in Redis ({self.prefix})", retry_first, retry_most)
        self._pending: Deque[Run] = deque()
        self._writer: Optional["asyncio.Future[None]"] = None
        self._closing = False

    # ---- writing

    def append(self, runs: Sequence[Run]) -> None:
        """Queue runs to be written (from the loop); never blocks, drops beyond the bound."""
        taken = self._backlog.admit(len(runs)) if not self._closing else 0
        self._pending.extend(runs[:taken])
        if taken and self._writer is None:
            self._writer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(self._write_delay)  # gather more runs into each script call
            while self._pending:
                try:
                    await self._write_batch()
                except Exception as exc:  # an unforeseen one too: reported and retried
                    await asyncio.sleep(self._faults.failed(
                        f"cannot write the history to Redis: {exc}"))
                else:
                    self._faults.succeeded()
        finally:
            self._writer = None

    async def _write_batch(self) -> None:
        batch = list(islice(self._pending, WRITE_BATCH))
        args: List[Any] = [self.prefix]
        for run in batch:
            args += _keys(run) + [wirejson.dumps(run)]
        await self._add(args=args)
        for _ in batch:
            self._pending.popleft()
        self._backlog.settle(len(batch))

    # ---- reading

    async def runs(self, query: RunQuery) -> Dict[str, Any]:
        key, status_filter = self._runs_index(query)
        high = "+"
        if query.until is not None:
            high = "(" + sort_key(query.until)
        if query.position is not None:
            after = "(" + sort_key(query.position[0]) + query.position[1]
            high = after if high == "+" or after < high else high
        low = "-" if query.since is None else "[" + sort_key(query.since)
        found: List[Run] = []
        async with self._reading():
            while len(found) <= query.limit:
                wanted = READ_BATCH if status_filter else query.limit + 1 - len(found)
                members = [_text(m) for m in await self.client.zrevrangebylex(
                    key, high, low, start=0, num=wanted)]
                for run in await self._bodies(members):
                    if run is not None and status_filter in (None, run["status"]):
                        found.append(run)
                if len(members) < wanted:
                    break
                high = "(" + members[-1]
        return runs_page(found[:query.limit + 1], query.limit)

    def _runs_index(self, query: RunQuery) -> Tuple[str, Optional[str]]:
        """The sorted set to page through, and the outcome to keep of what it holds."""
        if query.job is None:
            return self.prefix + ("all" if query.status is None else "status:" + query.status), None
        if query.status == contract.CLOSE:
            return self.prefix + "closed:" + query.job, None
        return self.prefix + "job:" + query.job, query.status

    async def jobs(self, query: JobQuery) -> Dict[str, Any]:
        prefix = glob_prefix(query.pattern or "").encode("utf-8")
        pattern = None if query.pattern is None else glob_regex(query.pattern)
        low = b"[" + prefix if prefix else b"-"
        if query.position is not None and query.position.encode("utf-8") >= prefix:
            low = b"(" + query.position.encode("utf-8")
        high = b"(" + prefix + b"\xff" if prefix else b"+"
        names: List[str] = []
        async with self._reading():
            while len(names) <= query.limit:
                wanted = READ_BATCH if pattern else query.limit + 1 - len(names)
                batch = [_text(m) for m in await self.client.zrangebylex(
                    self.prefix + "jobs", low, high, start=0, num=wanted)]
                names += [job for job in batch if pattern is None or pattern.fullmatch(job)]
                if len(batch) < wanted:
                    break
                low = b"(" + batch[-1].encode("utf-8")
            page = await self._summaries(names[:query.limit])
        return jobs_page(page, len(names) > query.limit)

    async def _summaries(self, jobs: List[str]) -> List[Tuple[str, Dict[str, Any]]]:
        async with self.client.pipeline(transaction=False) as pipe:
            for job in jobs:
                pipe.hmget(self.prefix + "stats:" + job, ["runs", "ok", "failed"])
                pipe.zrevrangebylex(self.prefix + "job:" + job, "+", "-", start=0, num=1)
                pipe.zrevrangebylex(self.prefix + "closed:" + job, "+", "-", start=0,
                                    num=expectations.WINDOW)
            replies = await pipe.execute()
        lasts = await self._bodies([_text(m) for i in range(len(jobs)) for m in replies[3 * i + 1]])
        by_id = {run["id"]: run for run in lasts if run is not None}
        page = []
        for i, job in enumerate(jobs):
            runs, ok, failed = (int(value or 0) for value in replies[3 * i])
            last = [by_id.get(_text(m)[SORT_KEY_CHARS:_ID_END]) for m in replies[3 * i + 1]]
            durations = [_closed(_text(m))[2] for m in replies[3 * i + 2]]
            page.append((job, job_summary(runs, ok, failed, last[0] if last else None, durations)))
        return page

    async def metrics(self, limit: int) -> Dict[str, Any]:
        """The first `limit` jobs by name for /metrics (`query.job_figures`)."""
        fields = [name for status in RUN_STATUSES for name in ("runs:" + status, "last:" + status)]
        async with self._reading():
            names = [_text(m) for m in await self.client.zrangebylex(
                self.prefix + "jobs", "-", "+", start=0, num=limit + 1)]
            page = await self._summaries(names[:limit])
            async with self.client.pipeline(transaction=False) as pipe:
                for job, _ in page:
                    pipe.hmget(self.prefix + "stats:" + job, fields)
                replies = await pipe.execute()
        statuses = {}
        for (job, _), values in zip(page, replies):
            pairs = iter(values)
            statuses[job] = {status: (int(runs), float(last)) for status, (runs, last)
                             in zip(RUN_STATUSES, zip(pairs, pairs)) if runs is not None}
        return job_figures(page, statuses, len(names) > limit)

    async def closes(self, jobs: Iterable[str]) -> Dict[str, List[expectations.Closed]]:
        """Each job's most recent close runs, newest first."""
        jobs = list(jobs)
        async with self._reading():
            async with self.client.pipeline(transaction=False) as pipe:
                for job in jobs:
                    pipe.zrevrangebylex(self.prefix + "closed:" + job, "+", "-", start=0,
                                        num=expectations.WINDOW)
                replies = await pipe.execute()
        return {job: [_closed(_text(m)) for m in reply] for job, reply in zip(jobs, replies)}

    async def _bodies(self, members: List[str]) -> List[Optional[Run]]:
        if not members:
            return []
        raw = await self.client.hmget(self.prefix + "runs",
                                      [m[SORT_KEY_CHARS:_ID_END] for m in members])
        return [None if body is None else json.loads(body) for body in raw]

    @contextlib.asynccontextmanager
    async def _reading(self):  # type: ignore[no-untyped-def]
        try:
            yield
        except ERRORS as exc:
            raise HistoryUnavailable(f"cannot read the history in Redis: {exc}") from None

    # ---- removing

    async def delete(self, job: Optional[str], before: Optional[float]) -> int:
        """Remove the runs of `job` (any when None) that ended before `before` (any when None)."""
        key = self.prefix + ("all" if job is None else "job:" + job)
        async with self._reading():
            return await self._remove_below(key, "+" if before is None else "(" + sort_key(before))

    async def maintain(self) -> int:
        """Retention by age and count, in batches; returns how many runs it removed.

        By count as by age, what goes is what lies below a bound in the index, never "the
        oldest N": two daemons trimming at once then remove each run once, not twice as many.
        """
        removed = 0
        if self.retention_days > 0:
            removed += await self.delete(None, self._clock() - self.retention_days * 86400.0)
        key = self.prefix + "all"
        async with self._reading():
            excess = await self.client.zcard(key) - self.max_runs
            if excess > 0:
                oldest_kept = await self.client.zrange(key, excess, excess)
                if oldest_kept:
                    removed += await self._remove_below(key, "(" + _text(oldest_kept[0]))
        return removed

    async def _remove_below(self, key: str, high: str) -> int:
        removed = 0
        while True:
            members = [_text(m) for m in await self.client.zrangebylex(
                key, "-", high, start=0, num=READ_BATCH)]
            removed += await self._remove_members(key, members)
            if len(members) < READ_BATCH:
                return removed

    async def _remove_members(self, key: str, members: List[str]) -> int:
        """Remove the runs these index entries of `key` point at; entries without a run go too."""
        if not members:
            return 0
        args: List[Any] = [self.prefix]
        orphans = []
        for member, run in zip(members, await self._bodies(members)):
            if run is None:
                orphans.append(member)
            else:
                args += _keys(run)
        if orphans:
            await self.client.zrem(key, *orphans)
        return int(await self._remove(args=args)) if len(args) > 1 else 0

    # ---- health and stopping

    def health(self) -> Dict[str, Any]:
        return self._faults.health(self._backlog, prefix=self.prefix)

    async def close(self) -> bool:
        """One last attempt at what waits; True when nothing was left unwritten."""
        self._closing = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        with contextlib.suppress(*ERRORS):
            while self._pending:
                await self._write_batch()
        return not self._pending
