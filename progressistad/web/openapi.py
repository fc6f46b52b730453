"""The OpenAPI 3 description of the HTTP API, built from the wire contract's limits."""

from __future__ import annotations

from typing import Any, Dict, List

from progressistad import __version__, contract
from progressistad.alerts import events as alert_events
from progressistad.alerts.queue import QUEUED, RESULTS, RETRYING
from progressistad.core.text import CONTROL_CHARACTER_RANGES

OPENAPI_VERSION = "3.0.3"
NO_CONTROL_CHARACTERS = "^[^" + "".join(
    f"\\u{low:04x}-\\u{high:04x}" for low, high in CONTROL_CHARACTER_RANGES) + "]*$"
JSON = "application/json"


def _ref(name: str) -> Dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable_number(minimum: Any = None) -> Dict[str, Any]:
    schema: Dict[str, Any] = {"type": "number", "nullable": True}
    if minimum is not None:
        schema["minimum"] = minimum
    return schema


def _text(max_length: int) -> Dict[str, Any]:
    return {"type": "string", "maxLength": max_length, "nullable": True}


EVENT = {
    "type": "object",
    "description": "A progress event. Missing fields keep the task's previous values; "
                   "unknown fields are ignored and named in the answer.",
    "required": ["task_id"],
    "properties": {
        "task_id": {"type": "string", "minLength": 1, "maxLength": contract.TASK_ID_MAX_CHARS,
                    "pattern": NO_CONTROL_CHARACTERS},
        "desc": _text(contract.DESC_MAX_CHARS),
        "total": _nullable_number(0),
        "n": _nullable_number(0),
        "unit": _text(contract.UNIT_MAX_CHARS),
        "status": {"type": "string", "enum": list(contract.EVENT_STATUSES) + [None],
                   "nullable": True},
        "timestamp": _nullable_number(),
        "meta": {"type": "object", "nullable": True,
                 "description": f"Free-form, at most {contract.META_MAX_BYTES} bytes serialized; "
                                f"`{contract.TOKEN_META_KEY}` is a credential, never stored."},
        # No maxProperties: the cap holds after merging, where nulls remove keys.
        "metrics": {"type": "object", "nullable": True,
                    "additionalProperties": _nullable_number(),
                    "description": f"Finite numbers by name (keys of 1 to "
                                   f"{contract.METRIC_KEY_MAX_CHARS} characters), merged into the "
                                   f"task's: each key keeps its latest value, null removes it; at "
                                   f"most {contract.METRICS_MAX_KEYS} on a task after merging."},
        "postfix": _text(contract.POSTFIX_MAX_CHARS),
        "log": {"oneOf": [{"type": "string"},
                          {"type": "array", "items": {"type": "string"},
                           "maxItems": contract.LOG_MAX_LINES}],
                "nullable": True,
                "description": f"Lines for the task's log tail (its last "
                               f"{contract.LOG_TAIL_LINES} kept): a string or each string of an "
                               f"array split on newlines, at most {contract.LOG_MAX_LINES} lines "
                               f"of at most {contract.LOG_LINE_MAX_BYTES} bytes of UTF-8."},
    },
}

TASK = {
    "type": "object",
    "required": list(contract.TASK_FIELDS),
    "properties": {
        "task_id": {"type": "string"},
        "desc": {"type": "string", "nullable": True},
        "total": _nullable_number(),
        "n": {"type": "number"},
        "unit": {"type": "string", "nullable": True},
        "status": {"type": "string", "enum": list(contract.STATUSES)},
        "timestamp": _nullable_number(),
        "meta": {"type": "object", "nullable": True},
        "created_at": {"type": "number"},
        "updated_at": {"type": "number"},
        "done_at": _nullable_number(),
        "stale_at": _nullable_number(),
        "rate": _nullable_number(),
        "eta": _nullable_number(),
        "metrics": {"type": "object", "nullable": True, "additionalProperties": {"type": "number"}},
        "postfix": {"type": "string", "nullable": True},
        "last_log": {"type": "string", "nullable": True,
                     "description": "The newest line of the log tail."},
        "log_lines": {"type": "integer", "minimum": 0, "maximum": contract.LOG_TAIL_LINES,
                      "description": "Lines the log tail keeps (GET /tasks/{task_id}/log)."},
        "expected_duration": {"type": "number", "minimum": 0,
                              "description": "Only on an active task whose job has at least 3 "
                                             "close runs: the nearest-rank median of the job's "
                                             "last 20 close runs, in seconds."},
        "overdue": {"type": "boolean",
                    "description": "With expected_duration: the run has taken longer than "
                                   "--overdue-factor times the 90th percentile of those runs."},
    },
}

