"""Every scenario by name, and a runner that turns a crash or a hang into a failed row."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable

from chaos import fuzz, kills, network, redis_faults, sessions
from chaos._harness import Result, ScenarioError

Scenario = Callable[[bool], Awaitable[list[Result]]]

SCENARIOS: dict[str, Scenario] = {
    **kills.SCENARIOS,
    **network.SCENARIOS,
    **sessions.SCENARIOS,
    **fuzz.SCENARIOS,
    **redis_faults.SCENARIOS,
}

#: a scenario running longer than this (full run) is stopped and reported as an error
TIME_LIMIT = 240.0


async def run_scenario(name: str, quick: bool) -> list[Result]:
    """Run one scenario; an exception or the time limit gives one failed row."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(TIME_LIMIT / (3 if quick else 1)):
            rows = await SCENARIOS[name](quick)
    except (ScenarioError, TimeoutError, OSError, AssertionError) as exc:
        if not isinstance(exc, ScenarioError):
            traceback.print_exc()
        rows = [Result(name, error=str(exc) or type(exc).__name__)]
    ended = time.monotonic()
    # a variant runs from its row's creation to the next row's (rows are made in order)
    for row, after in zip(rows, [*rows[1:], None], strict=True):
        row.seconds = (after.started if after is not None else ended) - max(row.started,
                                                                             started)
    return rows
