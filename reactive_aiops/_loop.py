"""The event loop a command runs on: the standard asyncio loop, or uvloop when asked for.

``serve``, ``dashboard`` and ``demo`` take ``--loop {asyncio,uvloop}`` (the option is
``reactive_aiops.cli._common.add_loop_argument``) and start their main coroutine with :func:`run`;
the benchmarks use it too. uvloop is opt-in (the
``uvloop`` extra): the standard loop is what the test suite and the benchmarks' headline figures
use, and docs/performance.md says what uvloop changes. The name is checked when the arguments are
parsed, so a missing uvloop is a usage error (one line, exit status 2) before anything starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_LOOP",
    "LOOPS",
    "LoopUnavailableError",
    "loop_factory",
    "run",
]

_T = TypeVar("_T")

#: The loops :func:`run` knows, by their ``--loop`` name.
LOOPS = ("asyncio", "uvloop")
DEFAULT_LOOP = "asyncio"


class LoopUnavailableError(RuntimeError):
    """The chosen event loop cannot be used here (uvloop not installed, or an unknown name)."""


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return the factory for the loop called ``name``; None means asyncio's default loop.

    Raises:
        LoopUnavailableError: ``name`` is not one of :data:`LOOPS`, or uvloop is not installed.
    """
    if name == "asyncio":
        return None
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise LoopUnavailableError(
                "uvloop is not installed: pip install 'reactive-aiops[uvloop]'"
            ) from None
        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    raise LoopUnavailableError(f"unknown event loop {name!r}; choose from {', '.join(LOOPS)}")


def run(main: Coroutine[Any, Any, _T], loop: str = DEFAULT_LOOP) -> _T:
    """Run ``main`` to completion on a new loop of kind ``loop``, like :func:`asyncio.run`.

    Raises:
        LoopUnavailableError: as :func:`loop_factory`; ``main`` is closed unstarted then.
    """
    try:
        factory = loop_factory(loop)
    except LoopUnavailableError:
        main.close()  # never awaited: close it so Python does not warn about it
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