RUN = {
    "type": "object",
    "description": "One run of a task: from its start (or its creation) to its close, error, "
                   "or abandonment (removed while active, or started again).",
    "required": list(contract.RUN_FIELDS),
    "properties": {
        "id": {"type": "string"},
        "job": {"type": "string", "description": "meta.job, else the task id"},
        "task_id": {"type": "string"},
        "desc": {"type": "string", "nullable": True},
        "unit": {"type": "string", "nullable": True},
        "total": _nullable_number(),
        "n": _nullable_number(),
        "status": {"type": "string", "enum": list(contract.RUN_STATUSES)},
        "started_at": {"type": "number"},
        "ended_at": {"type": "number"},
        "duration": {"type": "number", "minimum": 0},
        "metrics": {"type": "object", "nullable": True,
                    "additionalProperties": {"type": "number"}},
        "postfix": {"type": "string", "nullable": True},
        "meta": {"type": "object", "nullable": True},
        "log": {"type": "array", "items": {"type": "string"}, "nullable": True,
                "description": "The last 20 log lines of an error or abandoned run"},
    },
}

JOB_SUMMARY = {
    "type": "object",
    "required": ["runs", "ok", "failed", "last", "duration"],
    "properties": {
        "runs": {"type": "integer", "minimum": 0},
        "ok": {"type": "integer", "minimum": 0, "description": "close runs"},
        "failed": {"type": "integer", "minimum": 0, "description": "error and abandoned runs"},
        "last": {"allOf": [_ref("Run")], "nullable": True},
        "duration": {"type": "object", "required": ["median", "p90"],
                     "description": "Nearest-rank median and 90th percentile of the last 20 "
                                    "close runs",
                     "properties": {"median": _nullable_number(0), "p90": _nullable_number(0)}},
    },
}

_NEXT = {"type": "string", "nullable": True,
         "description": "Give it as `cursor` for the next page; null on the last page"}

_POINTS = {"type": "array", "maxItems": contract.SERIES_MAX_POINTS}
_NULLABLE_POINTS = {**_POINTS, "items": _nullable_number()}

DELIVERY = {
    "type": "object",
    "description": "One notification message: under way (queued, retrying) or finished "
                   "(sent, failed, dropped).",
    "required": ["id", "route", "event", "tasks", "result", "attempts", "error"],
    "properties": {
        "id": {"type": "string", "description": "the same on every attempt of one message"},
        "route": {"type": "string"},
        "event": {"type": "string", "enum": list(alert_events.KINDS)
                  + [alert_events.SUMMARY, alert_events.TEST]},
        "group": {"type": "string", "nullable": True},
        "tasks": {"type": "array", "items": {"type": "string"}},
        "result": {"type": "string", "enum": [QUEUED, RETRYING, *RESULTS]},
        "attempts": {"type": "integer", "minimum": 0},
        "error": {"type": "string", "nullable": True},
        "latency": _nullable_number(0),
        "queued_at": {"type": "number"},
        "finished_at": _nullable_number(),
    },
}

