"""GET and DELETE /history, GET /history/jobs: the run history (SPEC section 14)."""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, Mapping

from progressistad import contract
from progressistad.history.query import HistoryUnavailable, QueryError
from progressistad.history.service import History
from progressistad.web.auth import Access
from progressistad.web.base import ApiError, ApiHandler

Converter = Callable[[str, str], Any]


def _text(name: str, value: str) -> str:
    return value


def _number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise QueryError(name, f"{name} must be a number, got {value[:64]!r}") from None


def _whole(name: str, value: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise QueryError(name, f"{name} must be a whole number, got {value[:64]!r}") from None


RUNS_QUERY = {"job": _text, "status": _text, "since": _number, "until": _number,
              "limit": _whole, "cursor": _text}
JOBS_QUERY = {"job": _text, "limit": _whole, "cursor": _text}
DELETE_QUERY = {"job": _text, "older_than": _number}


def query_arguments(arguments: Mapping[str, Any],
                    accepted: Mapping[str, Converter]) -> Dict[str, Any]:
    """The query string's parameters converted; QueryError names an unknown, repeated or bad one."""
    unknown = sorted(set(arguments) - set(accepted) - {contract.TOKEN_QUERY_PARAM})
    if unknown:
        raise QueryError(unknown[0][:64], f"unknown query parameter {unknown[0][:64]!r}; "
                                          f"accepted: {', '.join(accepted)}")
    converted = {}
    for name, convert in accepted.items():
        values = arguments.get(name)
        if not values:
            continue
        if len(values) > 1:
            raise QueryError(name, f"query parameter {name!r} given more than once")
        try:
            text = values[0].decode("utf-8")
        except UnicodeDecodeError:
            raise QueryError(name, f"query parameter {name!r} is not UTF-8") from None
        converted[name] = convert(name, text)
    return converted


class HistoryBase(ApiHandler):
    """What the history's handlers share: the history itself, and its errors as answers."""

    def history(self) -> History:
        if self.ctx.history is None:
            raise ApiError(404, "run history is off (--history-max-runs 0)")
        return self.ctx.history

    def arguments(self, accepted: Mapping[str, Converter]) -> Dict[str, Any]:
        try:
            return query_arguments(self.request.query_arguments, accepted)
        except QueryError as error:
            raise ApiError(400, str(error), field=error.field) from None

    async def answer(self, make: Callable[[History], Awaitable[Any]]) -> Any:
        """Await a history call; a bad argument is a 400 naming it, an unavailable history a 503."""
        try:
            return await make(self.history())
        except QueryError as error:
            raise ApiError(400, str(error), field=error.field) from None
        except HistoryUnavailable as error:
            raise ApiError(503, str(error), headers=self.retry_after()) from None


class HistoryHandler(HistoryBase):
    """GET /history?job=&status=&since=&until=&limit=&cursor=: runs newest first (`since` and
    `until` bound `ended_at`), `{"runs": [...], "next": cursor or null}`.
    DELETE /history?job=&older_than=SEC: remove the runs of `job` that ended more than SEC
    seconds ago (at least one filter), `{"removed": N}`."""

    access = {"GET": Access.READ}

    async def get(self) -> None:
        arguments = self.arguments(RUNS_QUERY)
        self.write_json(await self.answer(lambda history: history.runs(**arguments)))

    async def delete(self) -> None:
        arguments = self.arguments(DELETE_QUERY)
        if not arguments:
            raise ApiError(400, "deleting runs needs a filter: job=JOB and/or older_than=SEC "
                                "(older_than=0 removes every run)")
        removed = await self.answer(lambda history: history.delete(**arguments))
        self.write_json({"removed": removed})


class HistoryJobsHandler(HistoryBase):
    """GET /history/jobs?job=GLOB&limit=&cursor=: jobs by name, `{"jobs": {job: {"runs", "ok",
    "failed", "last", "duration": {"median", "p90"}}}, "next": cursor or null}`."""

    access = {"GET": Access.READ}

    async def get(self) -> None:
        arguments = self.arguments(JOBS_QUERY)
        self.write_json(await self.answer(lambda history: history.jobs(**arguments)))
