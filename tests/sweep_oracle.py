"""The one oracle of every sweep test: which tasks a sweep must act on, decided task by task."""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Set, Tuple

from hypothesis import strategies as st

from progressistad.core.store import SWEEP_REMOVE, SWEEP_STALE, SweepPolicy, sweep_action

seconds = st.sampled_from([0, 5, 10, 30])
policies = st.builds(SweepPolicy, retention_seconds=seconds, stale_seconds=seconds,
                     max_task_age=seconds, stale_factor=st.sampled_from([0, 0, 1.5, 3]),
                     stale_min_seconds=st.sampled_from([0, 5, 10]))
"""Policies whose rules are off, equal or apart: the cases where the order of the rules shows;
some adapt to each task's cadence (its gaps between updates)."""


def expected_sweep(tasks: Mapping[str, Mapping[str, Any]], now: float, policy: SweepPolicy,
                   gaps: Optional[Mapping[str, Sequence[float]]] = None,
                   ) -> Tuple[Set[str], Set[str]]:
    """The ids a sweep at `now` must mark stale and remove, of tasks in served form by id
    with the gaps between their updates by id."""
    gaps = gaps or {}
    actions = {task_id: sweep_action(task["status"], now - task["updated_at"], policy,
                                     gaps.get(task_id, ()))
               for task_id, task in tasks.items()}
    return ({i for i, a in actions.items() if a == SWEEP_STALE},
            {i for i, a in actions.items() if a == SWEEP_REMOVE})
