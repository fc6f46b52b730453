"""The wire contract shared by the daemon and the client: statuses, limits, message shapes.

Standard library only: the client imports it too.
"""

from typing import List, Sequence, Union

START = "start"
UPDATE = "update"
CLOSE = "close"
ERROR = "error"
STALE = "stale"
RECOVERED = "recovered"

EVENT_STATUSES = (START, UPDATE, CLOSE, ERROR)
"""Statuses a client may send."""
STATUSES = EVENT_STATUSES + (STALE, RECOVERED)
"""Every status a task can have; `stale` and `recovered` are set by the daemon."""
FINISHED_STATUSES = frozenset((CLOSE, ERROR))
ACTIVE_STATUSES = frozenset((START, UPDATE, RECOVERED))
DEFAULT_EVENT_STATUS = UPDATE

TASK_ID_MAX_CHARS = 256
DESC_MAX_CHARS = 1024
UNIT_MAX_CHARS = 64
META_MAX_BYTES = 8 * 1024
BATCH_MAX_EVENTS = 1000

METRICS_MAX_KEYS = 16
"""Most metrics a task holds after merging an event's `metrics` into the ones it had."""
METRIC_KEY_MAX_CHARS = 64
POSTFIX_MAX_CHARS = 256
LOG_MAX_LINES = 50
"""Most lines one event's `log` carries, counted after splitting (see `split_log`)."""
LOG_LINE_MAX_BYTES = 1024
"""Longest log line, in bytes of UTF-8."""
LOG_TAIL_LINES = 100
"""Lines a task's log tail keeps: the last ones."""
SERIES_MAX_POINTS = 500
"""Most points in a task's series (`GET /tasks/{id}/series`)."""

EVENT_FIELDS = ("task_id", "desc", "total", "n", "unit", "status", "timestamp", "meta",
                "metrics", "postfix", "log")
"""Fields of a progress event, as POSTed to /progress."""
TASK_FIELDS = EVENT_FIELDS[:-1] + (
    "created_at",
    "updated_at",
    "done_at",
    "stale_at",
    "rate",
    "eta",
    "last_log",
    "log_lines",
)
"""Fields of a task as served by /tasks and the WebSocket: the event fields but `log`, whose
lines go to the task's log tail (`last_log` is its newest line, `log_lines` how many it keeps)."""
EXPECTATION_FIELDS = ("expected_duration", "overdue")
"""Fields served besides those on an active task whose job has enough history (SPEC 14):
`expected_duration` (seconds, the median of the job's last close runs) and `overdue`."""

RUN_ABANDONED = "abandoned"
"""A run that ended without close or error: removed while active, or begun again by a start."""
RUN_STATUSES = (CLOSE, ERROR, RUN_ABANDONED)
"""Outcomes of a run in the history (GET /history)."""
RUN_FIELDS = ("id", "job", "task_id", "desc", "unit", "total", "n", "status", "started_at",
              "ended_at", "duration", "metrics", "postfix", "meta", "log")
"""Fields of a run as GET /history serves it."""
HISTORY_MAX_LIMIT = 1000
"""Most runs or jobs one page of GET /history or /history/jobs holds."""


def split_log(value: Union[str, Sequence[str]]) -> List[str]:
    """The lines an event's `log` carries: a string, or each string of an array, split on newlines.

    A final newline ends the last line rather than starting an empty one, and a line's
    trailing carriage return (of CRLF) goes, so that what `print` writes reads back as written.
    """
    if isinstance(value, str):
        return _split_lines(value)
    lines: List[str] = []
    for text in value:
        lines.extend(_split_lines(text))
    return lines


def _split_lines(text: str) -> List[str]:
    if "\n" not in text:
        return [text[:-1] if text.endswith("\r") else text]
    pieces = text.split("\n")
    if not pieces[-1]:
        pieces.pop()
    return [piece[:-1] if piece.endswith("\r") else piece for piece in pieces]


def utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8 (a lone surrogate, which JSON can carry, counts as 3)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def cut_log_line(line: str) -> str:
    """`line` cut to at most LOG_LINE_MAX_BYTES of UTF-8, at a character boundary."""
    if len(line) * 4 <= LOG_LINE_MAX_BYTES or utf8_size(line) <= LOG_LINE_MAX_BYTES:
        return line
    return line.encode("utf-8", "surrogatepass")[:LOG_LINE_MAX_BYTES].decode("utf-8", "ignore")


TOKEN_META_KEY = "_token"
"""`meta._token` carries a credential for older clients; it is never stored."""
TOKEN_QUERY_PARAM = "token"
TOKEN_COOKIE = "progressista_token"

WS_PROTOCOL_PARAM = "protocol"
"""`/ws?protocol=delta` picks the delta protocol; the snapshot protocol is the default."""
WS_PROTOCOL_SNAPSHOT = "snapshot"
WS_PROTOCOL_DELTA = "delta"
WS_MESSAGE_SNAPSHOT = "snapshot"
WS_MESSAGE_DELTA = "delta"
WS_MESSAGE_HEARTBEAT = "heartbeat"
"""`{"type": "heartbeat", "seq": S}`, S the last seq sent: the delta protocol's sign of life."""
WS_HEARTBEAT_SECONDS = 5.0
"""A delta-protocol watcher hears something at least this often (`--ws-heartbeat-interval`)."""
WS_HEARTBEAT_MISSED = 3
"""Heartbeat periods of silence after which a client takes its link for dead and reconnects."""
WS_CLOSE_GOING_AWAY = 1001
WS_CLOSE_STALLED = 1008
WS_CLOSE_UNAUTHORIZED = 4401

STATE_FILE_VERSION = 2
"""Layout version of the JSON state file; version 1 files (the earlier build) load too."""

NOTIFY_TEST_WAIT = 15.0
"""Seconds `POST /notifications/test` waits for the receiver's answer before saying "queued"."""
