"""Shared helpers for the network and reliability tests (proxy, bridge, app, reliability)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

#: bound for something that must happen over loopback; absence checks use short windows instead
WAIT = 5.0


async def wait_until(
    predicate: Callable[[], bool], within: float = WAIT, what: str = "condition"
) -> None:
    """Poll ``predicate`` (a network side effect, not a timer) until true; fail after ``within``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.005)


def open_fds() -> int:
    """Open file descriptors of this process (sockets included)."""
    return len(os.listdir("/proc/self/fd"))
