"""Validation of the telemetry fields of an event (`metrics`, `postfix`, `log`): each limit at
its edge and one past it, errors naming the field and the batch index."""

from __future__ import annotations

import pytest

from progressistad import contract
from progressistad.core.schemas import InvalidInput, load_events, parse_json


def loaded(**fields):
    return load_events({"task_id": "t", **fields}).events[0]


def refused(field, value, index=1):
    """The error for `value` in `field` of the second event of a batch."""
    with pytest.raises(InvalidInput) as caught:
        load_events([{"task_id": "ok"}, {"task_id": "t", field: value}])
    error = caught.value
    assert error.details["field"] == field and error.details["index"] == index
    assert error.message.startswith(f"event {index}: field '{field}': ")
    return error.message


KEY = "k" * contract.METRIC_KEY_MAX_CHARS


def test_metrics_take_finite_numbers_and_null_under_keys_up_to_the_limit():
    metrics = {KEY: 1.5, "n": 3, "gone": None, "big": 1e308, "neg": -2}
    assert loaded(metrics=metrics)["metrics"] == metrics
    assert loaded(metrics={})["metrics"] == {}


def test_metrics_null_as_a_whole_keeps_the_previous_ones():
    assert "metrics" not in loaded(metrics=None)


@pytest.mark.parametrize("metrics, says", [
    ({KEY + "k": 1}, "1 to 64 characters"),
    ({"": 1}, "1 to 64 characters"),
    ({"a": True}, "finite number"),
    ({"a": "1"}, "finite number"),
    ({"a": [1]}, "finite number"),
    ({"a": {"b": 1}}, "finite number"),
    ({"a": 10 ** 400}, "finite number"),
    ([1, 2], "object of numbers"),
    ("loss=1", "object of numbers"),
    (3, "object of numbers"),
])
def test_metrics_refused(metrics, says):
    assert says in refused("metrics", metrics)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_metrics_refuse_what_json_allows_beyond_finite(text):
    payload = parse_json(b'[{"task_id": "ok"}, {"task_id": "t", "metrics": {"a": %s}}]' % text.encode())
    with pytest.raises(InvalidInput) as caught:
        load_events(payload)
    assert (caught.value.details["field"], caught.value.details["index"]) == ("metrics", 1)
    assert "key 'a'" in caught.value.message


def test_postfix_up_to_its_limit():
    assert loaded(postfix="p" * contract.POSTFIX_MAX_CHARS)["postfix"] == "p" * contract.POSTFIX_MAX_CHARS
    assert loaded(postfix="")["postfix"] == ""
    refused("postfix", "p" * (contract.POSTFIX_MAX_CHARS + 1))
    assert "string" in refused("postfix", 5)


@pytest.mark.parametrize("log, lines", [
    ("one", ["one"]),
    ("one\ntwo", ["one", "two"]),
    ("one\ntwo\n", ["one", "two"]),
    ("one\r\ntwo\r\n", ["one", "two"]),
    ("one\n\nthree", ["one", "", "three"]),
    ("", [""]),
    ("\n", [""]),
    ("50%\r60%", ["50%\r60%"]),
    (["one", "two"], ["one", "two"]),
    (["one\ntwo", "three"], ["one", "two", "three"]),
    ([], []),
])
def test_log_is_loaded_as_lines(log, lines):
    assert loaded(log=log)["log"] == lines


def test_log_lines_in_one_event_up_to_the_limit_as_a_string_or_an_array():
    most = contract.LOG_MAX_LINES
    assert len(loaded(log=["x"] * most)["log"]) == most
    assert len(loaded(log="x\n" * most)["log"]) == most
    assert f"{most + 1} lines" in refused("log", ["x"] * (most + 1))
    assert f"{most + 1} lines" in refused("log", "x\n" * (most + 1))
    assert f"{most + 1} lines" in refused("log", ["x"] * (most - 1) + ["y\nz"])


@pytest.mark.parametrize("char", ["a", "é", "€", "😀"])
def test_a_log_line_up_to_its_limit_in_bytes_of_utf8(char):
    width = len(char.encode("utf-8"))
    fits = char * (contract.LOG_LINE_MAX_BYTES // width)
    assert loaded(log=[fits])["log"] == [fits]
    over = fits + "a" * (contract.LOG_LINE_MAX_BYTES % width + 1)
    assert f"{contract.LOG_LINE_MAX_BYTES + 1} bytes" in refused("log", ["ok", over])
    assert "line 1 is" in refused("log", ["ok", over])


def test_a_lone_surrogate_in_a_log_line_counts_as_three_bytes():
    assert loaded(log=["\ud800" * 341])["log"] == ["\ud800" * 341]
    refused("log", ["\ud800" * 342])


@pytest.mark.parametrize("log", [5, {"a": 1}, ["ok", 5], ["ok", None], True])
def test_log_refused_when_not_strings(log):
    assert "a string or an array of strings" in refused("log", log)


def test_a_single_event_names_the_field_without_an_index():
    with pytest.raises(InvalidInput) as caught:
        load_events({"task_id": "t", "metrics": {"a": "x"}})
    assert caught.value.details["field"] == "metrics" and "index" not in caught.value.details
    assert caught.value.message.startswith("field 'metrics': ")


def test_the_new_fields_are_not_reported_as_ignored():
    parsed = load_events({"task_id": "t", "metrics": {"a": 1}, "postfix": "p", "log": "l", "logs": 1})
    assert parsed.ignored == ["logs"]
