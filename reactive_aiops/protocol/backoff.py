"""Reconnect backoff: exponential growth with full jitter, randomness injected.

``backoff()`` is a tiny generator in the spirit of websockets' ``client.backoff``: the n-th delay
is drawn uniformly from ``[0, min(maximum, initial * factor**n)]`` ("full jitter", AWS
architecture blog), after ``flat - 1`` extra windows of ``initial``. It is infinite; the
caller decides when to stop or to start a fresh one (we reset after a connection stayed
healthy for ``BackoffPolicy.reset_after`` seconds).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import attrs


def backoff(
    initial: float = 1.0,
    maximum: float = 20.0,
    factor: float = 2.0,
    rand: Callable[[], float] = random.random,
    flat: int = 1,
) -> Iterator[float]:
    """Yield reconnect delays in seconds forever; ``rand()`` must return a float in [0, 1).
    The first ``flat`` delays are drawn from ``[0, initial]``; each later window is ``factor``
    times the one before, up to ``maximum``."""
    if initial <= 0 or maximum < initial or factor < 1:
        raise ValueError("need 0 < initial <= maximum and factor >= 1")
    if flat < 1:
        raise ValueError("need flat >= 1")
    for _ in range(flat - 1):
        yield rand() * initial
    cap = initial
    while True:
        yield rand() * cap
        cap = min(maximum, cap * factor)


@attrs.frozen
class BackoffPolicy:
    """Reconnect timing.

    ``initial``: the first windows. The first retry is drawn from [0, 1 s]: 0.5 s on average, as
    the SDKs do, yet a fleet of clients dropped by one server restart spreads over a whole second
    (a [0, 0.5 s] window put 64-70 of 200 clients into the worst 100 ms in the storm test).

    ``flat``: how many retries draw from ``[0, initial]`` before the windows grow by ``factor``
    (up to ``maximum``). Three: a server restart that takes a moment longer than the first
    attempts waited costs another short wait, not a doubled one (back within about a second).

    ``reset_after``: seconds a connection must stay up before the next loss starts again from
    the first window. One second proves the server accepts us, so a few restarts in a row each
    come back within about a second; a server that accepts and drops us at once still makes the
    windows grow.
    """

    initial: float = 1.0
    maximum: float = 20.0
    factor: float = 2.0
    reset_after: float = 1.0
    flat: int = 3

    def delays(self, rand: Callable[[], float]) -> Iterator[float]:
        """A fresh delay generator for this policy."""
        return backoff(self.initial, self.maximum, self.factor, rand, self.flat)
