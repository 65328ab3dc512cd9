"""Textual adapter: deliver a stream to a widget on the app's thread; dispose on unmount.

A value produced on the app's thread (the usual case when the store is fed by an asyncio
client on the app's own loop) is delivered directly, so the widget shows the current value as
soon as it is bound. A value produced on another thread is posted to the widget with
``call_later`` -- Textual's thread-safe ``post_message`` underneath -- and conflated: at most one
delivery is in flight and it carries the newest value, so a burst from a background thread
cannot flood the message queue. Textual already repaints at most once per frame.

Unmounting cancels the widget's workers; the binding keeps one tiny worker that disposes the
subscription when cancelled, which is how it follows the widget's lifetime without the widget
having to cooperate. ``textual`` is never imported here at module level.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from reactivex import Observable, Observer, abc
from reactivex.disposable import Disposable
from reactivex.scheduler.eventloop import AsyncIOScheduler
from reactivex.subject import Subject

from reactive_aiops.ui._binding import Binding, reraise
from reactive_aiops.ui.coalesce import coalesce_frames

if TYPE_CHECKING:
    from textual.widget import Widget

__all__ = ["BINDING_WORKER_GROUP", "bind_textual"]

_T = TypeVar("_T")

BINDING_WORKER_GROUP = "reactive-aiops-binding"
"""The worker group of the keep-alive workers that tie bindings to their widgets."""


def _nothing() -> None:
    return None


def bind_textual(
    widget: Widget,
    observable: Observable[_T],
    on_next: Callable[[_T], object],
    *,
    on_error: Callable[[Exception], object] | None = None,
    on_completed: Callable[[], object] | None = None,
    fps: float | None = None,
) -> Binding:
    """Subscribe now; call ``on_next`` on the app's thread; dispose when ``widget`` unmounts.

    Call on the app's thread while the app runs, typically from the widget's ``on_mount``.
    Values may then come from any thread. ``fps`` additionally passes the values, once on the
    app's thread, through :func:`~reactive_aiops.ui.coalesce.coalesce_frames` timed on the app's
    loop: useful when the store is fed on the app's own loop, where values are otherwise
    delivered one by one. Without ``on_error`` a stream error is re-raised on the app's thread,
    where Textual reports it and exits the app, like any error in a handler. Returns a
    :class:`Binding`; dispose it to unbind before the widget goes away.

    Raises:
        RuntimeError: called outside the app's running event loop.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "bind_textual must be called on the Textual app's thread while it runs "
            "(for example in the widget's on_mount)"
        ) from None
    binding = Binding()

    def deliver(value: _T) -> None:
        on_next(value)

    def failed(error: Exception) -> None:
        (on_error or reraise)(error)

    def completed() -> None:
        (on_completed or _nothing)()

    sink: abc.ObserverBase[_T] = Observer(deliver, failed, completed)
    if fps is not None:
        frames: Subject[_T] = Subject()
        # Only the app's thread touches the coalescer, so the loop's plain scheduler suffices.
        timed = frames.pipe(coalesce_frames(fps, scheduler=AsyncIOScheduler(loop)))
        binding.add(timed.subscribe(sink))
        sink = frames
    relay = _Relay(widget, binding, sink)
    stopped: asyncio.Future[None] = loop.create_future()

    async def follow_widget() -> None:
        try:
            await stopped
        finally:
            binding.dispose()

    def stop() -> None:
        if not stopped.done():
            stopped.set_result(None)

    def stop_worker() -> None:
        if threading.get_ident() == relay.app_thread:
            stop()
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: the worker is long gone
            loop.call_soon_threadsafe(stop)

    widget.run_worker(
        follow_widget(), name="bind_textual", group=BINDING_WORKER_GROUP, exit_on_error=False
    )
    binding.add(Disposable(stop_worker))
    binding.add(observable.subscribe(relay.on_next, relay.on_error, relay.on_completed))
    return binding


class _Relay(Generic[_T]):
    """Moves one stream's notifications onto the app's thread, newest value only."""

    def __init__(self, widget: Widget, binding: Binding, sink: abc.ObserverBase[_T]) -> None:
        self.app_thread = threading.get_ident()
        self._widget = widget
        self._binding = binding
        self._sink = sink
        self._lock = threading.Lock()
        self._held: list[_T] = []  # zero or one value
        self._terminal: Callable[[], object] | None = None
        self._posted = False

    def on_next(self, value: _T) -> None:
        if threading.get_ident() == self.app_thread:
            with self._lock:
                self._held.clear()  # anything held from another thread is older than this
            if not self._binding.is_disposed:
                self._sink.on_next(value)
            return
        with self._lock:
            self._held[:] = (value,)
        self._post()

    def on_error(self, error: Exception) -> None:
        self._finish(lambda: self._sink.on_error(error))

    def on_completed(self) -> None:
        self._finish(self._sink.on_completed)

    def _finish(self, terminal: Callable[[], object]) -> None:
        with self._lock:
            self._terminal = terminal
        if threading.get_ident() == self.app_thread:
            self._flush()
        else:
            self._post()

    def _post(self) -> None:
        with self._lock:
            if self._posted:
                return
            self._posted = True
        try:
            posted = self._widget.call_later(self._flush)
        except RuntimeError:  # NoActiveAppError or a closed loop: the app is gone
            posted = False
        if not posted:
            # The widget is closing; nothing will ever be shown again.
            self._binding.dispose()

    def _flush(self) -> None:
        with self._lock:
            held, self._held = self._held, []
            terminal, self._terminal = self._terminal, None
            self._posted = False
        if self._binding.is_disposed:
            return
        if held:
            self._sink.on_next(held[0])
        if terminal is not None:
            # Terminal first: with fps, the coalescer still has to flush its held value.
            try:
                terminal()
            finally:
                self._binding.dispose()
