"""Progress events as the daemon accepts them: built from a bar's state, trimmed to the wire limits."""

from __future__ import annotations

import math
import numbers
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from progressistad import contract

State = Tuple[Any, Any, Any, Any, Any, Any]
"""(n, total, desc, unit, postfix, metrics) of one bar."""



def make_event(task_id: str, status: str, state: State, meta: Optional[dict] = None,
               now: Optional[float] = None, previous: Optional[State] = None) -> Dict[str, Any]:
    """One event for POST /progress that the daemon's schema will accept whatever the bar holds.

    `postfix` and `metrics` go out only where they differ from `previous`, the state last delivered.
    """
    n, total, desc, unit, postfix, metrics = state
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
    before_postfix, before_metrics = (previous[4], previous[5]) if previous else ("", None)
    if (postfix or "") != (before_postfix or ""):
        event["postfix"] = postfix_text(postfix)
    changed = {k: v for k, v in (metrics or {}).items() if (before_metrics or {}).get(k) != v}
    if changed:
        event["metrics"] = changed
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


def postfix_text(postfix: Any) -> str:
    """The postfix tqdm shows, as the daemon accepts it."""
    return _utf8(str(postfix or ""))[:contract.POSTFIX_MAX_CHARS]


def merge_metrics(current: Mapping[str, float], given: Iterable[Tuple[Any, Any]]) -> Dict[str, float]:
    """`current` updated with the finite numbers among `given`; a key beyond METRICS_MAX_KEYS
    is dropped."""
    merged = dict(current)
    for key, value in given:
        number = _metric(value)
        name = _utf8(str(key))[:contract.METRIC_KEY_MAX_CHARS]
        if number is None or not name:
            continue
        if name in merged or len(merged) < contract.METRICS_MAX_KEYS:
            merged[name] = number
    return merged


def _metric(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(number):
        return None
    return int(number) if isinstance(value, numbers.Integral) else number


def log_lines(text: Union[str, bytes, Iterable[Any]]) -> List[str]:
    """Lines for the log tail from a text or a list of texts, each split on newlines and cut to
    LOG_LINE_MAX_BYTES."""
    items = [text] if isinstance(text, (str, bytes)) else text
    lines: List[str] = []
    for item in items:
        if isinstance(item, bytes):
            item = item.decode("utf-8", "replace")
        parts = str(item).split("\n")
        if len(parts) > 1 and not parts[-1]:
            parts.pop()  # "a\n" is one line, as print() and logging write it
        lines.extend(log_line(part) for part in parts)
    return lines


def log_line(raw: str) -> str:
    """One line as a terminal would show it (after its last carriage return), at most
    LOG_LINE_MAX_BYTES of UTF-8."""
    line = raw.rstrip("\r").rpartition("\r")[2]
    if len(line) * 4 <= contract.LOG_LINE_MAX_BYTES and line.isprintable():
        return line
    return contract.cut_log_line(_utf8(line))


def _utf8(text: str) -> str:
    """`text` without lone surrogates, which no UTF-8 JSON body can carry."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def log_chunks(lines: List[str]) -> List[List[str]]:
    """`lines` in runs of at most LOG_MAX_LINES, as one event may carry."""
    step = contract.LOG_MAX_LINES
    return [lines[i:i + step] for i in range(0, len(lines), step)]
