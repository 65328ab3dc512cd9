"""Render coalescing: at most one update per frame, the newest one, never the last one lost.

A store can change thousands of times a second; a screen repaints sixty times. Rendering every
state wastes the UI thread and lags the display behind the truth. :func:`coalesce_frames` sits
between a stream and a widget:

* a value that arrives after a quiet period (no delivery during the last frame) is delivered at
  once -- the leading edge -- so a single change never waits for a frame boundary;
* values arriving while a frame is open are conflated: only the newest one is kept and it is
  delivered when the frame ends, which opens the next frame;
* frames follow a fixed grid from the leading edge (each ends one period after the previous one
  was *due*, not after it was delivered), so a timer that fires late under load does not push
  every later frame back: a busy consumer still gets ``fps`` frames a second, while a timer more
  than a whole frame late (or a scheduler clock set back) restarts the grid from now;
* on completion or error the held value (if any) is delivered first, then the terminal event.

So the delivery rate is bounded by ``fps`` and the last value is always delivered.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable
from reactivex.scheduler import TimeoutScheduler

__all__ = ["DEFAULT_FPS", "coalesce_frames"]

_T = TypeVar("_T")

DEFAULT_FPS = 60.0
"""The frame rate :func:`coalesce_frames` uses unless told otherwise."""


def coalesce_frames(
    fps: float = DEFAULT_FPS,
    *,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Return an operator delivering the latest value at most once per frame (1/``fps`` s).

    Use it in a pipe before a UI adapter: ``stream.pipe(coalesce_frames())``. Frame timers run on
    ``scheduler``; without one, on the scheduler given at subscribe time, else on reactivex's
    ``TimeoutScheduler``. Pass the toolkit's scheduler (e.g. ``TkinterScheduler(root)``) so that
    frame-end deliveries already happen on the UI thread. Leading-edge deliveries happen on the
    thread that produced the value.

    Raises:
        ValueError: ``fps`` is not a finite number greater than zero.
    """
    if isinstance(fps, bool) or not isinstance(fps, int | float):
        raise TypeError(f"fps must be a number, got {type(fps).__name__}")
    if not math.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    period = 1.0 / float(fps)

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T],
            subscribe_scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            timers = scheduler or subscribe_scheduler or TimeoutScheduler.singleton()
            state = _FrameState(observer, timers, period)
            subscription = source.subscribe(
                state.on_next, state.on_error, state.on_completed, scheduler=subscribe_scheduler
            )
            return CompositeDisposable(subscription, state)

        return Observable(subscribe)

    return operator


class _FrameState(abc.DisposableBase):
    """The per-subscription state machine: idle (no frame open) or a frame open with 0/1 held."""

    def __init__(
        self, observer: abc.ObserverBase[Any], timers: abc.SchedulerBase, period: float
    ) -> None:
        self._observer = observer
        self._timers = timers
        self._period = period
        # Re-entrant: a subscriber may feed the source again from inside on_next (a dispatch
        # from a render callback); that value must simply be held for the open frame.
        self._lock = threading.RLock()
        # The pending frame timer, if a frame is open. A timer that fired is dropped, never
        # disposed: disposing a spent timer from the producer's thread can block on some
        # schedulers (AsyncIOThreadSafeScheduler waits for its loop), and the producer is often
        # a store notifying under its lock.
        self._timer: abc.DisposableBase | None = None
        self._frame_open = False
        # When the open frame is due to end, in the scheduler's seconds (the grid's last point).
        self._deadline = 0.0
        self._held: Any = None
        self._has_held = False
        self._stopped = False

    def on_next(self, value: Any) -> None:
        with self._lock:
            if self._stopped:
                return
            if self._frame_open:
                self._held = value
                self._has_held = True
                return
            self._frame_open = True
            self._deadline = self._now() + self._period
            self._timer = self._timers.schedule_relative(self._period, self._end_frame)
            self._observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        with self._lock:
            if self._stop():
                self._observer.on_error(error)

    def on_completed(self) -> None:
        with self._lock:
            if self._stop():
                self._observer.on_completed()

    def dispose(self) -> None:
        with self._lock:
            self._stopped = True
            self._has_held = False
            self._held = None
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.dispose()

    def _stop(self) -> bool:
        """Flush the held value before a terminal event; False if already stopped."""
        if self._stopped:
            return False
        self._stopped = True
        # A pending frame timer now fires as a no-op; not cancelling it keeps the terminal
        # path free of scheduler calls (see _timer).
        self._timer = None
        if self._has_held:
            value, self._held, self._has_held = self._held, None, False
            self._observer.on_next(value)
        return True

    def _now(self) -> float:
        timers = self._timers
        return timers.to_seconds(timers.now)

    def _end_frame(self, _scheduler: abc.SchedulerBase, _state: Any = None) -> None:
        with self._lock:
            if self._stopped:
                return
            self._timer = None  # spent
            if not self._has_held:
                self._frame_open = False
                return
            value, self._held, self._has_held = self._held, None, False
            now = self._now()
            deadline = self._deadline + self._period
            if not now < deadline <= now + self._period:
                # A whole frame late, or the clock was set back (the Tk/Qt/timeout schedulers,
                # and reactivex's asyncio ones from 5.1 on, report wall-clock time): restart the
                # grid from now rather than wait for a grid point a clock step away.
                deadline = now + self._period
            self._deadline = deadline
            self._timer = self._timers.schedule_relative(deadline - now, self._end_frame)
            self._observer.on_next(value)
