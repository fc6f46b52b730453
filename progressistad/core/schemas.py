"""Validation of what clients send: progress events and query strings.

An event goes through a fast path of plain type checks; one that the fast path does
not take goes to the marshmallow schema of record (`eventschema.py`), which decides
and explains.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from progressistad import contract
from progressistad.core.fields import is_number, load_log, metrics_problem
from progressistad.core.text import CONTROL_CHARACTERS


class InvalidInput(Exception):
    """A request body or query string breaks the contract; the message says what and where."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


def _meta_problem(value: Mapping[str, Any]) -> Optional[str]:
    """What is wrong with a `meta` object that passed the type checks, or None."""
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > contract.META_MAX_BYTES:
        return f"must be at most {contract.META_MAX_BYTES} bytes serialized (got {size})"
    return None


_EVENT_FIELDS = frozenset(contract.EVENT_FIELDS)
_NULL_CLEARS = frozenset(("total",))


@dataclass
class ParsedEvents:
    """Validated events ready for the store, the `meta._token` credentials they carried, and
    the names of unknown fields that were ignored."""

    events: List[Dict[str, Any]]
    meta_tokens: List[Optional[str]]
    ignored: List[str]


def parse_json(body: bytes) -> Any:
    """Decode a JSON request body; NaN and Infinity parse so the schema can name the field."""
    try:
        return json.loads(body)
    except RecursionError:
        raise InvalidInput("malformed JSON: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"malformed JSON: {_describe_json_error(exc)}") from None


def _describe_json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "body is not UTF-8"
    if "integer string conversion" in str(exc):
        return "a number has too many digits"
    return str(exc)


def load_events(payload: Any) -> ParsedEvents:
    """Validate one event object or a batch (a JSON array) of them, all or none."""
    batch = isinstance(payload, list)
    raw_events: Sequence[Any] = payload if batch else [payload]
    if batch and not raw_events:
        raise InvalidInput("empty batch: send at least one event")
    if len(raw_events) > contract.BATCH_MAX_EVENTS:
        raise InvalidInput(
            f"batch too large: {len(raw_events)} events, at most {contract.BATCH_MAX_EVENTS}"
        )
    parsed = ParsedEvents(events=[], meta_tokens=[], ignored=[])
    ignored = set()
    for index, raw in enumerate(raw_events):
        event, token, unknown = _load_one(raw, index if batch else None)
        parsed.events.append(event)
        parsed.meta_tokens.append(token)
        ignored.update(unknown)
    parsed.ignored = sorted(ignored)
    return parsed


def _load_one(raw: Any, index: Optional[int]) -> Tuple[Dict[str, Any], Optional[str], List[str]]:
    where = "" if index is None else f"event {index}: "
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}an event must be a JSON object", **_index(index))
    event = fast_event(raw)
    if event is None:
        event = _schema_event(raw, where, index)
    token = _pop_meta_token(event, where, index)
    unknown = [str(key) for key in raw if key not in _EVENT_FIELDS]
    return event, token, unknown


def _schema_event(raw: Dict[str, Any], where: str, index: Optional[int]) -> Dict[str, Any]:
    """The event as EventSchema loads it, or the InvalidInput that says what is wrong."""
    # Imported here, not at start: marshmallow's import would lengthen every start
    # (bench/startup.py), and only events the fast path does not take (in practice,
    # invalid ones) need the schema.
    from marshmallow import ValidationError

    from progressistad.core.eventschema import EVENT_SCHEMA
    try:
        loaded = EVENT_SCHEMA.load(raw)
    except ValidationError as exc:
        raise _field_error(exc.messages, where, index) from None
    return {k: v for k, v in loaded.items() if v is not None or k in _NULL_CLEARS}


def _is_count(value: Any) -> bool:
    return is_number(value) and value >= 0


def _is_text(limit: int) -> Callable[[Any], bool]:
    return lambda value: type(value) is str and len(value) <= limit


_FAST_CHECKS: Dict[str, Callable[[Any], bool]] = {
    "desc": _is_text(contract.DESC_MAX_CHARS),
    "total": _is_count,
    "n": _is_count,
    "unit": _is_text(contract.UNIT_MAX_CHARS),
    "status": lambda value: type(value) is str and value in contract.EVENT_STATUSES,
    "timestamp": is_number,
    "meta": lambda value: type(value) is dict,
    "metrics": lambda value: metrics_problem(value) is None,
    "postfix": _is_text(contract.POSTFIX_MAX_CHARS),
    "log": lambda value: type(value) is str or type(value) is list,  # its lines: `load_log`
}