SCHEMAS = {
    "Event": EVENT,
    "Batch": {"type": "array", "items": _ref("Event"), "minItems": 1,
              "maxItems": contract.BATCH_MAX_EVENTS},
    "Task": TASK,
    "Tasks": {"type": "object", "required": ["tasks"],
              "properties": {"tasks": {"type": "object", "additionalProperties": _ref("Task")}}},
    "Log": {"type": "object", "required": ["task_id", "lines"],
            "properties": {"task_id": {"type": "string"},
                           "lines": {"type": "array", "items": {"type": "string"},
                                     "maxItems": contract.LOG_TAIL_LINES}}},
    "Series": {"type": "object", "required": ["task_id", "t", "n", "rate", "metrics"],
               "description": f"At most one sample per broadcast flush and "
                             f"{contract.SERIES_MAX_POINTS} points (when full, every other one "
                             f"goes), held in memory by the daemon answering; null where the "
                             f"task had no value.",
               "properties": {"task_id": {"type": "string"},
                              "t": {**_POINTS, "items": {"type": "number"}},
                              "n": {**_POINTS, "items": {"type": "number"}},
                              "rate": _NULLABLE_POINTS,
                              "metrics": {"type": "object",
                                          "additionalProperties": _NULLABLE_POINTS}}},
    "Accepted": {"type": "object", "required": ["ok", "accepted", "ignored"],
                 "properties": {"ok": {"type": "boolean"}, "accepted": {"type": "integer"},
                                "ignored": {"type": "array", "items": {"type": "string"}}}},
    "Run": RUN,
    "Runs": {"type": "object", "required": ["runs", "next"],
             "properties": {"runs": {"type": "array", "items": _ref("Run")}, "next": _NEXT}},
    "JobSummary": JOB_SUMMARY,
    "Jobs": {"type": "object", "required": ["jobs", "next"],
             "properties": {"jobs": {"type": "object", "additionalProperties": _ref("JobSummary")},
                            "next": _NEXT}},
    "Error": {"type": "object", "required": ["error"],
              "properties": {"error": {"type": "string"}, "field": {"type": "string"},
                             "index": {"type": "integer"}}},
    "Delivery": DELIVERY,
    "Notifications": {"type": "object", "required": ["routes", "deliveries"], "properties": {
        "routes": {"type": "array", "items": {
            "type": "object", "required": ["name", "events"],
            "properties": {"name": {"type": "string"},
                           "events": {"type": "array", "items": {"type": "string"}}}}},
        "deliveries": {"type": "array", "items": _ref("Delivery")}}},
    "Health": {"type": "object", "required": ["status", "tasks", "auth"],
               "properties": {
                   "status": {"type": "string", "enum": ["ok", "degraded"]},
                   "failing": {"type": "array", "items": {"type": "string"},
                               "description": "the parts at fault; a fault of notifications or "
                                              "history alone still answers 200"},
                   "tasks": {"type": "integer"},
                   "dashboards": {"type": "integer"},
                   "version": {"type": "string"},
                   "uptime": {"type": "number"},
                   "history": {"type": "object", "description": "The run history's writer: ok, "
                               "error, queued and dropped runs; its fault answers 200"},
                   "auth": {"type": "object", "required": ["required", "access"],
                            "properties": {"required": {"type": "boolean"},
                                           "access": {"type": "string",
                                                      "enum": ["none", "read", "write"]}}}}},
}


def _error(description: str, **headers: Dict[str, Any]) -> Dict[str, Any]:
    response: Dict[str, Any] = {"description": description,
                                "content": {JSON: {"schema": _ref("Error")}}}
    if headers:
        response["headers"] = headers
    return response


def _ok(description: str, schema: Dict[str, Any]) -> Dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


UNAUTHORIZED = _error("missing or wrong token",
                      **{"WWW-Authenticate": {"schema": {"type": "string"}}})
FORBIDDEN = _error("a read-only token where writing is asked, or a foreign CORS origin")
BAD_REQUEST = _error("malformed JSON, a field that breaks the schema, or a bad query parameter")
NOT_FOUND = _error("unknown task or path")
RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}}}
READ_ERRORS = {"401": UNAUTHORIZED, "403": FORBIDDEN}
WRITE_ERRORS = {"400": BAD_REQUEST, "401": UNAUTHORIZED, "403": FORBIDDEN}

