"""Qt adapter: deliver a stream to a QObject on its own thread; dispose on ``destroyed``.

Delivery goes through a reactivex ``QtScheduler`` subclass bound to a context object (the
widget). The plain ``QtScheduler`` starts its timers in the calling thread, so from a producer
thread without a Qt event loop -- a network or store thread -- its actions never run. Ours
posts every action to the context object's thread instead (``QTimer.singleShot(0, context, fn)``
is a queued, thread-safe invocation) and starts any delay timer there. Qt drops invocations
whose context object was deleted, so nothing runs against a dead widget. Works with PySide6 and
PyQt: the ``QtCore`` module is passed in, never imported here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable
from reactivex.scheduler.mainloop import QtScheduler
from reactivex.scheduler.periodicscheduler import PeriodicScheduler

from reactive_aiops.ui._binding import Binding, deliver_on
from reactive_aiops.ui.coalesce import coalesce_frames

__all__ = ["QtObjectScheduler", "bind_qt"]

_T = TypeVar("_T")


class QtObjectScheduler(QtScheduler):
    """A ``QtScheduler`` that runs every action on ``context``'s thread; safe from any thread.

    ``qtcore`` is the toolkit's ``QtCore`` module; ``context`` a ``QObject`` (usually the widget
    being updated). Once ``context`` is deleted, scheduling is a no-op.
    """

    def __init__(self, qtcore: Any, context: Any) -> None:
        super().__init__(qtcore)
        self._context = context
        self._gone = threading.Event()

    def mark_gone(self) -> None:
        """Stop scheduling: the context object was destroyed."""
        self._gone.set()

    @property
    def is_gone(self) -> bool:
        """True once the context object was destroyed or :meth:`mark_gone` was called."""
        return self._gone.is_set()

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        """Run ``action`` on the context's thread after ``duetime``; no-op once it is gone."""
        msecs = max(0, int(self.to_seconds(duetime) * 1000.0))
        result = SingleAssignmentDisposable()
        cancelled = threading.Event()
        timer = self._qtcore.QTimer

        def invoke() -> None:
            if not cancelled.is_set() and not self._gone.is_set():
                result.disposable = self.invoke_action(action, state)

        def arm() -> None:
            # On the context's thread: a delay timer started here lives in its event loop.
            if msecs == 0:
                invoke()
            elif not cancelled.is_set():
                self._call(lambda: timer.singleShot(msecs, self._context, invoke))

        if self._gone.is_set():
            return Disposable()
        self._call(lambda: timer.singleShot(0, self._context, arm))
        return CompositeDisposable(result, Disposable(cancelled.set))

    def schedule_periodic(self, period: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        """Run ``action`` every ``period`` on the context's thread (rescheduling, thread-safe)."""
        # QtScheduler's version owns a QTimer created in the caller's thread; the generic
        # rescheduling loop goes through schedule_relative and so stays on the context's thread.
        return PeriodicScheduler.schedule_periodic(self, period, action, state)

    def _call(self, post: Callable[[], object]) -> None:
        try:
            post()
        except RuntimeError:
            # "Internal C++ object already deleted": the widget is gone, and so is the work.
            self._gone.set()


def bind_qt(
    widget: Any,
    observable: Observable[_T],
    on_next: Callable[[_T], object],
    *,
    qtcore: Any,
    on_error: Callable[[Exception], object] | None = None,
    on_completed: Callable[[], object] | None = None,
    fps: float | None = None,
) -> Binding:
    """Subscribe now; call ``on_next`` on ``widget``'s thread; dispose when it is destroyed.

    ``qtcore`` is ``PySide6.QtCore`` (or PyQt's). Values may come from any thread. ``fps``
    inserts :func:`~reactive_aiops.ui.coalesce.coalesce_frames` timed on Qt's loop. Without
    ``on_error`` a stream error is re-raised on the widget's thread, where Qt reports it. The
    binding keeps a reference to ``widget`` until it is destroyed or the binding disposed.
    """
    scheduler = QtObjectScheduler(qtcore, widget)
    binding = Binding()
    stream = observable
    if fps is not None:
        stream = stream.pipe(coalesce_frames(fps, scheduler=scheduler))
    destroyed_seen = threading.Event()

    def destroyed(*_args: object) -> None:
        destroyed_seen.set()
        scheduler.mark_gone()
        binding.dispose()

    def disconnect() -> None:
        scheduler.mark_gone()
        if not destroyed_seen.is_set():
            # Releases our slot (and with it this binding) when disposed early.
            widget.destroyed.disconnect(destroyed)

    widget.destroyed.connect(destroyed)
    binding.add(Disposable(disconnect))

    deliver_on(binding, stream, scheduler, on_next, on_error, on_completed)
    return binding
