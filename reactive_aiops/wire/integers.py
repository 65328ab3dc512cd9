"""Integers every JSON reader agrees on: JavaScript's safe integers, ``|n| <= 2**53 - 1``.

A JSON number is a double in JavaScript: ``2**53 + 1`` silently becomes ``2**53``, and a 401-digit
``version`` becomes ``Infinity``, so a dashboard in a browser would compare versions wrongly. The
AIOps payloads therefore carry only safe integers; protocol offsets are a separate contract
(unsigned 64-bit, checked in ``wire.messages``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: JavaScript's ``Number.MAX_SAFE_INTEGER``.
MAX_SAFE_INTEGER = 2**53 - 1


def find_unsafe_integer(value: Any, *, depth: int = 64) -> int | None:
    """The first integer in a decoded JSON ``value`` outside ``±MAX_SAFE_INTEGER``, else None.

    Walks dicts and lists depth first, in order (``bool`` is not an integer here). A value
    nested ``depth`` levels or deeper that is not an integer raises ``ValueError``; callers have
    bounded the depth before decoding. One call per payload, not one per container (the server
    checks every publication): the walk keeps its own stack of iterators.
    """
    kind = type(value)
    if kind is int:
        return value if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else None
    if depth <= 0:
        raise ValueError("JSON nested too deep")
    if kind is dict:
        stack: list[Iterator[Any]] = [iter(value.values())]
    elif kind is list:
        stack = [iter(value)]
    else:
        return None
    while stack:
        for item in stack[-1]:  # the items at nesting level len(stack)
            kind = type(item)
            if kind is int:
                if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    unsafe: int = item
                    return unsafe
                continue
            if len(stack) >= depth:
                raise ValueError("JSON nested too deep")
            if kind is dict:
                stack.append(iter(item.values()))
                break
            if kind is list:
                stack.append(iter(item))
                break
        else:
            stack.pop()
    return None
