"""The figures /metrics shows: read at most every refresh, the last ones kept while the history
cannot be read, none with --metrics-max-jobs 0."""

from __future__ import annotations

from progressistad.history.figures import NO_FIGURES, JobFigures
from progressistad.history.query import HistoryUnavailable

from tests.history.conftest import run


class History:
    """Counts the reads, and fails them while `down`."""

    def __init__(self) -> None:
        self.reads = 0
        self.down = False

    async def job_metrics(self, limit):
        self.reads += 1
        if self.down:
            raise HistoryUnavailable("locked")
        return {"jobs": {"j": {"limit": limit, "read": self.reads}}, "more": False}


def test_figures_are_read_at_most_every_refresh_and_kept_through_a_fault():
    now = [0.0]
    history = History()
    figures = JobFigures(history, 7, clock=lambda: now[0], refresh_seconds=5.0)

    async def body():
        first = await figures.current()
        assert first["jobs"]["j"] == {"limit": 7, "read": 1}
        now[0] = 4.0
        assert await figures.current() is first and history.reads == 1
        now[0] = 9.5
        history.down = True
        assert await figures.current() is first and history.reads == 2
        now[0] = 20.0
        history.down = False
        assert (await figures.current())["jobs"]["j"]["read"] == 3
    run(body())


def test_no_jobs_are_shown_with_a_cap_of_0():
    history = History()
    assert run(JobFigures(history, 0).current()) is NO_FIGURES and history.reads == 0
