"""Values at the edges of what the schema accepts still give a store that serves valid JSON."""

import json

from progressistad.core.store import TaskStore

BIG = 1.6e308


def test_rate_and_eta_near_the_float_limit_stay_finite_or_null():
    store = TaskStore()
    store.apply([{"task_id": "t", "n": 0, "total": 1.7e308}], 100.0)
    store.apply([{"task_id": "t", "n": BIG}], 100.5)
    store.apply([{"task_id": "t", "n": BIG + 1e307}], 100.5000001)
    task = store.get("t").to_wire()
    json.dumps(task, allow_nan=False)
    assert task["rate"] is None or task["rate"] > 0


def test_eta_of_a_tiny_rate_and_a_huge_remainder_is_null_not_infinite():
    store = TaskStore()
    store.apply([{"task_id": "t", "n": 0, "total": BIG}], 0.0)
    store.apply([{"task_id": "t", "n": 1e-300}], 1e6)
    task = store.get("t").to_wire()
    json.dumps(task, allow_nan=False)
