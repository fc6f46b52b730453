"""The marshmallow schema of a progress event: the schema of record behind `schemas.load_events`.

Imported on first use only (marshmallow's import would lengthen every start, measured by
`bench/startup.py`, and the fast path in `schemas.py` takes every plainly valid event without it). Works on marshmallow 3.18
through 4.x: no `missing=`/`default=`, no `context`, no `pass_many`, and validators
raise instead of returning False.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from progressistad import contract
from progressistad.core.fields import load_log, metrics_problem
from progressistad.core.text import CONTROL_CHARACTERS


class FiniteNumber(fields.Field):
    """A JSON number that is finite: no strings, booleans, NaN or infinities."""

    def _deserialize(self, value: Any, attr: Optional[str], data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValidationError("must be a number")
        try:
            finite = math.isfinite(value)
        except OverflowError:
            finite = False
        if not finite:
            raise ValidationError("must be a finite number")
        return value


class JsonString(fields.String):
    """A string field that rejects non-string JSON values instead of coercing them."""

    def _deserialize(self, value: Any, attr: Optional[str], data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            raise ValidationError("must be a string")
        return value


class Metrics(fields.Field):
    """An object of finite numbers by name; a null value removes that key from the task."""

    def _deserialize(self, value: Any, attr: Optional[str], data: Any, **kwargs: Any) -> Any:
        problem = metrics_problem(value)
        if problem is not None:
            raise ValidationError(problem)
        return value


class LogLines(fields.Field):
    """A string or an array of strings, loaded as the list of lines it carries."""

    def _deserialize(self, value: Any, attr: Optional[str], data: Any, **kwargs: Any) -> Any:
        try:
            return load_log(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def _no_control_characters(value: str) -> None:
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError("must not contain control characters")


class EventSchema(Schema):
    """One progress event. `null` means "keep the previous value", except for `total`."""

    class Meta:
        unknown = EXCLUDE

    task_id = JsonString(
        required=True,
        validate=[validate.Length(min=1, max=contract.TASK_ID_MAX_CHARS), _no_control_characters],
    )
    desc = JsonString(allow_none=True, validate=validate.Length(max=contract.DESC_MAX_CHARS))
    total = FiniteNumber(allow_none=True, validate=validate.Range(min=0))
    n = FiniteNumber(allow_none=True, validate=validate.Range(min=0))
    unit = JsonString(allow_none=True, validate=validate.Length(max=contract.UNIT_MAX_CHARS))
    status = JsonString(allow_none=True, validate=validate.OneOf(contract.EVENT_STATUSES))
    timestamp = FiniteNumber(allow_none=True)
    meta = fields.Dict(keys=fields.String(), allow_none=True)
    metrics = Metrics(allow_none=True)
    postfix = JsonString(allow_none=True, validate=validate.Length(max=contract.POSTFIX_MAX_CHARS))
    log = LogLines(allow_none=True)


EVENT_SCHEMA = EventSchema()
