"""Progress events as the daemon accepts them: built from a bar's state, trimmed to the wire limits."""

from __future__ import annotations

import math
import time
from typing import Any, Dict, Optional, Tuple

from progressistad import contract

State = Tuple[Any, Any, Any, Any]
"""(n, total, desc, unit) of one bar."""


def make_event(task_id: str, status: str, state: State, meta: Optional[dict] = None,
               now: Optional[float] = None) -> Dict[str, Any]:
    """One event for POST /progress that the daemon's schema will accept whatever the bar holds."""
    n, total, desc, unit = state
    event: Dict[str, Any] = {
        "task_id": task_id,
        "status": status,
        "n": _count(n),
        "total": _total(total),
        "desc": _desc(desc),
        "timestamp": time.time() if now is None else now,
    }
    if unit:
        event["unit"] = str(unit)[: contract.UNIT_MAX_CHARS]
    if meta:
        event["meta"] = meta
    return event


def _desc(desc: Any) -> str:
    text = str(desc or "")
    # tqdm.set_description() stores "desc: " for its own layout; the dashboard wants "desc".
    return (text[:-2] if text.endswith(": ") else text)[: contract.DESC_MAX_CHARS]


def _count(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    if not math.isfinite(number) or number < 0:
        return 0
    return int(number) if number.is_integer() else number


def _total(value: Any) -> Optional[float]:
    if value is None:
        return None
    number = _count(value)
    return number if number or value == 0 else None


def task_id_for(raw: str) -> str:
    """A task id the daemon accepts: control characters replaced, length capped."""
    cleaned = "".join(ch if ch.isprintable() else "_" for ch in str(raw))
    return (cleaned or "task")[: contract.TASK_ID_MAX_CHARS]
