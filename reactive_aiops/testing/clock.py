"""A manual clock for tests: time moves only when the test says so.

Pass ``clock`` (it is callable: ``clock()`` returns the current time) wherever a
``Callable[[], float]`` clock is injected. Listeners added with ``add_listener`` run after every
``advance``/``set`` -- e.g. ``clock.add_listener(manager.poke)`` makes a ``WebSocketManager``
re-check its timers at once, so a heartbeat timeout fires without waiting on the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable


class ManualClock:
    """Monotonic fake time, starting at ``start`` seconds."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._listeners: list[Callable[[], object]] = []

    def __call__(self) -> float:
        """The current (fake) time."""
        return self._now

    @property
    def now(self) -> float:
        """The current (fake) time."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0; ``ValueError`` otherwise); returns the new
        time after notifying the listeners."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards; seconds must be >= 0")
        return self.set(self._now + seconds)

    def set(self, when: float) -> float:
        """Jump to ``when`` (not earlier than now: ``ValueError``) and notify the listeners."""
        if when < self._now:
            raise ValueError(f"cannot set the clock back from {self._now} to {when}")
        self._now = when
        for listener in list(self._listeners):
            listener()
        return when

    def add_listener(self, listener: Callable[[], object]) -> Callable[[], None]:
        """Call ``listener()`` after each change; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove
