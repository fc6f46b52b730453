"""Reading the served contract module (GET /static/contract.js) back, and what it should hold."""

from __future__ import annotations

import json
import re

from progressistad import contract

EXPORT = re.compile(r"^export const ([A-Z][A-Z0-9_]*) = (?:Object\.freeze\((.*)\)|(.*));$")


def contract_values() -> dict:
    """contract.py's public constants as JSON has them: sequences as lists, sets sorted."""
    values = {}
    for name in dir(contract):
        if not name.isupper() or name.startswith("_"):
            continue
        value = getattr(contract, name)
        if isinstance(value, frozenset):
            value = sorted(value)
        values[name] = list(value) if isinstance(value, tuple) else value
    return values


def exported(source: str) -> dict:
    """NAME -> value of every `export const` line; any other line must be a comment."""
    values = {}
    for line in source.splitlines():
        match = EXPORT.match(line)
        if match is None:
            assert line.startswith("//"), line
            continue
        frozen, plain = match.group(2), match.group(3)
        values[match.group(1)] = json.loads(frozen if frozen is not None else plain)
    return values
