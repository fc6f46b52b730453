"""GET and DELETE on /tasks and /tasks/{task_id}, and a task's log tail and series: read and remove tasks."""

from __future__ import annotations

from typing import Any, Awaitable, Optional

from progressistad import contract
from progressistad.web.auth import Access
from progressistad.web.base import ApiError, ApiHandler


class TasksHandler(ApiHandler):
    """GET /tasks[?status=S,..]: `{"tasks": {...}}`. DELETE /tasks?status=S&older_than=SEC:
    remove tasks matching every given filter (at least one), `{"removed": [ids]}`."""

    access = {"GET": Access.READ}

    async def get(self) -> None:
        query = self.parse_query(allowed=("status",))
        self.write_json_text(await self.call(self.ctx.service.tasks_body(query.statuses)))

    def compute_etag(self) -> None:
        """No ETag: the answer changes with every event, and hashing it costs a large share of
        a request at many tasks (bench/reads.py)."""
        return None

    async def delete(self) -> None:
        query = self.parse_query(allowed=("status", "older_than"))
        if query.statuses is None and query.older_than is None:
            raise ApiError(400, "bulk delete needs a filter: status=S and/or older_than=SEC"
                                " (older_than=0 removes every task)")
        removed = await self.call(self.ctx.service.remove_where(query.statuses, query.older_than))
        self.write_json({"removed": removed})


class OneTask(ApiHandler):
    """A route of one task: reads need a read token, and an unknown task is a 404."""

    access = {"GET": Access.READ}

    async def found(self, read: Awaitable[Optional[Any]], task_id: str) -> Any:
        """What `read` of the task service gives for `task_id`; a 404 when it gives None."""
        answer = await self.call(read)
        if answer is None:
            raise ApiError(404, "no such task", task_id=task_id[: contract.TASK_ID_MAX_CHARS])
        return answer


class TaskHandler(OneTask):
    """GET /tasks/{task_id}: the task, 404 if unknown. DELETE: `{"removed": true/false}`."""

    async def get(self, task_id: str) -> None:
        self.write_json(await self.found(self.ctx.service.get(task_id), task_id))

    async def delete(self, task_id: str) -> None:
        self.write_json({"removed": await self.call(self.ctx.service.remove(task_id))})


class TaskLogHandler(OneTask):
    """GET /tasks/{task_id}/log: `{"task_id": ..., "lines": [...]}`, the log tail oldest first;
    404 if unknown."""

    async def get(self, task_id: str) -> None:
        lines = await self.found(self.ctx.service.log_tail(task_id), task_id)
        self.write_json({"task_id": task_id, "lines": lines})


class TaskSeriesHandler(OneTask):
    """GET /tasks/{task_id}/series: `{"task_id", "t", "n", "rate", "metrics": {key: [...]}}`,
    this daemon's samples for sparklines (null where a value was missing); 404 if unknown."""

    async def get(self, task_id: str) -> None:
        self.write_json(await self.found(self.ctx.service.series(task_id), task_id))