def fast_event(raw: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The hot path: the same result as EventSchema for an event that is plainly valid,
    or None to let the schema (the schema of record) decide and explain."""
    task_id = raw.get("task_id")
    if type(task_id) is not str or not 0 < len(task_id) <= contract.TASK_ID_MAX_CHARS \
            or CONTROL_CHARACTERS.search(task_id):
        return None
    event = {"task_id": task_id}
    for name, value in raw.items():
        check = _FAST_CHECKS.get(name)
        if check is None:
            continue
        if value is None:
            if name in _NULL_CLEARS:
                event[name] = None
        elif check(value):
            event[name] = value
        else:
            return None
    if "log" in event:
        try:
            event["log"] = load_log(event["log"])
        except ValueError:
            return None
    return event


def _pop_meta_token(event: Dict[str, Any], where: str, index: Optional[int]) -> Optional[str]:
    meta = event.get("meta")
    if meta is None:
        return None
    token = None
    if contract.TOKEN_META_KEY in meta:
        meta = dict(meta)
        token = meta.pop(contract.TOKEN_META_KEY)
        event["meta"] = meta
    problem = _meta_problem(meta)
    if problem is not None:
        raise field_error("meta", problem, index)
    return token if isinstance(token, str) else None


def field_error(field: str, problem: str, index: Optional[int]) -> InvalidInput:
    """The 400 for one field of one event (`index` in its batch; None for a single event)."""
    where = "" if index is None else f"event {index}: "
    return InvalidInput(f"{where}field {field!r}: {problem}", field=field, **_index(index))


def _field_error(messages: Any, where: str, index: Optional[int]) -> InvalidInput:
    if not isinstance(messages, dict) or not messages:
        return InvalidInput(f"{where}invalid event: {messages}", **_index(index))
    name = sorted(messages)[0]
    problem = messages[name]
    while isinstance(problem, (list, dict)) and problem:
        problem = problem[0] if isinstance(problem, list) else next(iter(problem.values()))
    text = str(problem).rstrip(".")
    text = text[:1].lower() + text[1:]
    return InvalidInput(
        f"{where}field '{name}': {text}", field=name, errors=messages, **_index(index)
    )


def _index(index: Optional[int]) -> Dict[str, Any]:
    return {} if index is None else {"index": index}


class TaskQuery:
    """Query filters for GET and DELETE /tasks: `status` (comma-separated) and `older_than`."""

    def __init__(self, statuses: Optional[frozenset], older_than: Optional[float]) -> None:
        self.statuses = statuses
        self.older_than = older_than

    @classmethod
    def parse(cls, arguments: Mapping[str, List[bytes]], allowed: Sequence[str]) -> "TaskQuery":
        unknown = sorted(set(arguments) - set(allowed) - {contract.TOKEN_QUERY_PARAM})
        if unknown:
            raise InvalidInput(
                f"unknown query parameter {unknown[0]!r}; accepted: {', '.join(allowed)}",
                parameter=unknown[0],
            )
        return cls(
            statuses=_parse_statuses(_single(arguments, "status")),
            older_than=_parse_seconds(_single(arguments, "older_than"), "older_than"),
        )


def _single(arguments: Mapping[str, List[bytes]], name: str) -> Optional[str]:
    values = arguments.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidInput(f"query parameter {name!r} given more than once", parameter=name)
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"query parameter {name!r} is not UTF-8", parameter=name) from None


def _parse_statuses(value: Optional[str]) -> Optional[frozenset]:
    if value is None:
        return None
    statuses = frozenset(part.strip() for part in value.split(","))
    bad = sorted(statuses - set(contract.STATUSES))
    if bad:
        raise InvalidInput(
            f"query parameter 'status': unknown status {bad[0][:64]!r};"
            f" one of {', '.join(contract.STATUSES)}",
            parameter="status",
        )
    return statuses


def _parse_seconds(value: Optional[str], name: str) -> Optional[float]:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInput(
            f"query parameter {name!r}: must be a number of seconds >= 0, got {value[:64]!r}",
            parameter=name,
        )
    return seconds
