"""The wire contract as a JavaScript module, so the dashboard imports it instead of retyping it."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any, Dict, Mapping, Optional

from progressistad import contract

HEADER = ("// The wire contract, generated from progressistad/contract.py when the daemon starts.\n"
          "// Served as {base}/static/contract.js; there is no file of this name to edit.\n")


def constants(module: ModuleType = contract) -> Dict[str, Any]:
    """The public constants of `module` (upper-case names), in the order it defines them."""
    return {name: value for name, value in vars(module).items()
            if name.isupper() and not name.startswith("_")}


def source(module: ModuleType = contract, overrides: Optional[Mapping[str, Any]] = None) -> str:
    """`export const NAME = value;` for each constant; sets become sorted, frozen arrays.

    `overrides` replace the values of constants an option sets for this daemon (the heartbeat
    period), so that the page follows the daemon it talks to.
    """
    values = constants(module)
    unknown = set(overrides or {}) - set(values)
    if unknown:
        raise KeyError(f"not contract constants: {sorted(unknown)}")
    values.update(overrides or {})
    lines = [f"export const {name} = {_literal(value)};" for name, value in values.items()]
    return HEADER + "\n".join(lines) + "\n"


def _literal(value: Any) -> str:
    if isinstance(value, (frozenset, set)):
        value = sorted(value)
    if isinstance(value, (tuple, list)):
        return f"Object.freeze({json.dumps(list(value), allow_nan=False)})"
    if isinstance(value, (str, int, float)):
        return json.dumps(value, allow_nan=False)
    raise TypeError(f"a contract constant must be text, a number or a collection of them: {value!r}")
