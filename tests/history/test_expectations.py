"""Nearest-rank figures, overdue, and the per-job cache: pure."""

from __future__ import annotations

import pytest

from progressistad.history import expectations
from progressistad.history.expectations import Expectations, figures, nearest_rank, overdue

from tests.history.helpers import T0, run


@pytest.mark.parametrize("values, median, p90", [
    ([7], 7, 7),
    ([1, 2], 1, 2),
    ([1, 2, 3], 2, 3),
    ([1, 2, 3, 4], 2, 4),
    (list(range(1, 11)), 5, 9),
    (list(range(1, 21)), 10, 18),
    ([5, 1, 4, 2, 3], 3, 5),
])
def test_nearest_rank_median_and_90th_percentile(values, median, p90):
    assert figures(values) == (median, p90, len(values))
    assert nearest_rank(sorted(values), 1.0) == max(values)


def test_no_durations_have_no_figures():
    assert figures([]) is None


def test_overdue_is_strictly_past_the_factor_times_the_90th_percentile():
    assert not overdue(150, 100, 1.5)
    assert overdue(150.001, 100, 1.5)
    assert overdue(101, 100, 1.0)
    assert expectations.DEFAULT_OVERDUE_FACTOR == 1.5


def closes(cache, job, durations, start=T0):
    for i, duration in enumerate(durations):
        cache.add(run(job, "close", start + i, duration), T0)


def test_an_expectation_needs_three_close_runs_and_only_close_runs_count():
    cache = Expectations()
    closes(cache, "j", [100, 120])
    cache.add(run("j", "error", T0 + 50, 5), T0)
    cache.add(run("j", "abandoned", T0 + 51, 5), T0)
    assert cache.get("j", T0) is None
    closes(cache, "j", [110], start=T0 + 60)
    found = cache.get("j", T0)
    assert found == (110, 120, 180)


def test_the_figures_are_over_the_last_twenty_close_runs_by_end_whatever_the_order():
    cache = Expectations(factor=2.0)
    closes(cache, "j", [1000] * 5, start=T0)  # oldest: leave the window
    closes(cache, "j", range(1, 21), start=T0 + 100)
    cache.add(run("j", "close", T0 + 50, 500), T0)  # arrives late, older than the window
    assert cache.get("j", T0) == (10, 18, 36)


def test_a_run_counted_twice_is_one_run():
    cache = Expectations()
    one = run("j", "close", T0, 10)
    for _ in range(3):
        cache.add(one, T0)
    assert cache.get("j", T0) is None


def test_unknown_jobs_are_wanted_once_loaded_and_merged_with_what_arrived_meanwhile():
    cache = Expectations()
    assert cache.get("j", T0) is None
    assert cache.take_wanted() == {"j"}
    assert cache.get("j", T0 + 1) is None and not cache.wanted, "asked once while loading"
    closes(cache, "j", [30], start=T0 + 100)
    loaded = [(T0 + i, f"id{i}", 10.0 * (i + 1)) for i in range(2)]
    cache.load("j", loaded + [(T0 + 100, run("j", "close", T0 + 100, 30)["id"], 30.0)], T0 + 2)
    assert cache.get("j", T0 + 3) == (20, 30, 45)


def test_loaded_jobs_are_read_again_after_the_refresh_and_failed_loads_after_the_retry():
    cache = Expectations(refresh_seconds=60, retry_seconds=10)
    cache.get("a", T0)
    cache.get("b", T0)
    cache.take_wanted()
    cache.load("a", [], T0)
    cache.get("a", T0 + 59)
    cache.get("b", T0 + 9)
    assert not cache.wanted
    cache.get("a", T0 + 61)
    cache.get("b", T0 + 11)
    assert cache.take_wanted() == {"a", "b"}


def test_the_cache_keeps_the_jobs_asked_for_most_recently():
    cache = Expectations(max_jobs=2)
    for job in "abc":
        closes(cache, job, [1, 2, 3])
    cache.get("b", T0)
    closes(cache, "d", [1, 2, 3])
    assert len(cache) == 2
    assert cache.get("b", T0) is not None and cache.get("d", T0) is not None


def test_forget_drops_one_job_or_all():
    cache = Expectations()
    closes(cache, "a", [1, 2, 3])
    closes(cache, "b", [1, 2, 3])
    cache.forget("a")
    assert cache.get("a", T0) is None and cache.get("b", T0) is not None
    cache.forget()
    assert len(cache) == 0 and cache.get("b", T0) is None
