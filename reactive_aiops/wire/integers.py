"""Integers every JSON reader agrees on: JavaScript's safe integers, ``|n| <= 2**53 - 1``.

A JSON number is a double in JavaScript: ``2**53 + 1`` silently becomes ``2**53``, and a 401-digit
``version`` becomes ``Infinity``, so a dashboard in a browser would compare versions wrongly. The
AIOps payloads therefore carry only safe integers; protocol offsets are a separate contract
(unsigned 64-bit, checked in ``wire.messages``).
"""

from __future__ import annotations

from typing import Any

#: JavaScript's ``Number.MAX_SAFE_INTEGER``.
MAX_SAFE_INTEGER = 2**53 - 1


def find_unsafe_integer(value: Any, *, depth: int = 64) -> int | None:
    """The first integer in a decoded JSON ``value`` outside ``±MAX_SAFE_INTEGER``, else None.

    Walks dicts and lists (``bool`` is not an integer here). Nesting deeper than ``depth`` raises
    ``ValueError``; callers have bounded the depth before decoding.
    """
    kind = type(value)
    if kind is int:
        return value if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else None
    if depth <= 0:
        raise ValueError("JSON nested too deep")
    if kind is dict:
        items: Any = value.values()
    elif kind is list:
        items = value
    else:
        return None
    for item in items:
        found = find_unsafe_integer(item, depth=depth - 1)
        if found is not None:
            return found
    return None
