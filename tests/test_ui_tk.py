"""bind_tk under a private Xvfb: delivery on the Tk thread, disposal on <Destroy>."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from ui_helpers import TrackedSubject, feed_in_thread, xvfb_display

from reactive_aiops.core import create_store
from reactive_aiops.ui.tk import TkWidgetScheduler, _inboxes, bind_tk

if TYPE_CHECKING:
    import tkinter

__all__ = ["xvfb_display"]  # re-exported fixture

tkinter_module = pytest.importorskip("tkinter")


@pytest.fixture
def root(xvfb_display: str) -> Iterator[tkinter.Tk]:
    tk_root = tkinter_module.Tk()
    errors: list[BaseException] = []

    def report(exc: type[BaseException], value: BaseException, tb: Any) -> None:
        errors.append(value)

    # tkinter_module comes from importorskip (Any), so these assignments need no ignores.
    tk_root.report_callback_exception = report
    tk_root.callback_errors = errors
    yield tk_root
    with contextlib.suppress(tkinter_module.TclError):  # a test may have destroyed it
        tk_root.destroy()


def run_until(
    root: tkinter.Tk,
    condition: Callable[[], bool],
    *,
    start: Callable[[], object] | None = None,
    timeout: float = 10.0,
) -> bool:
    """Run mainloop until ``condition`` holds (checked on the Tk thread) or ``timeout``."""
    met: list[bool] = []
    deadline = time.monotonic() + timeout

    def check() -> None:
        if condition():
            met.append(True)
            root.quit()
        elif time.monotonic() > deadline:
            root.quit()
        else:
            root.after(5, check)

    if start is not None:
        root.after(0, start)
    root.after(0, check)
    root.mainloop()
    return bool(met)


def test_label_follows_a_stream_fed_from_another_thread_on_the_tk_thread(
    root: tkinter.Tk,
) -> None:
    label = tkinter_module.Label(root, text="-")
    label.pack()
    tracked: TrackedSubject[int] = TrackedSubject()
    tk_thread = threading.get_ident()
    render_threads: set[int] = set()

    def render(value: int) -> None:
        render_threads.add(threading.get_ident())
        label.configure(text=str(value))

    binding = bind_tk(label, tracked.observable, render)
    feeders: list[threading.Thread] = []
    feeder_idents: list[int] = []

    def start() -> None:
        thread, ident = feed_in_thread(tracked.subject.on_next, range(200))
        feeders.append(thread)
        feeder_idents.extend(ident)

    def done() -> bool:
        return bool(feeders) and not feeders[0].is_alive() and label.cget("text") == "199"

    assert run_until(root, done, start=start)
    assert feeder_idents
    assert feeder_idents[0] != tk_thread
    assert render_threads == {tk_thread}
    assert not binding.is_disposed
    assert tracked.live == 1
    binding.dispose()
    assert tracked.live == 0


def test_destroying_the_widget_disposes_the_subscription(root: tkinter.Tk) -> None:
    label = tkinter_module.Label(root, text="-")
    tracked: TrackedSubject[str] = TrackedSubject()
    seen: list[str] = []
    binding = bind_tk(label, tracked.observable, seen.append)
    tracked.subject.on_next("on the tk thread, before mainloop")
    assert run_until(root, lambda: bool(seen))
    assert tracked.live == 1
    label.destroy()
    assert binding.is_disposed
    assert tracked.live == 0
    assert tracked.subject.observers == []
    # A value produced later from another thread reaches nobody and fails nobody.
    feeders: list[threading.Thread] = []
    assert run_until(
        root,
        lambda: bool(feeders) and not feeders[0].is_alive(),
        start=lambda: feeders.append(feed_in_thread(tracked.subject.on_next, ["late"])[0]),
    )
    assert seen == ["on the tk thread, before mainloop"]
    assert root.callback_errors == []  # type: ignore[attr-defined]


def test_destroying_a_sibling_or_child_keeps_the_binding(root: tkinter.Tk) -> None:
    frame = tkinter_module.Frame(root)
    child = tkinter_module.Label(frame)
    sibling = tkinter_module.Label(root)
    tracked: TrackedSubject[int] = TrackedSubject()
    binding = bind_tk(frame, tracked.observable, lambda _v: None)
    child.destroy()
    sibling.destroy()
    assert not binding.is_disposed
    frame.destroy()
    assert bool(binding.is_disposed)  # bool(): mypy narrowed the attribute above
    assert tracked.live == 0


def test_completion_is_delivered_on_the_tk_thread_and_ends_the_binding(
    root: tkinter.Tk,
) -> None:
    label = tkinter_module.Label(root)
    tracked: TrackedSubject[int] = TrackedSubject()
    completed_on: list[int] = []
    seen: list[int] = []
    binding = bind_tk(
        label,
        tracked.observable,
        seen.append,
        on_completed=lambda: completed_on.append(threading.get_ident()),
    )
    assert run_until(
        root,
        lambda: bool(completed_on),
        start=lambda: feed_in_thread(
            tracked.subject.on_next, [1, 2, 3], then=tracked.subject.on_completed
        ),
    )
    assert seen == [1, 2, 3]
    assert completed_on == [threading.get_ident()]
    assert binding.is_disposed


def test_a_stream_error_without_handler_is_reported_on_the_tk_thread(root: tkinter.Tk) -> None:
    label = tkinter_module.Label(root)
    tracked: TrackedSubject[int] = TrackedSubject()
    boom = ValueError("boom")
    binding = bind_tk(label, tracked.observable, lambda _v: None)
    errors: list[BaseException] = root.callback_errors  # type: ignore[attr-defined]
    assert run_until(
        root,
        lambda: bool(errors),
        start=lambda: feed_in_thread(lambda e: tracked.subject.on_error(e), [boom]),
    )
    assert errors == [boom]
    assert binding.is_disposed


def test_fps_coalesces_a_burst_and_keeps_the_last_value(root: tkinter.Tk) -> None:
    label = tkinter_module.Label(root)
    tracked: TrackedSubject[int] = TrackedSubject()
    renders: list[int] = []
    bind_tk(label, tracked.observable, renders.append, fps=20)
    feeders: list[threading.Thread] = []
    assert run_until(
        root,
        lambda: bool(feeders) and not feeders[0].is_alive() and renders[-1:] == [4999],
        start=lambda: feeders.append(feed_in_thread(tracked.subject.on_next, range(5000))[0]),
    )
    assert renders[0] == 0  # leading edge
    assert renders == sorted(renders)
    assert len(renders) < 100  # 5000 values, a handful of frames


def test_scheduler_is_a_no_op_once_gone_and_never_raises_after_destroy(
    root: tkinter.Tk,
) -> None:
    scheduler = TkWidgetScheduler(root)
    ran: list[str] = []
    scheduler.mark_gone()
    scheduler.schedule(lambda _s, _st: ran.append("after mark_gone"))
    live = TkWidgetScheduler(root)
    live.schedule(lambda _s, _st: ran.append("live"))
    root.update()
    assert ran == ["live"]
    root.destroy()
    # The interpreter outlives its windows; scheduling and cancelling stay harmless.
    live.schedule(lambda _s, _st: ran.append("never runs")).dispose()
    assert scheduler.is_gone


def test_values_from_another_thread_before_mainloop_wait_for_it(root: tkinter.Tk) -> None:
    label = tkinter_module.Label(root)
    tracked: TrackedSubject[int] = TrackedSubject()
    seen: list[int] = []
    bind_tk(label, tracked.observable, seen.append)
    thread, _ = feed_in_thread(tracked.subject.on_next, range(5))
    thread.join(10)  # the feeder never blocks on Tk, even though no mainloop runs yet
    assert not thread.is_alive()
    assert seen == []
    assert run_until(root, lambda: seen == [0, 1, 2, 3, 4])


@pytest.mark.timeout(60)
def test_tk_thread_waiting_for_the_store_lock_never_deadlocks_a_notifying_producer(
    root: tkinter.Tk,
) -> None:
    # The store notifies under its lock. If the hop to Tk blocked the notifying thread until
    # Tk served it (a plain tkinter call from another thread does), a Tk callback dispatching
    # at that moment would wait for the lock while the producer waits for Tk: a deadlock.
    def reducer(state: tuple[int, int] | None, action: object) -> tuple[int, int]:
        fed, clicks = state or (0, 0)
        match action:
            case ("fed", int(n)):
                return (n, clicks)
            case ("click",):
                return (fed, clicks + 1)
        return (fed, clicks)

    store = create_store(reducer)
    tk_thread = threading.get_ident()
    producer_holds_lock = threading.Event()

    def first_subscriber(_state: object) -> None:
        if threading.get_ident() != tk_thread:
            producer_holds_lock.set()

    store.states.subscribe(first_subscriber)  # notified before the binding's stream
    label = tkinter_module.Label(root)
    shown: list[int] = []
    bind_tk(label, store.select(lambda state: state[0]), shown.append)
    assert run_until(root, lambda: shown == [0])
    root.update()  # let the delivery loop go idle, so the next value must hop anew
    producer = threading.Thread(target=lambda: store.dispatch(("fed", 1)), daemon=True)

    def click() -> None:
        producer.start()
        assert producer_holds_lock.wait(10)
        store.dispatch(("click",))  # a UI command: waits for the producer's lock

    assert run_until(root, lambda: shown == [0, 1] and not producer.is_alive(), start=click)
    assert store.state == (1, 1)


def test_a_destroyed_root_is_not_kept_alive_by_its_inbox(xvfb_display: str) -> None:
    root = tkinter_module.Tk()
    label = tkinter_module.Label(root)
    bind_tk(label, TrackedSubject[int]().observable, lambda _v: None)
    assert root in _inboxes
    root.destroy()
    alive = weakref.ref(root)
    del root, label
    gc.collect()
    assert alive() is None
