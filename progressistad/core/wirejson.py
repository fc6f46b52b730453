"""Compact JSON of the served form, as the WebSocket hub and the state file write it.

ASCII-escaped (json's default), so that any string a client sent encodes. A task's
entry, `"task_id":{...}`, is what a "tasks" object is made of: a task keeps its
entry until it changes (`Task.entry`), so a snapshot of many tasks of which few
changed encodes only those again.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

_encode_compact = json.JSONEncoder(separators=(",", ":")).encode
"""json.dumps with separators builds an encoder per call, a large share of an entry's cost
(bench/costs.py measures `dumps`)."""


def dumps(value: Any) -> str:
    return _encode_compact(value)


def entry(task_id: str, wire: Mapping[str, Any]) -> str:
    """One task as it stands in a "tasks" object: `"task_id":{...}`."""
    return json.dumps(task_id) + ":" + _encode_compact(wire)


def tasks_object(entries: Iterable[str]) -> str:
    """A "tasks" object made of entries."""
    return "{" + ",".join(entries) + "}"
