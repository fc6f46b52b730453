"""Values at the edges of what the schema accepts still give a store that serves valid JSON."""

import json
import math

from progressistad.core.store import TaskStore

BIG = 1.6e308


def finite_or_null(value):
    return value is None or math.isfinite(value)


def test_rate_and_eta_near_the_float_limit_stay_finite_or_null():
    store = TaskStore()
    for events, now in (([{"task_id": "t", "n": 0, "total": 1.7e308}], 100.0),
                        ([{"task_id": "t", "n": BIG}], 100.5),
                        ([{"task_id": "t", "n": BIG + 1e307}], 100.5000001)):
        store.apply(events, now)
        task = store.get("t").to_wire()
        json.dumps(task, allow_nan=False)
        assert finite_or_null(task["rate"]) and finite_or_null(task["eta"]), task
        assert task["rate"] is None or task["rate"] > 0


def test_eta_of_a_tiny_rate_and_a_huge_remainder_is_null_not_infinite():
    store = TaskStore()
    store.apply([{"task_id": "t", "n": 0, "total": BIG}], 0.0)
    store.apply([{"task_id": "t", "n": 1e-300}], 1e6)
    task = store.get("t").to_wire()
    json.dumps(task, allow_nan=False)
    assert 0 < task["rate"] < 1e-300, "the rate is tiny and finite"
    assert task["total"] - task["n"] > 1e308, "the remainder is huge"
    assert task["eta"] is None
