"""asyncio adapter: consume any Observable with ``async for``, on the loop's own thread.

The iterator holds at most one undelivered value -- the newest. A consumer slower than the
producer sees the latest state, not a growing backlog; for state streams (store selections) this
is exactly right, for event streams where every item matters, use a real queue instead.
Values may be produced on any thread: a producer off the loop's thread wakes the consumer through
``loop.call_soon_threadsafe`` (at most one wake-up in flight); one on the loop's thread wakes it
directly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Generic, TypeVar

from reactivex import Observable
from reactivex.disposable import SingleAssignmentDisposable

__all__ = ["StreamIterator", "aiter_stream"]

_T = TypeVar("_T")


def aiter_stream(
    observable: Observable[_T], *, loop: asyncio.AbstractEventLoop | None = None
) -> StreamIterator[_T]:
    """Subscribe to ``observable`` now and return an async iterator over its latest values.

    ``loop`` is the loop that will iterate; without it, the running loop (so call this from a
    coroutine). Values produced before the first ``__anext__`` are not lost: the newest one is
    held. The iterator ends when the stream completes, raises the stream's error after
    delivering the held value, and must be closed if abandoned early: ``await it.aclose()`` or
    ``async with aiter_stream(obs) as it:``.

    Raises:
        RuntimeError: no ``loop`` given and no loop is running in this thread.
    """
    return StreamIterator(observable, loop if loop is not None else asyncio.get_running_loop())


class StreamIterator(AsyncIterator[_T], Generic[_T]):
    """The iterator :func:`aiter_stream` returns; one consumer at a time."""

    def __init__(self, observable: Observable[_T], loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        # Zero or one element: the newest undelivered value (a list so None stays a valid value).
        self._held: list[_T] = []
        self._completed = False
        self._error: Exception | None = None
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._wake_pending = False
        self._subscription = SingleAssignmentDisposable()
        self._subscription.disposable = observable.subscribe(
            self._on_next, self._on_error, self._on_completed
        )

    @property
    def closed(self) -> bool:
        """True once the iterator was closed or its stream ended (held values may remain)."""
        return self._closed or self._completed or self._error is not None

    async def __anext__(self) -> _T:
        while True:
            with self._lock:
                if self._held:
                    return self._held.pop()
                if self._error is not None:
                    error, self._error = self._error, None
                    self._closed = True
                    raise error
                if self._closed or self._completed:
                    raise StopAsyncIteration
                if self._waiter is not None:
                    raise RuntimeError("aiter_stream: another coroutine is already awaiting")
                waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                with self._lock:
                    self._waiter = None

    async def aclose(self) -> None:
        """Unsubscribe and end the iteration; idempotent. A held value is dropped."""
        self.close()

    def close(self) -> None:
        """Synchronous :meth:`aclose`; callable from any thread (e.g. a widget's destroy hook)."""
        with self._lock:
            self._closed = True
            self._held.clear()
        self._subscription.dispose()
        self._notify()

    async def __aenter__(self) -> StreamIterator[_T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _on_next(self, value: _T) -> None:
        with self._lock:
            if self._closed:
                return
            self._held[:] = (value,)
        self._notify()

    def _on_error(self, error: Exception) -> None:
        with self._lock:
            self._error = error
        self._notify()

    def _on_completed(self) -> None:
        with self._lock:
            self._completed = True
        self._notify()

    def _notify(self) -> None:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._wake()
            return
        with self._lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:
            # The loop is closed: nobody will ever iterate again, so stop listening rather than
            # failing the producer (often a store dispatch on another thread).
            self._subscription.dispose()

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
            waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
