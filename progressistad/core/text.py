"""Text rules shared by the validators and the API description: the control characters no id may hold."""

from __future__ import annotations

import re

CONTROL_CHARACTER_RANGES = ((0x00, 0x1F), (0x7F, 0x9F))
"""C0 controls, DEL and C1 controls, as inclusive code point ranges."""

CONTROL_CHARACTERS = re.compile(
    "[" + "".join(f"\\x{low:02x}-\\x{high:02x}" for low, high in CONTROL_CHARACTER_RANGES) + "]")
