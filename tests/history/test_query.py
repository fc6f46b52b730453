"""Query arguments, the cursor, SQLite's GLOB rules in Python, and order-keeping time keys."""

from __future__ import annotations

import base64
import math
import sqlite3

import pytest
from hypothesis import example, given, settings, strategies as st

from progressistad.history import query
from progressistad.history.query import QueryError, job_query, run_query

from tests.history.helpers import T0, run


@pytest.mark.parametrize("arguments, field", [
    ({"status": "stale"}, "status"),
    ({"status": "ok"}, "status"),
    ({"limit": 0}, "limit"),
    ({"limit": 1001}, "limit"),
    ({"limit": True}, "limit"),
    ({"limit": 2.5}, "limit"),
    ({"since": math.nan}, "since"),
    ({"until": math.inf}, "until"),
    ({"since": "yesterday"}, "since"),
    ({"job": ""}, "job"),
    ({"job": "x" * 8193}, "job"),
    ({"cursor": "!!!"}, "cursor"),
    ({"cursor": ""}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'["r",1.0]').decode()}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'["r","x","y"]').decode()}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'["r",NaN,"y"]').decode()}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b'{"r":1}').decode()}, "cursor"),
    ({"cursor": query.encode_cursor("j", "job")}, "cursor"),
])
def test_bad_arguments_of_get_history_are_named(arguments, field):
    with pytest.raises(QueryError) as caught:
        run_query(**arguments)
    assert caught.value.field == field


@pytest.mark.parametrize("arguments, field", [
    ({"job": "a[b"}, "job"),
    ({"limit": 0}, "limit"),
    ({"cursor": query.encode_cursor("r", 1.0, "id")}, "cursor"),
    ({"cursor": "eyJ9"}, "cursor"),
])
def test_bad_arguments_of_get_history_jobs_are_named(arguments, field):
    with pytest.raises(QueryError) as caught:
        job_query(**arguments)
    assert caught.value.field == field


def test_defaults_and_limits():
    assert run_query() == query.RunQuery(limit=100)
    assert run_query(limit=1000, since=1, until=2.5).limit == 1000
    assert run_query(since=1).since == 1.0


def test_a_page_s_cursor_is_where_it_ended():
    runs = [run("j", ended_at=T0 - i) for i in range(4)]
    page = query.runs_page(runs, 3)
    assert page["runs"] == runs[:3]
    assert run_query(cursor=page["next"]).position == (T0 - 2, runs[2]["id"])
    assert query.runs_page(runs, 4)["next"] is None
    jobs = query.jobs_page([("a", {}), ("b", {})], more=True)
    assert job_query(cursor=jobs["next"]).position == "b"
    assert "=" not in page["next"] and "/" not in page["next"]


GLOB_CHARS = "ab]-^*?[é"


@settings(max_examples=400, deadline=None)
@given(st.text(GLOB_CHARS, max_size=6), st.text(GLOB_CHARS, max_size=6))
@example("[]-a]", "-")
@example("[]-a]", "b")
@example("[^]]", "]")
@example("[z-a]", "b")
@example("[^z-a]", "b")
@example("[a-]", "-")
@example("*", "\n")
def test_job_patterns_match_what_sqlite_glob_matches(pattern, text):
    try:
        regex = query.glob_regex(pattern)
    except QueryError:
        assert "[" in pattern
        return
    with sqlite3.connect(":memory:") as db:
        (expected,) = db.execute("SELECT ? GLOB ?", (text, pattern)).fetchone()
    assert bool(regex.fullmatch(text)) == bool(expected), (pattern, text)
    if regex.fullmatch(text):
        assert text.startswith(query.glob_prefix(pattern))


def test_glob_prefix_is_the_literal_start():
    assert query.glob_prefix("train:*") == "train:"
    assert query.glob_prefix("a?b") == "a"
    assert query.glob_prefix("[ab]") == ""
    assert query.glob_prefix("exact") == "exact"


@given(st.floats(allow_nan=False), st.floats(allow_nan=False))
@example(0.0, -0.0)
@example(T0, T0 + 1e-6)
def test_sort_keys_keep_the_order_of_times(a, b):
    if a < b:
        assert query.sort_key(a) < query.sort_key(b)
    assert query.from_sort_key(query.sort_key(a)) == a
    assert len(query.sort_key(a)) == query.SORT_KEY_CHARS
