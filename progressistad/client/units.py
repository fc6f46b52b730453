"""Counts, sizes and rates scaled for people, as the dashboard shows them (static/format.js).

The rules are the dashboard's, value for value (tests/client/test_units.py runs
both on the same figures): k/M/G for counts, KiB/MiB/GiB for byte units, three
significant digits, halves rounded up as JavaScript's toFixed does.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Optional, Tuple

SI_PREFIXES = ("", "k", "M", "G", "T", "P", "E")
BINARY_PREFIXES = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
BYTE_UNITS = frozenset(("b", "byte", "bytes", "o", "octets"))


def is_byte_unit(unit: Any) -> bool:
    """Whether `unit` counts bytes, so sizes read as KiB/MiB/GiB."""
    return isinstance(unit, str) and unit.strip().lower() in BYTE_UNITS


def _fixed(value: float, digits: int) -> str:
    """JavaScript's `value.toFixed(digits)` for 0 <= value < 1e21, trailing zeros trimmed."""
    text = f"{Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _scaled(value: float, step: int) -> Tuple[float, int]:
    """|value| in units of step**index, below step (rounded), and the index."""
    scaled, index = abs(value), 0
    while scaled >= step - 0.5 and index < len(SI_PREFIXES) - 1:
        scaled /= step
        index += 1
    return scaled, index


def _digits(scaled: float) -> int:
    """Decimals for three significant digits at most: 1.23, 12.3, 123 (what tqdm shows)."""
    return 2 if scaled < 10 else 1 if scaled < 100 else 0


def _sign(value: float) -> str:
    return "-" if value < 0 else ""


def scale_count(value: Any) -> str:
    """A plain count with k/M/G scaling: 999, 1.2k, 3.45M."""
    if not _finite(value):
        return "?"
    scaled, index = _scaled(value, 1000)
    digits = 0 if index == 0 and float(scaled).is_integer() else _digits(scaled)
    return _sign(value) + _fixed(scaled, digits) + SI_PREFIXES[index]


def scale_bytes(value: Any) -> str:
    """A byte count with binary prefixes: 512 B, 1.5 KiB, 20 MiB."""
    if not _finite(value):
        return "?"
    scaled, index = _scaled(value, 1024)
    digits = 0 if index == 0 else _digits(scaled)
    return _sign(value) + _fixed(scaled, digits) + " " + BINARY_PREFIXES[index]


def format_amount(value: Any, unit: Optional[str]) -> str:
    """`value` with its unit: "1.2k files", "3.5 MiB", "42"."""
    if is_byte_unit(unit):
        return scale_bytes(value)
    count = scale_count(value)
    return f"{count} {unit}" if unit else count


def format_progress(n: Any, total: Any, unit: Optional[str], between: str = " / ") -> str:
    """"n / total unit", or "n unit" when the total is unknown."""
    if total is None:
        return format_amount(n, unit)
    if is_byte_unit(unit):
        return scale_bytes(n) + between + scale_bytes(total)
    return scale_count(n) + between + scale_count(total) + (f" {unit}" if unit else "")


def format_rate(rate: Any, unit: Optional[str]) -> str:
    """Units per second: "12.5 files/s", "3.2 MiB/s"; empty when unknown."""
    if not _finite(rate):
        return ""
    if is_byte_unit(unit):
        return scale_bytes(rate) + "/s"
    return f"{scale_count(rate)} {unit or 'it'}/s"
