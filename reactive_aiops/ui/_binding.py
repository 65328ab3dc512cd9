"""The handle every widget adapter returns, and the delivery they share."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable

__all__ = ["Binding", "deliver_on", "reraise"]

_T = TypeVar("_T")


class Binding(CompositeDisposable):
    """A stream bound to a widget: disposed with the widget, or earlier by :meth:`dispose`.

    ``dispose()`` is idempotent and thread-safe; after it no further value reaches the widget's
    callback (a value already running on the UI thread finishes). ``is_disposed`` tells whether
    the binding is over -- because the widget went away, the caller disposed it, or the stream
    completed or failed.
    """


def reraise(error: Exception) -> None:
    """The default ``on_error``: raise on the UI thread, where the toolkit reports it."""
    raise error


def deliver_on(
    binding: Binding,
    stream: Observable[_T],
    scheduler: abc.SchedulerBase,
    on_next: Callable[[_T], object],
    on_error: Callable[[Exception], object] | None,
    on_completed: Callable[[], object] | None,
) -> None:
    """Subscribe ``stream`` into the callbacks on ``scheduler``, as part of ``binding``.

    A terminal event ends the binding before its callback runs (so the widget is released even
    if the callback raises); without ``on_error`` the error is re-raised on the UI thread.
    """

    def deliver(value: _T) -> None:
        on_next(value)

    def completed() -> None:
        binding.dispose()
        if on_completed is not None:
            on_completed()

    def failed(error: Exception) -> None:
        binding.dispose()
        (on_error or reraise)(error)

    binding.add(stream.pipe(ops.observe_on(scheduler)).subscribe(deliver, failed, completed))