_STATUS = "(" + "|".join(contract.STATUSES) + ")"
STATUS_FILTER = {"name": "status", "in": "query", "required": False,
                 "description": "comma-separated statuses: " + ", ".join(contract.STATUSES),
                 "schema": {"type": "string", "pattern": f"^{_STATUS}(,{_STATUS})*$"}}
OLDER_THAN = {"name": "older_than", "in": "query", "required": False,
              "description": "idle for more than this many seconds",
              "schema": {"type": "number", "minimum": 0}}
TASK_ID = {"name": "task_id", "in": "path", "required": True,
           "schema": {"type": "string", "minLength": 1}}
PUBLIC: List[Dict[str, List[str]]] = [{}]
RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}}}


def _query(name: str, description: str, schema: Dict[str, Any]) -> Dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


JOB_TEXT = {"type": "string", "minLength": 1, "maxLength": 8192}
HISTORY_ERRORS = {
    "400": _error("a bad query parameter (`field` names it)"),
    "404": _error("the run history is off (--history-max-runs 0)"),
    "503": _error("the history cannot be read right now", **RETRY_AFTER),
}
LIMIT = _query("limit", "most entries in the page (default 100)",
               {"type": "integer", "minimum": 1, "maximum": contract.HISTORY_MAX_LIMIT})
CURSOR = _query("cursor", "the `next` of the previous page", {"type": "string"})

