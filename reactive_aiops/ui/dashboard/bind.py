"""Bind a store selector to a dashboard widget: frame coalescing, then the Textual adapter.

The adapter (:func:`reactive_aiops.ui.textual.bind_textual`) delivers on the app's thread and
ties the subscription to the widget's lifetime. With ``fps`` set, the *states* are coalesced
first (:func:`coalesce_frames`, timed on the app's own loop) and the selector runs once per frame
on the newest state, so a burst of ten thousand events costs ten thousand cheap hand-offs and at
most ``fps`` selector runs and renders a second -- never a selector run per event -- while the
newest value is always delivered. Repeated values are dropped (identity, then equality), like
``store.select``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable
from reactivex import operators as ops
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler
from textual.widget import Widget

from reactive_aiops.core.store import Store
from reactive_aiops.ui._binding import Binding
from reactive_aiops.ui.coalesce import coalesce_frames
from reactive_aiops.ui.textual import bind_textual

__all__ = ["bind_selector", "select_per_frame"]

_T = TypeVar("_T")

_NOTHING: Any = object()


def _changed() -> Callable[[Any], bool]:
    last: list[Any] = [_NOTHING]

    def changed(value: Any) -> bool:
        previous = last[0]
        if previous is not _NOTHING and (value is previous or value == previous):
            return False
        last[0] = value
        return True

    return changed


def select_per_frame(
    store: Store[Any],
    selector: Callable[[Any], _T],
    *,
    fps: float | None,
    scheduler: Any = None,
) -> Observable[_T]:
    """``selector`` over ``store``, evaluated at most ``fps`` times a second on the newest state.

    ``fps=None`` is ``store.select(selector)`` (every change). ``scheduler`` times the frames
    (default: reactivex's timeout scheduler).
    """
    if fps is None:
        return store.select(selector)
    return store.states.pipe(
        coalesce_frames(fps, scheduler=scheduler),
        ops.map(selector),
        ops.filter(_changed()),
    )


def bind_selector(
    widget: Widget,
    store: Store[Any],
    selector: Callable[[Any], _T],
    on_next: Callable[[_T], object],
    *,
    fps: float | None,
) -> Binding:
    """Deliver ``selector(state)`` to ``on_next`` on the app's thread, at most ``fps`` a second.

    ``fps=None`` delivers every change. Call on the app's thread while it runs (``on_mount``).

    Raises:
        RuntimeError: called outside the app's running event loop.
    """
    scheduler = AsyncIOThreadSafeScheduler(asyncio.get_running_loop())
    stream = select_per_frame(store, selector, fps=fps, scheduler=scheduler)
    return bind_textual(widget, stream, on_next)
