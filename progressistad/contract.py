"""The wire contract shared by the daemon and the client: statuses, limits, message shapes.

Standard library only: the client imports it too.
"""

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

EVENT_FIELDS = ("task_id", "desc", "total", "n", "unit", "status", "timestamp", "meta")
"""Fields of a progress event, as POSTed to /progress."""
TASK_FIELDS = EVENT_FIELDS + (
    "created_at",
    "updated_at",
    "done_at",
    "stale_at",
    "rate",
    "eta",
)
"""Fields of a task as served by /tasks and the WebSocket."""

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
WS_CLOSE_GOING_AWAY = 1001
WS_CLOSE_STALLED = 1008
WS_CLOSE_UNAUTHORIZED = 4401

STATE_FILE_VERSION = 2
"""Layout version of the JSON state file; version 1 files (the earlier build) load too."""

NOTIFY_TEST_WAIT = 15.0
"""Seconds `POST /notifications/test` waits for the receiver's answer before saying "queued"."""
