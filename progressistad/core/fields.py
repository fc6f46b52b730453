"""Field rules the fast path (`schemas`) and the schema of record (`eventschema`) share."""

from __future__ import annotations

import sys
from typing import Any, List, Optional

from progressistad import contract

_FLOAT_MAX = sys.float_info.max


def is_number(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return value - value == 0.0
    return kind is int and -_FLOAT_MAX <= value <= _FLOAT_MAX


def metrics_problem(value: Any) -> Optional[str]:
    """What is wrong with an event's `metrics`, or None: an object of finite numbers (null
    removes a key), keys of 1 to METRIC_KEY_MAX_CHARS characters."""
    if type(value) is not dict:
        return "must be an object of numbers"
    for key, number in value.items():
        if type(key) is not str or not 0 < len(key) <= contract.METRIC_KEY_MAX_CHARS:
            return f"key {str(key)[:contract.METRIC_KEY_MAX_CHARS]!r}: must be 1 to" \
                   f" {contract.METRIC_KEY_MAX_CHARS} characters"
        if type(number) is float:  # the common value, without the call
            if number - number == 0.0:
                continue
        elif number is None or is_number(number):
            continue
        return f"key {key!r}: must be a finite number or null"
    return None


def load_log(value: Any) -> List[str]:
    """The lines of an event's `log` (`contract.split_log`); raises ValueError saying what is wrong."""
    if type(value) is not str and not (type(value) is list and all(type(text) is str for text in value)):
        raise ValueError("must be a string or an array of strings")
    lines = contract.split_log(value)
    if len(lines) > contract.LOG_MAX_LINES:
        raise ValueError(f"{len(lines)} lines, at most {contract.LOG_MAX_LINES} in one event")
    for number, line in enumerate(lines):
        size = contract.utf8_size(line)
        if size > contract.LOG_LINE_MAX_BYTES:
            raise ValueError(f"line {number} is {size} bytes of UTF-8,"
                             f" at most {contract.LOG_LINE_MAX_BYTES}")
    return lines
