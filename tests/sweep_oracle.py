"""The one oracle of every sweep test: which tasks a sweep must act on, decided task by task."""

from __future__ import annotations

from typing import Any, Mapping, Set, Tuple

from hypothesis import strategies as st

from progressistad.core.store import SWEEP_REMOVE, SWEEP_STALE, SweepPolicy, sweep_action

seconds = st.sampled_from([0, 5, 10, 30])
policies = st.builds(SweepPolicy, retention_seconds=seconds, stale_seconds=seconds,
                     max_task_age=seconds)
"""Policies whose rules are off, equal or apart: the cases where the order of the rules shows."""


def expected_sweep(tasks: Mapping[str, Mapping[str, Any]], now: float,
                   policy: SweepPolicy) -> Tuple[Set[str], Set[str]]:
    """The ids a sweep at `now` must mark stale and remove, of tasks in served form by id."""
    actions = {task_id: sweep_action(task["status"], now - task["updated_at"], policy)
               for task_id, task in tasks.items()}
    return ({i for i, a in actions.items() if a == SWEEP_STALE},
            {i for i, a in actions.items() if a == SWEEP_REMOVE})
