"""Tk adapter: deliver a stream to a Tk widget on the Tk thread; dispose when it is destroyed.

Delivery goes through reactivex's ``TkinterScheduler`` (``root.after``). Tk's threading rule
applies to producers on other threads: their hop onto the Tk thread is a Tcl call that Tk
marshals to the thread running ``mainloop()``, so values from other threads must only flow once
``mainloop()`` runs (before that, Tk raises "main thread is not in main loop", which we re-raise
with advice). Values produced on the Tk thread itself work at any time, before ``mainloop()``
included. ``tkinter`` is never imported at module level: the widget brings its toolkit.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.scheduler.mainloop import TkinterScheduler

from reactive_aiops.ui._binding import Binding
from reactive_aiops.ui.coalesce import coalesce_frames

if TYPE_CHECKING:
    import tkinter

__all__ = ["TkWidgetScheduler", "bind_tk"]

_T = TypeVar("_T")
_TState = TypeVar("_TState")


def _raise(error: Exception) -> None:
    raise error


class TkWidgetScheduler(TkinterScheduler):
    """A ``TkinterScheduler`` that goes quiet once its Tk application is gone.

    Scheduling after the interpreter or the bound widget was destroyed is a no-op instead of a
    ``TclError`` thrown into whatever thread produced the value (often a store dispatch).
    """

    def __init__(self, root: tkinter.Misc) -> None:
        super().__init__(root)
        self._gone = threading.Event()

    def mark_gone(self) -> None:
        """Stop scheduling: the widget this scheduler serves was destroyed."""
        self._gone.set()

    @property
    def is_gone(self) -> bool:
        """True once :meth:`mark_gone` was called or Tk reported its application destroyed."""
        return self._gone.is_set()

    def schedule_relative(
        self,
        duetime: Any,
        action: Any,
        state: Any = None,
    ) -> abc.DisposableBase:
        """Schedule ``action`` on the Tk thread after ``duetime``; no-op once gone.

        Raises:
            RuntimeError: called from another thread while ``mainloop()`` is not running.
        """
        import tkinter

        if self._gone.is_set():
            return Disposable()
        try:
            inner = super().schedule_relative(duetime, action, state)
        except tkinter.TclError:
            self._gone.set()
            return Disposable()
        except RuntimeError as error:
            if self._gone.is_set():
                return Disposable()
            raise RuntimeError(
                f"{error}: a value reached a Tk binding from another thread before "
                "root.mainloop() started; start the main loop before feeding the stream "
                "from other threads, or produce the first values on the Tk thread"
            ) from error

        def cancel() -> None:
            # after_cancel on a destroyed application: nothing left to cancel.
            with contextlib.suppress(tkinter.TclError, RuntimeError):
                inner.dispose()

        return Disposable(cancel)


def bind_tk(
    widget: tkinter.Misc,
    observable: Observable[_T],
    on_next: Callable[[_T], object],
    *,
    on_error: Callable[[Exception], object] | None = None,
    on_completed: Callable[[], object] | None = None,
    fps: float | None = None,
) -> Binding:
    """Subscribe now; call ``on_next`` on the Tk thread; dispose when ``widget`` is destroyed.

    Call from the Tk thread (typically while building the UI). ``fps`` inserts
    :func:`~reactive_aiops.ui.coalesce.coalesce_frames` timed on Tk's own loop, so a burst
    renders at most ``fps`` times a second and the last value always lands. Without
    ``on_error`` a stream error is re-raised on the Tk thread, where Tk reports it
    (``report_callback_exception``). Returns a :class:`Binding`; dispose it to unbind early.
    """
    # Scheduling through the root, not the widget: tkinter deletes a widget's registered
    # callbacks when it is destroyed, which would turn an in-flight delivery into a Tcl error.
    scheduler = TkWidgetScheduler(widget.nametowidget("."))
    binding = Binding()
    binding.add(Disposable(scheduler.mark_gone))
    stream = observable
    if fps is not None:
        stream = stream.pipe(coalesce_frames(fps, scheduler=scheduler))

    def destroyed(event: tkinter.Event[Any]) -> None:
        # <Destroy> also fires on a toplevel for each destroyed descendant (bind tags).
        if event.widget is widget:
            binding.dispose()

    # add="+" keeps the application's own <Destroy> handlers. We never unbind: tkinter's
    # unbind(sequence, funcid) drops every handler of the sequence; a stale one is a no-op.
    widget.bind("<Destroy>", destroyed, add="+")

    def deliver(value: _T) -> None:
        on_next(value)

    def completed() -> None:
        binding.dispose()
        if on_completed is not None:
            on_completed()

    def failed(error: Exception) -> None:
        binding.dispose()
        (on_error or _raise)(error)

    binding.add(stream.pipe(ops.observe_on(scheduler)).subscribe(deliver, failed, completed))
    return binding