PATHS = {
    "/progress": {"post": {
        "summary": "Apply one event, or a batch applied all or none",
        "requestBody": {"required": True, "content": {JSON: {"schema": {
            "oneOf": [_ref("Event"), _ref("Batch")]}}}},
        "responses": {
            "200": _ok("applied", _ref("Accepted")), **WRITE_ERRORS,
            "413": _error("body larger than --max-body-bytes"),
            "503": _error("--max-tasks reached and no finished task can be evicted",
                          **RETRY_AFTER),
        },
    }},
    "/tasks": {
        "get": {"summary": "Every task, optionally filtered by status",
                "parameters": [STATUS_FILTER],
                "responses": {"200": _ok("the snapshot", _ref("Tasks")), "400": BAD_REQUEST,
                              **READ_ERRORS}},
        "delete": {"summary": "Remove the tasks matching every given filter (at least one)",
                   "parameters": [STATUS_FILTER, OLDER_THAN],
                   "responses": {"200": _ok("removed", {
                       "type": "object", "required": ["removed"],
                       "properties": {"removed": {"type": "array", "items": {"type": "string"}}}}),
                       **WRITE_ERRORS}},
    },
    "/tasks/{task_id}": {
        "parameters": [TASK_ID],
        "get": {"summary": "One task",
                "responses": {"200": _ok("the task", _ref("Task")), "404": NOT_FOUND,
                              **READ_ERRORS}},
        "delete": {"summary": "Remove one task",
                   "responses": {"200": _ok("whether it existed", {
                       "type": "object", "required": ["removed"],
                       "properties": {"removed": {"type": "boolean"}}}), **WRITE_ERRORS}},
    },
    "/history": {
        "get": {"summary": "Runs newest first, filtered by every given parameter",
                "parameters": [
                    _query("job", "runs of this job", JOB_TEXT),
                    _query("status", "runs that ended so",
                           {"type": "string", "enum": list(contract.RUN_STATUSES)}),
                    _query("since", "runs that ended at or after this epoch time",
                           {"type": "number"}),
                    _query("until", "runs that ended before this epoch time", {"type": "number"}),
                    LIMIT, CURSOR],
                "responses": {"200": _ok("one page of runs", _ref("Runs")), **READ_ERRORS,
                              **HISTORY_ERRORS}},
        "delete": {"summary": "Remove the runs matching every given filter (at least one)",
                   "parameters": [
                       _query("job", "runs of this job", JOB_TEXT),
                       _query("older_than", "runs that ended more than this many seconds ago",
                              {"type": "number", "minimum": 0})],
                   "responses": {"200": _ok("how many were removed", {
                       "type": "object", "required": ["removed"],
                       "properties": {"removed": {"type": "integer", "minimum": 0}}}),
                       **WRITE_ERRORS, **HISTORY_ERRORS}},
    },
    "/history/jobs": {"get": {
        "summary": "Jobs by name, each with its outcomes, last run and usual duration",
        "parameters": [_query("job", "a glob on the job (*, ?, [...], case-sensitive)", JOB_TEXT),
                       LIMIT, CURSOR],
        "responses": {"200": _ok("one page of jobs", _ref("Jobs")), **READ_ERRORS,
                      **HISTORY_ERRORS},
    }},
    "/tasks/{task_id}/log": {
        "parameters": [TASK_ID],
        "get": {"summary": "One task's log tail, oldest line first",
                "responses": {"200": _ok("the tail", _ref("Log")), "404": NOT_FOUND,
                              **READ_ERRORS}},
    },
    "/tasks/{task_id}/series": {
        "parameters": [TASK_ID],
        "get": {"summary": "One task's series of time, n, rate and each metric, for sparklines",
                "responses": {"200": _ok("the series", _ref("Series")), "404": NOT_FOUND,
                              **READ_ERRORS}},
    },
    "/health": {"get": {
        "summary": "Liveness, task count and what the caller's credentials grant",
        "security": PUBLIC,
        "responses": {"200": _ok("ok, or degraded by a fault of notifications or history",
                                 _ref("Health")),
                      "503": _ok("degraded: the task store, its state file or Redis is failing",
                                 _ref("Health"))},
    }},
    "/metrics": {"get": {
        "summary": "Prometheus text exposition",
        "responses": {"200": {"description": "metrics",
                              "content": {"text/plain": {"schema": {"type": "string"}}}},
                      **READ_ERRORS},
    }},
    "/notifications": {"get": {
        "summary": "The notification routes' names and the last deliveries, newest first",
        "responses": {"200": _ok("routes and deliveries", _ref("Notifications")),
                      "503": _error("the shared notification queue (Redis) cannot be read",
                                    **RETRY_AFTER),
                      **READ_ERRORS},
    }},
    "/notifications/test": {"post": {
        "summary": "Send one test message through a route and say how it went",
        "parameters": [{"name": "route", "in": "query", "required": True,
                        "schema": {"type": "string", "minLength": 1}}],
        "responses": {"200": _ok("the delivery (result sent or failed; queued or retrying "
                                 "while the receiver is slow to answer)", _ref("Delivery")),
                      "400": _error("no route named"),
                      "404": _error("no such notification route"),
                      "503": _error("the shared notification queue (Redis) cannot be reached",
                                    **RETRY_AFTER),
                      **WRITE_ERRORS},
    }},
    "/openapi.json": {"get": {
        "summary": "This description",
        "security": PUBLIC,
        "responses": {"200": _ok("OpenAPI 3 document", {"type": "object"})},
    }},
}


def document(base_path: str = "") -> Dict[str, Any]:
    """The OpenAPI document, with the server URL under `base_path`."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "progressistad",
            "version": __version__,
            "description": "Push gateway for progress bars. With no token configured every route "
                           "is open. Live state also streams over the WebSocket at /ws "
                           "(?protocol=delta), which OpenAPI does not describe.",
        },
        "servers": [{"url": base_path or "/"}],
        "security": [{"bearer": []}, {"query": []}, {"cookie": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "query": {"type": "apiKey", "in": "query", "name": contract.TOKEN_QUERY_PARAM},
                "cookie": {"type": "apiKey", "in": "cookie", "name": contract.TOKEN_COOKIE},
            },
        },
    }
