"""The Lua scripts spell no constant of their own: every status, name and number Python has
reaches them from `scripts.CONSTANTS`. Reads the script text only; no Redis."""

from __future__ import annotations

import re

import pytest

from progressistad import contract
from progressistad.cluster import scripts
from progressistad.core import store

SCRIPTS = {name: getattr(scripts, name)
           for name in ("APPLY", "REMOVE", "REMOVE_WHERE", "SWEEP", "UPGRADE", "IMPORT")}


def code_of(script: str) -> str:
    """A script past the declarations, without its comments and argument positions."""
    assert script.startswith(scripts.DECLARATIONS)
    return re.sub(r"--[^\n]*|\b(ARGV|KEYS)\[\d+\]", "", script[len(scripts.DECLARATIONS):])


def leaves(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from leaves(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from leaves(item)
    elif not isinstance(value, scripts.Lua):
        yield value


PYTHON_STRINGS = sorted({v for v in leaves(scripts.CONSTANTS) if isinstance(v, str)}
                        | set(contract.STATUSES) | set(store.SWEEP_QUEUES)
                        | {store.SWEEP_STALE, store.SWEEP_REMOVE, store.SWEEP_KEEP}
                        | set(scripts.KEY_NAMES) | set(contract.TASK_FIELDS))
PYTHON_NUMBERS = sorted({v for v in leaves(scripts.CONSTANTS)
                         if isinstance(v, (int, float)) and not isinstance(v, bool) and v != 0})


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_no_string_of_python_is_spelled_in_a_script(name):
    code = code_of(SCRIPTS[name])
    spelled = [text for text in PYTHON_STRINGS if f'"{text}"' in code or f"'{text}'" in code]
    assert spelled == []


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_no_number_of_python_is_spelled_in_a_script(name):
    code = code_of(SCRIPTS[name])
    spelled = [number for number in PYTHON_NUMBERS
               if re.search(r"(?<![\w.])%s(?![\w.])" % re.escape(repr(number)), code)]
    assert spelled == []


def test_every_declared_name_is_used():
    used = "".join(code_of(script) for script in SCRIPTS.values()) + "".join(
        scripts.lua_literal(value) for value in scripts.CONSTANTS.values())
    assert [name for name in scripts.CONSTANTS if not re.search(rf"\b{name}\b", used)] == []
