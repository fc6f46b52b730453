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


class TaskHandler(ApiHandler):
    """GET /tasks/{task_id}: the task, 404 if unknown. DELETE: `{"removed": true/false}`."""

    access = {"GET": Access.READ}

    async def get(self, task_id: str) -> None:
        task = await self.call(self.ctx.service.get(task_id))
        if task is None:
            raise ApiError(404, "no such task", task_id=task_id[: contract.TASK_ID_MAX_CHARS])
        self.write_json(task)

    async def delete(self, task_id: str) -> None:
        self.write_json({"removed": await self.call(self.ctx.service.remove(task_id))})
