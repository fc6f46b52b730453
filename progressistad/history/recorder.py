"""Recording: the runs this daemon's own changes end go into the history.

A subscriber of the `TransitionObserver`. A change another daemon of the group
made (heard from the shared store) is recorded there, by the daemon that applied
it, and sweeps by the daemon that ran them: each run is recorded once. A run
recorded twice all the same (say, a reply lost and the change made again) is
stored once, since its id is a hash of what it is (`records.run_id`).
"""

from __future__ import annotations

from typing import List

from progressistad.history import records
from progressistad.history.records import FAILED_STATUSES, Run
from progressistad.history.service import History
from progressistad.transitions import Transition


class Recorder:
    """Hands the history the runs ended by transitions this daemon made."""

    def __init__(self, history: History) -> None:
        self.history = history

    def on_transitions(self, transitions: List[Transition]) -> None:
        runs: List[Run] = []
        for transition in transitions:
            ends = transition.step.ends
            if not ends or not transition.local:
                continue
            # Only failed and abandoned runs keep a log tail: copy it only for them.
            log_before, log_after = transition.log_tails() if ends in FAILED_STATUSES \
                else ([], [])
            runs += records.ended_runs(
                transition.previous(), None if transition.after is None else transition.task,
                transition.previous_run_started_at, log_before=log_before, log_after=log_after,
                children=self.history.children).runs
        self.history.record(runs)
