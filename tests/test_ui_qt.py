"""bind_qt on the offscreen platform: delivery on the GUI thread, disposal on ``destroyed``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from ui_helpers import TrackedSubject, feed_in_thread, qapp

from reactive_aiops.ui.qt import QtObjectScheduler, bind_qt

QtCore: Any = pytest.importorskip("PySide6.QtCore")
QtWidgets: Any = pytest.importorskip("PySide6.QtWidgets")

__all__ = ["qapp"]  # re-exported fixture


def run_until(
    condition: Callable[[], bool],
    *,
    start: Callable[[], object] | None = None,
    timeout: float = 10.0,
) -> bool:
    """Run a Qt event loop until ``condition`` holds (checked on the GUI thread) or timeout."""
    loop = QtCore.QEventLoop()
    deadline = time.monotonic() + timeout
    met: list[bool] = []

    def check() -> None:
        if condition():
            met.append(True)
            loop.quit()
        elif time.monotonic() > deadline:
            loop.quit()

    poll = QtCore.QTimer()
    poll.setInterval(5)
    poll.timeout.connect(check)
    poll.start()
    if start is not None:
        QtCore.QTimer.singleShot(0, start)
    loop.exec()
    poll.stop()
    return bool(met)


def drain() -> None:
    """Deliver everything already posted to the GUI thread (no waiting for timers)."""
    QtCore.QCoreApplication.processEvents()
    QtCore.QCoreApplication.sendPostedEvents()


def delete_now(widget: Any) -> None:
    widget.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)


def test_label_follows_a_stream_fed_from_another_thread_on_the_gui_thread(qapp: Any) -> None:
    label = QtWidgets.QLabel("-")
    tracked: TrackedSubject[int] = TrackedSubject()
    gui_thread = threading.get_ident()
    render_threads: set[int] = set()

    def render(value: int) -> None:
        render_threads.add(threading.get_ident())
        label.setText(str(value))

    binding = bind_qt(label, tracked.observable, render, qtcore=QtCore)
    thread, idents = feed_in_thread(tracked.subject.on_next, range(200))
    assert run_until(lambda: not thread.is_alive() and label.text() == "199")
    assert idents[0] != gui_thread
    assert render_threads == {gui_thread}
    assert tracked.live == 1
    binding.dispose()
    assert tracked.live == 0
    delete_now(label)


def test_destroying_the_widget_disposes_the_subscription(qapp: Any) -> None:
    label = QtWidgets.QLabel("-")
    tracked: TrackedSubject[str] = TrackedSubject()
    seen: list[str] = []
    binding = bind_qt(label, tracked.observable, seen.append, qtcore=QtCore)
    thread, _ = feed_in_thread(tracked.subject.on_next, ["first"])
    assert run_until(lambda: seen == ["first"])
    thread.join()
    delete_now(label)
    assert binding.is_disposed
    assert tracked.live == 0
    assert tracked.subject.observers == []
    late, _ = feed_in_thread(tracked.subject.on_next, ["late"])
    late.join()
    drain()  # a stray delivery would have been posted by now
    assert seen == ["first"]


def test_a_value_in_flight_when_the_widget_dies_is_dropped(qapp: Any) -> None:
    label = QtWidgets.QLabel("-")
    seen: list[str] = []
    scheduler = QtObjectScheduler(QtCore, label)
    # Posted from another thread, then the context dies before the loop runs it.
    thread, _ = feed_in_thread(
        lambda v: scheduler.schedule(lambda _s, _st: seen.append(v)), ["in flight"]
    )
    thread.join()
    delete_now(label)
    drain()
    assert seen == []


def test_delayed_actions_scheduled_off_thread_run_on_the_gui_thread(qapp: Any) -> None:
    label = QtWidgets.QLabel()
    scheduler = QtObjectScheduler(QtCore, label)
    ran_on: list[int] = []
    thread, _ = feed_in_thread(
        lambda _v: scheduler.schedule_relative(
            0.01, lambda _s, _st: ran_on.append(threading.get_ident())
        ),
        [None],
    )
    thread.join()
    assert run_until(lambda: bool(ran_on))
    assert ran_on == [threading.get_ident()]
    cancelled: list[str] = []
    scheduler.schedule_relative(0.01, lambda _s, _st: cancelled.append("cancelled")).dispose()
    scheduler.schedule_relative(0.02, lambda _s, _st: cancelled.append("later"))
    assert run_until(lambda: bool(cancelled))  # a later timer fires, the cancelled one never
    assert cancelled == ["later"]
    delete_now(label)
    assert scheduler.schedule(lambda _s, _st: None) is not None  # no raise after deletion


def test_completion_and_error_arrive_on_the_gui_thread_and_end_the_binding(qapp: Any) -> None:
    label = QtWidgets.QLabel()
    ended: list[tuple[str, int]] = []
    done: TrackedSubject[int] = TrackedSubject()
    failed: TrackedSubject[int] = TrackedSubject()
    first = bind_qt(
        label,
        done.observable,
        lambda _v: None,
        qtcore=QtCore,
        on_completed=lambda: ended.append(("completed", threading.get_ident())),
    )
    second = bind_qt(
        label,
        failed.observable,
        lambda _v: None,
        qtcore=QtCore,
        on_error=lambda e: ended.append((str(e), threading.get_ident())),
    )
    feed_in_thread(done.subject.on_next, [1], then=done.subject.on_completed)
    feed_in_thread(lambda e: failed.subject.on_error(e), [ValueError("boom")])
    assert run_until(lambda: len(ended) == 2)
    gui = threading.get_ident()
    assert sorted(ended) == sorted([("completed", gui), ("boom", gui)])
    assert first.is_disposed
    assert second.is_disposed
    delete_now(label)


def test_fps_coalesces_a_burst_and_keeps_the_last_value(qapp: Any) -> None:
    label = QtWidgets.QLabel()
    tracked: TrackedSubject[int] = TrackedSubject()
    renders: list[int] = []
    bind_qt(label, tracked.observable, renders.append, qtcore=QtCore, fps=20)
    thread, _ = feed_in_thread(tracked.subject.on_next, range(5000))
    assert run_until(lambda: not thread.is_alive() and renders[-1:] == [4999])
    assert renders[0] == 0
    assert renders == sorted(renders)
    assert len(renders) < 100
    delete_now(label)
    assert tracked.live == 0
