"""The hot-path validator agrees with the marshmallow schema, the schema of record."""

import math

from hypothesis import given, settings, strategies as st

from progressistad import contract
from progressistad.core.schemas import InvalidInput, _schema_event, fast_event

TEXT = st.text(max_size=80) | st.text(alphabet=st.characters(max_codepoint=0x9f), max_size=5)
NUMBERS = (st.integers(min_value=-10**400, max_value=10**400) | st.floats(allow_nan=True, allow_infinity=True)
           | st.integers(min_value=-5, max_value=5))
VALUES = st.none() | st.booleans() | NUMBERS | TEXT | st.lists(st.integers(), max_size=2) \
    | st.dictionaries(st.text(max_size=5), st.integers(), max_size=3) \
    | st.sampled_from(contract.STATUSES) | st.text(min_size=60, max_size=70) \
    | st.text(min_size=1020, max_size=1030)
TELEMETRY_VALUES = st.dictionaries(st.text(max_size=66), st.none() | st.booleans() | NUMBERS | TEXT, max_size=18) \
    | st.lists(TEXT | st.text(alphabet="ab\n\r", max_size=8) | st.integers(), max_size=52) \
    | st.text(alphabet="ab\n\r", max_size=60) | st.text(min_size=250, max_size=260) \
    | st.text(alphabet=st.characters(min_codepoint=0x800), min_size=340, max_size=345)
VALUES = VALUES | TELEMETRY_VALUES
EVENTS = st.dictionaries(
    st.sampled_from(contract.EVENT_FIELDS + ("extra",)) | st.text(max_size=4),
    VALUES,
    max_size=9,
).map(lambda d: d) | st.fixed_dictionaries({"task_id": TEXT}, optional={f: VALUES for f in contract.EVENT_FIELDS[1:]})


def same(a, b):
    if a.keys() != b.keys():
        return False
    return all(a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])) for k in a)


@settings(max_examples=1500, deadline=None)
@given(EVENTS)
def test_fast_path_accepts_only_what_the_schema_accepts_and_loads_it_the_same(raw):
    fast = fast_event(raw)
    try:
        slow = _schema_event(raw, "", None)
    except InvalidInput:
        assert fast is None, raw
        return
    if fast is not None:
        assert same(fast, slow), (raw, fast, slow)
        assert all(type(fast[k]) is type(slow[k]) for k in fast)


def test_fast_path_takes_the_common_event():
    raw = {"task_id": "job", "n": 3, "total": 10.5, "desc": "d", "unit": "B", "status": "update",
           "timestamp": 1.5, "meta": {"a": 1}, "unknown": 1, "total_": None}
    assert fast_event(raw) == {k: v for k, v in raw.items() if k in contract.EVENT_FIELDS}


def test_fast_path_takes_an_event_with_telemetry():
    raw = {"task_id": "job", "n": 3, "metrics": {"loss": 0.25, "epoch": 2, "gone": None},
           "postfix": "loss=0.25", "log": ["one", "two"]}
    assert fast_event(raw) == raw
    assert fast_event({"task_id": "job", "log": "one\r\ntwo\n"})["log"] == ["one", "two"]
