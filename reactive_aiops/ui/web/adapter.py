"""NiceGUI adapter: deliver a store stream to one browser tab, on the server's loop, per frame.

NiceGUI runs its server (uvicorn) on asyncio and keeps one :class:`nicegui.Client` per open tab;
an element changed in a callback on that loop is sent to the browser in the client's next
outbox flush (one ``update`` message for everything changed since the last one). So::

    binding = bind_client(client, store.select(select_frame), render, fps=60)

runs ``render`` on the loop's thread at most ``fps`` times a second with the newest value (the
leading value at once, see :func:`~reactive_aiops.ui.coalesce.coalesce_frames`), which bounds
the UI messages per tab, and disposes the subscription when the tab goes away. Nothing here
imports NiceGUI: the client is duck-typed (``on_delete``), so the module loads without the extra.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from reactive_aiops.ui.coalesce import DEFAULT_FPS, coalesce_frames

__all__ = ["ClientLike", "bind_client", "on_loop"]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)


class ClientLike(Protocol):
    """What the adapter needs of a NiceGUI ``Client``."""

    def on_delete(self, handler: Callable[..., Any]) -> None: ...


def on_loop(
    loop: asyncio.AbstractEventLoop,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Operator: deliver every value on ``loop``'s thread (at once when already there, else
    through ``call_soon_threadsafe``, preserving order)."""

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            loop_thread: list[int] = []

            def here() -> bool:
                if not loop_thread:
                    try:
                        if asyncio.get_running_loop() is loop:
                            loop_thread.append(threading.get_ident())
                    except RuntimeError:
                        return False
                return bool(loop_thread) and loop_thread[0] == threading.get_ident()

            def on_next(value: _T) -> None:
                if here():
                    observer.on_next(value)
                else:
                    loop.call_soon_threadsafe(observer.on_next, value)

            def on_error(error: Exception) -> None:
                if here():
                    observer.on_error(error)
                else:
                    loop.call_soon_threadsafe(observer.on_error, error)

            def on_completed() -> None:
                if here():
                    observer.on_completed()
                else:
                    loop.call_soon_threadsafe(observer.on_completed)

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator


def bind_client(
    client: ClientLike,
    stream: Observable[_T],
    render: Callable[[_T], None],
    *,
    fps: float | None = DEFAULT_FPS,
    loop: asyncio.AbstractEventLoop | None = None,
) -> abc.DisposableBase:
    """Call ``render(value)`` for ``stream``'s values on ``loop`` (default: the running loop),
    at most ``fps`` times a second (``None``: every value), until ``client`` is deleted.

    An exception in ``render`` is logged and the binding stays alive: one tab's bad render must
    not stop the store's other subscribers. Returns the subscription (dispose to unbind early).

    Raises:
        RuntimeError: no ``loop`` given and none is running.
        ValueError: ``fps`` is not a finite number > 0.
    """
    the_loop = loop if loop is not None else asyncio.get_running_loop()
    piped: Observable[_T] = stream.pipe(on_loop(the_loop))
    if fps is not None:
        piped = piped.pipe(coalesce_frames(fps, scheduler=AsyncIOScheduler(the_loop)))

    def deliver(value: _T) -> None:
        try:
            render(value)
        except Exception:
            _log.exception("web dashboard: render failed")

    def failed(error: Exception) -> None:
        _log.error("web dashboard: stream failed: %r", error)

    subscription = piped.subscribe(deliver, failed)
    disposable = CompositeDisposable(subscription)
    client.on_delete(Disposable(disposable.dispose).dispose)
    return disposable
