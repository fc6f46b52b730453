"""Event and query validation: what is accepted, and errors that name the field and index."""

import json

import pytest

from progressistad import contract
from progressistad.core.schemas import InvalidInput, TaskQuery, load_events, parse_json


def test_valid_event_keeps_given_fields_and_drops_nulls_except_total():
    parsed = load_events({"task_id": "a", "desc": None, "n": 3, "total": None, "unit": None})
    assert parsed.events == [{"task_id": "a", "n": 3, "total": None}]


def test_ints_stay_ints_and_floats_stay_floats():
    event = load_events({"task_id": "a", "n": 3, "total": 2.5}).events[0]
    assert type(event["n"]) is int and type(event["total"]) is float


def test_unknown_fields_are_ignored_and_named():
    parsed = load_events([{"task_id": "a", "totl": 1}, {"task_id": "b", "zz": 1, "totl": 2}])
    assert parsed.ignored == ["totl", "zz"]
    assert all("totl" not in e for e in parsed.events)


def test_meta_token_is_taken_out_of_meta():
    parsed = load_events({"task_id": "a", "meta": {"_token": "s3cret", "host": "h"}})
    assert parsed.events[0]["meta"] == {"host": "h"}
    assert parsed.meta_tokens == ["s3cret"]


@pytest.mark.parametrize(
    "event, field",
    [
        ({}, "task_id"),
        ({"task_id": ""}, "task_id"),
        ({"task_id": None}, "task_id"),
        ({"task_id": 5}, "task_id"),
        ({"task_id": "x" * (contract.TASK_ID_MAX_CHARS + 1)}, "task_id"),
        ({"task_id": "a\nb"}, "task_id"),
        ({"task_id": "a\x00b"}, "task_id"),
        ({"task_id": "a", "n": -1}, "n"),
        ({"task_id": "a", "n": float("nan")}, "n"),
        ({"task_id": "a", "n": float("inf")}, "n"),
        ({"task_id": "a", "n": "5"}, "n"),
        ({"task_id": "a", "n": True}, "n"),
        ({"task_id": "a", "total": -0.5}, "total"),
        ({"task_id": "a", "total": float("-inf")}, "total"),
        ({"task_id": "a", "desc": "d" * (contract.DESC_MAX_CHARS + 1)}, "desc"),
        ({"task_id": "a", "desc": 7}, "desc"),
        ({"task_id": "a", "unit": "u" * (contract.UNIT_MAX_CHARS + 1)}, "unit"),
        ({"task_id": "a", "status": "done"}, "status"),
        ({"task_id": "a", "status": "stale"}, "status"),
        ({"task_id": "a", "timestamp": "yesterday"}, "timestamp"),
        ({"task_id": "a", "meta": [1, 2]}, "meta"),
        ({"task_id": "a", "meta": {"blob": "x" * contract.META_MAX_BYTES}}, "meta"),
    ],
)
def test_bad_field_is_named(event, field):
    with pytest.raises(InvalidInput) as caught:
        load_events(event)
    assert caught.value.details["field"] == field
    assert f"'{field}'" in caught.value.message
    assert "index" not in caught.value.details


def test_batch_error_names_the_index():
    with pytest.raises(InvalidInput) as caught:
        load_events([{"task_id": "a"}, {"task_id": "b"}, {"task_id": "c", "n": -1}])
    assert caught.value.details["index"] == 2
    assert caught.value.message.startswith("event 2: field 'n'")


def test_meta_token_does_not_count_toward_the_meta_limit():
    meta = {"_token": "t" * 100, "blob": "x" * (contract.META_MAX_BYTES - 20)}
    assert load_events({"task_id": "a", "meta": meta}).events[0]["meta"]["blob"]


@pytest.mark.parametrize("payload", [[], [1], "text", 5, None, [[{"task_id": "a"}]]])
def test_payloads_that_are_not_events(payload):
    with pytest.raises(InvalidInput):
        load_events(payload)


def test_batch_limit():
    load_events([{"task_id": "a"}] * contract.BATCH_MAX_EVENTS)
    with pytest.raises(InvalidInput, match="batch too large"):
        load_events([{"task_id": "a"}] * (contract.BATCH_MAX_EVENTS + 1))


@pytest.mark.parametrize("body", [b"{", b"", b"\xff\xfe", b"[" * 100000, b'{"task_id": "a",}'])
def test_malformed_json(body):
    with pytest.raises(InvalidInput, match="malformed JSON"):
        parse_json(body)


def test_nan_parses_so_the_schema_can_name_the_field():
    with pytest.raises(InvalidInput) as caught:
        load_events(parse_json(b'{"task_id": "a", "total": NaN}'))
    assert caught.value.details["field"] == "total"


def test_lone_surrogates_survive_to_ascii_json():
    event = load_events(parse_json(b'{"task_id": "a\\ud800"}')).events[0]
    assert json.loads(json.dumps(event))["task_id"] == "a\ud800"


@pytest.mark.parametrize(
    "arguments, statuses, older_than",
    [
        ({}, None, None),
        ({"status": [b"close"]}, {"close"}, None),
        ({"status": [b"close,error"]}, {"close", "error"}, None),
        ({"older_than": [b"600"]}, None, 600.0),
        ({"older_than": [b"0.5"], "token": [b"x"]}, None, 0.5),
    ],
)
def test_task_query_parses(arguments, statuses, older_than):
    query = TaskQuery.parse(arguments, allowed=("status", "older_than"))
    assert query.statuses == (None if statuses is None else frozenset(statuses))
    assert query.older_than == older_than


@pytest.mark.parametrize(
    "arguments, parameter",
    [
        ({"status": [b"closed"]}, "status"),
        ({"older_than": [b"-1"]}, "older_than"),
        ({"older_than": [b"nan"]}, "older_than"),
        ({"older_than": [b"ten"]}, "older_than"),
        ({"olderthan": [b"10"]}, "olderthan"),
        ({"status": [b"close", b"error"]}, "status"),
        ({"status": [b"\xff"]}, "status"),
    ],
)
def test_task_query_rejects(arguments, parameter):
    with pytest.raises(InvalidInput) as caught:
        TaskQuery.parse(arguments, allowed=("status", "older_than"))
    assert caught.value.details["parameter"] == parameter


def test_integer_too_large_for_a_float_is_not_finite():
    with pytest.raises(InvalidInput) as caught:
        load_events({"task_id": "a", "n": 10**400})
    assert caught.value.details["field"] == "n"


def test_integer_with_too_many_digits_is_malformed_json_said_plainly():
    with pytest.raises(InvalidInput, match="too many digits"):
        parse_json(b'{"n": ' + b"9" * 5000 + b"}")


def test_the_schema_of_record_knows_the_fields_the_fast_path_knows():
    from progressistad.core.eventschema import EVENT_SCHEMA

    assert set(EVENT_SCHEMA.fields) == set(contract.EVENT_FIELDS)


def test_the_daemon_starts_without_marshmallow_and_takes_it_for_an_invalid_event():
    import subprocess
    import sys

    code = ("import sys; import progressistad.daemon.main;"
            "from progressistad.core.schemas import InvalidInput, load_events;"
            "print('marshmallow' in sys.modules); load_events({'task_id': 'a', 'n': 1});"
            "print('marshmallow' in sys.modules)\n"
            "try: load_events({'task_id': 'a', 'n': 'x'})\n"
            "except InvalidInput as exc: print(exc.message)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:3] == ["False", "False", "field 'n': must be a number"]
