"""Default jobs and task ids (SPEC section 14): the same job tonight as last night, and a task
no other process, rank or host shares.

A bar's default job is `<program>:<description, or bar-N>`, the program being the
script's basename, the module run with -m, or the command a wrapper runs; its
default task id is that job followed by host, pid and bar number, so the dashboard
groups a program's bars (by the id's prefix before `:`) and the history keeps each
job's runs together. A job or task id the user gives wins.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Optional, Sequence

from progressistad import contract
from progressistad.client.events import desc_text, task_id_for

INTERPRETER = "python"
"""The program of code given with `python -c` or typed at the prompt: it has no name."""


def program() -> str:
    """The running program: the module run with -m, else the script's basename."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None)
    if name and name != "__main__":
        return name[:-len(".__main__")] if name.endswith(".__main__") else name
    script = sys.argv[0] if sys.argv else ""
    if not script or script in ("-c", "-"):
        return INTERPRETER
    return os.path.basename(script.rstrip("/")) or script


def command_job(command: Sequence[str]) -> str:
    """The job of a wrapped command: its program's basename."""
    return os.path.basename(command[0].rstrip("/")) or command[0]


def bar_job(program_name: str, desc: Optional[str], number: int) -> str:
    """`program:description`, or `program:bar-N` for a bar without one."""
    return f"{program_name}:{desc_text(desc) or f'bar-{number}'}"


def task_id(job: str, number: Optional[int] = None) -> str:
    """`job:host:pid[:bar-N]`, the job cut so that host, pid and bar number always fit."""
    suffix = f":{socket.gethostname()}:{os.getpid()}" + (f":bar-{number}" if number else "")
    return task_id_for(job[:max(0, contract.TASK_ID_MAX_CHARS - len(suffix))] + suffix)
