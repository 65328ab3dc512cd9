"""Tk adapter: deliver a stream to a Tk widget on the Tk thread; dispose when it is destroyed.

Delivery goes through reactivex's ``TkinterScheduler`` (``root.after``), but a thread other
than Tk's never calls Tcl itself. tkinter marshals such a call to the Tk thread and *blocks*
until Tk serves it; the store notifies while holding its lock, so a UI thread dispatching a
command at that moment (waiting for the lock) and a producer waiting for Tk would deadlock.
Instead, other threads drop their work into a per-interpreter inbox that the Tk thread drains
every ``poll_interval`` (a frame, by default) -- the classic Tk threading pattern. A side
benefit: values produced on other threads before ``mainloop()`` runs simply wait for it.

``tkinter`` is never imported at module level: the widget brings its toolkit.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import Disposable, SingleAssignmentDisposable
from reactivex.scheduler.mainloop import TkinterScheduler

from reactive_aiops.ui._binding import Binding, deliver_on
from reactive_aiops.ui.coalesce import DEFAULT_FPS, coalesce_frames

if TYPE_CHECKING:
    import tkinter

__all__ = ["DEFAULT_POLL_INTERVAL", "TkWidgetScheduler", "bind_tk"]

_T = TypeVar("_T")

DEFAULT_POLL_INTERVAL = 1.0 / DEFAULT_FPS
"""How often (seconds) the Tk thread collects work posted from other threads."""


class _Inbox:
    """Work posted by other threads for one Tk interpreter, drained on the Tk thread."""

    def __init__(self, root: tkinter.Misc, interval_ms: int) -> None:
        self.tk_thread = threading.get_ident()
        # Weak: _inboxes is keyed weakly by the root, and a strong reference from the value
        # would keep every root (and its interpreter) alive forever.
        self._root = weakref.ref(root)
        self._interval_ms = interval_ms
        self._items: deque[Callable[[], None]] = deque()  # append/popleft are thread-safe
        self._lock = threading.Lock()
        self._users = 0
        self._armed = False

    def acquire(self) -> None:
        """A scheduler starts using the inbox; call on the Tk thread (it may arm the pump)."""
        with self._lock:
            self._users += 1
            arm = not self._armed
            self._armed = True
        if arm:
            self._arm()

    def release(self) -> None:
        """A scheduler is done; the pump stops at its next tick once nobody uses it."""
        with self._lock:
            self._users -= 1

    def post(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the Tk thread at the next tick; never touches Tcl here."""
        self._items.append(work)

    def _arm(self) -> None:
        import tkinter

        root = self._root()
        try:
            if root is None:
                raise tkinter.TclError("the Tk root was garbage-collected")
            root.after(self._interval_ms, self._tick)
        except tkinter.TclError:  # the application is gone
            with self._lock:
                self._armed = False

    def _tick(self) -> None:
        while self._items:
            self._items.popleft()()
        with self._lock:
            keep = self._users > 0
            self._armed = keep
        if keep:
            self._arm()


_inboxes: weakref.WeakKeyDictionary[Any, _Inbox] = weakref.WeakKeyDictionary()
_inboxes_lock = threading.Lock()


def _inbox_for(root: tkinter.Misc, poll_interval: float) -> _Inbox:
    with _inboxes_lock:
        inbox = _inboxes.get(root)
        if inbox is None:
            inbox = _inboxes[root] = _Inbox(root, max(1, round(poll_interval * 1000)))
        return inbox


class TkWidgetScheduler(TkinterScheduler):
    """A ``TkinterScheduler`` usable from any thread, never blocking the caller on Tk.

    Create it on the Tk thread (it remembers that thread). Called there, it is the plain
    ``TkinterScheduler`` (``root.after``). Called from another thread, the work goes through a
    per-interpreter inbox collected every ``poll_interval`` seconds by the Tk thread, and the
    delay still counts from the call. After :meth:`mark_gone` (the widget was destroyed) or a
    ``TclError`` (the application was), scheduling is a no-op. Call :meth:`mark_gone` when done
    so the inbox's poll timer can stop.
    """

    def __init__(self, root: tkinter.Misc, *, poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
        super().__init__(root)
        self._gone = threading.Event()
        self._inbox = _inbox_for(root, poll_interval)
        self._inbox.acquire()

    def mark_gone(self) -> None:
        """Stop scheduling (idempotent): the widget this scheduler serves was destroyed."""
        if not self._gone.is_set():
            self._gone.set()
            self._inbox.release()

    @property
    def is_gone(self) -> bool:
        """True once :meth:`mark_gone` was called or Tk reported its application destroyed."""
        return self._gone.is_set()

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        """Schedule ``action`` on the Tk thread after ``duetime``; no-op once gone."""
        if self._gone.is_set():
            return Disposable()
        due = time.monotonic() + self.to_seconds(duetime)
        cancelled = threading.Event()
        timer = SingleAssignmentDisposable()

        def guarded(scheduler: abc.SchedulerBase, value: Any) -> abc.DisposableBase | None:
            if cancelled.is_set() or self._gone.is_set():
                return None
            result: abc.DisposableBase | None = action(scheduler, value)
            return result

        def arm() -> None:  # on the Tk thread
            if cancelled.is_set() or self._gone.is_set():
                return
            import tkinter

            try:
                delay = max(0.0, due - time.monotonic())
                timer.disposable = TkinterScheduler.schedule_relative(self, delay, guarded, state)
            except tkinter.TclError:
                self._gone.set()

        def cancel_timer() -> None:  # on the Tk thread
            import tkinter

            with contextlib.suppress(tkinter.TclError):  # after_cancel on a dead application
                timer.dispose()

        def cancel() -> None:
            cancelled.set()
            if self._on_tk_thread():
                cancel_timer()
            else:
                self._inbox.post(cancel_timer)

        if self._on_tk_thread():
            arm()
        else:
            self._inbox.post(arm)
        return Disposable(cancel)

    def _on_tk_thread(self) -> bool:
        return threading.get_ident() == self._inbox.tk_thread


def bind_tk(
    widget: tkinter.Misc,
    observable: Observable[_T],
    on_next: Callable[[_T], object],
    *,
    on_error: Callable[[Exception], object] | None = None,
    on_completed: Callable[[], object] | None = None,
    fps: float | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
) -> Binding:
    """Subscribe now; call ``on_next`` on the Tk thread; dispose when ``widget`` is destroyed.

    Call on the Tk thread (typically while building the UI, before ``mainloop()``). Values
    may come from any thread; from other threads they reach the widget within about
    ``poll_interval`` seconds once ``mainloop()`` runs. ``fps`` inserts
    :func:`~reactive_aiops.ui.coalesce.coalesce_frames` timed on Tk's own loop, so a burst
    renders at most ``fps`` times a second and the last value always lands. Without
    ``on_error`` a stream error is re-raised on the Tk thread, where Tk reports it
    (``report_callback_exception``). Returns a :class:`Binding`; dispose it to unbind early.
    """
    # Scheduling through the root, not the widget: tkinter deletes a widget's registered
    # callbacks when it is destroyed, which would turn an in-flight delivery into a Tcl error.
    scheduler = TkWidgetScheduler(widget.nametowidget("."), poll_interval=poll_interval)
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

    deliver_on(binding, stream, scheduler, on_next, on_error, on_completed)
    return binding
