"""GET and DELETE on /tasks and /tasks/{task_id}: read and remove tasks."""

from __future__ import annotations

from progressistad import contract
from progressistad.web.auth import Access
from progressistad.web.base import ApiError, ApiHandler


class TasksHandler(ApiHandler):
    """GET /tasks[?status=S,..]: `{"tasks": {...}}`. DELETE /tasks?status=S&older_than=SEC:
    remove tasks matching every given filter (at least one), `{"removed": [ids]}`."""

    access = {"GET": Access.READ}

    async def get(self) -> None:
        query = self.parse_query(allowed=("status",))
        self.write_json({"tasks": await self.call(self.ctx.service.snapshot(query.statuses))})

    async def delete(self) -> None:
        query = self.parse_query(allowed=("status", "older_than"))
        if query.statuses is None and query.older_than is None:
            raise ApiError(400, "bulk delete needs a filter: status=S and/or older_than=SEC"
                                " (older_than=0 removes every task)")
        removed = await self.call(self.ctx.service.remove_where(query.statuses, query.older_than))
        self.write_json({"removed": removed})


def no_such_task(task_id: str) -> ApiError:
    return ApiError(404, "no such task", task_id=task_id[: contract.TASK_ID_MAX_CHARS])


class TaskHandler(ApiHandler):
    """GET /tasks/{task_id}: the task, 404 if unknown. DELETE: `{"removed": true/false}`."""

    access = {"GET": Access.READ}

    async def get(self, task_id: str) -> None:
        task = await self.call(self.ctx.service.get(task_id))
        if task is None:
            raise no_such_task(task_id)
        self.write_json(task)

    async def delete(self, task_id: str) -> None:
        self.write_json({"removed": await self.call(self.ctx.service.remove(task_id))})


class TaskLogHandler(ApiHandler):
    """GET /tasks/{task_id}/log: `{"task_id": ..., "lines": [...]}`, the log tail oldest first;
    404 if unknown."""

    access = {"GET": Access.READ}

    async def get(self, task_id: str) -> None:
        lines = await self.call(self.ctx.service.log_tail(task_id))
        if lines is None:
            raise no_such_task(task_id)
        self.write_json({"task_id": task_id, "lines": lines})


class TaskSeriesHandler(ApiHandler):
    """GET /tasks/{task_id}/series: `{"task_id", "t", "n", "rate", "metrics": {key: [...]}}`,
    this daemon's samples for sparklines (null where a value was missing); 404 if unknown."""

    access = {"GET": Access.READ}

    async def get(self, task_id: str) -> None:
        series = await self.call(self.ctx.service.series(task_id))
        if series is None:
            raise no_such_task(task_id)
        self.write_json(series)
