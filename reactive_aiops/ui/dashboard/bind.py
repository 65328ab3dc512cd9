"""Bind a selector stream to a dashboard widget: frame coalescing, then the Textual adapter.

The adapter (:func:`reactive_aiops.ui.textual.bind_textual`) delivers on the app's thread and
ties the subscription to the widget's lifetime; in front of it, :func:`coalesce_frames` timed on
the app's own event loop caps renders at ``fps`` while always delivering the newest value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable
from reactivex.scheduler.eventloop import AsyncIOThreadSafeScheduler
from textual.dom import DOMNode

from reactive_aiops.ui._binding import Binding
from reactive_aiops.ui.coalesce import coalesce_frames
from reactive_aiops.ui.textual import bind_textual

__all__ = ["bind_widget"]

_T = TypeVar("_T")


def bind_widget(
    widget: DOMNode,
    stream: Observable[_T],
    on_next: Callable[[_T], object],
    *,
    fps: float | None,
) -> Binding:
    """Deliver ``stream`` to ``on_next`` on the app's thread, at most ``fps`` times a second.

    ``fps=None`` delivers every value. Call on the app's thread while it runs (``on_mount``).

    Raises:
        RuntimeError: called outside the app's running event loop.
    """
    if fps is not None:
        scheduler = AsyncIOThreadSafeScheduler(asyncio.get_running_loop())
        stream = stream.pipe(coalesce_frames(fps, scheduler=scheduler))
    return bind_textual(widget, stream, on_next)  # type: ignore[arg-type]
