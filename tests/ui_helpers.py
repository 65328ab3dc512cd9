"""Shared helpers for the UI adapter tests: tracked streams, thread feeders, an Xvfb display."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import pytest
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject

_T = TypeVar("_T")

XVFB_MISSING = "Xvfb not installed: apt-get install xvfb"


class TrackedSubject(Generic[_T]):
    """A Subject whose observable counts subscriptions and disposals (thread-safe)."""

    def __init__(self) -> None:
        self.subject: Subject[_T] = Subject()
        self._lock = threading.Lock()
        self.subscribed = 0
        self.disposed = 0
        self.observable: Observable[_T] = Observable(self._subscribe)

    def _subscribe(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        with self._lock:
            self.subscribed += 1
        inner = self.subject.subscribe(observer, scheduler=scheduler)

        def dispose() -> None:
            with self._lock:
                self.disposed += 1
            inner.dispose()

        return Disposable(dispose)

    @property
    def live(self) -> int:
        """Subscriptions not yet disposed."""
        with self._lock:
            return self.subscribed - self.disposed


def feed_in_thread(
    emit: Callable[[_T], object], values: Iterable[_T], *, then: Callable[[], object] | None = None
) -> tuple[threading.Thread, list[int]]:
    """Start a thread that emits ``values`` then calls ``then``; returns it and its ident box."""
    ident: list[int] = []

    def run() -> None:
        ident.append(threading.get_ident())
        for value in values:
            emit(value)
        if then is not None:
            then()

    thread = threading.Thread(target=run, name="ui-test-feeder", daemon=True)
    thread.start()
    return thread, ident


def wait_until(condition: Callable[[], bool], pump: Callable[[], object], timeout: float) -> bool:
    """Pump a toolkit's events until ``condition`` holds; False on timeout (a real-event wait)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        pump()
    return True


_xvfb: list[tuple[subprocess.Popen[bytes], str]] = []  # the session's one server, if started


def _start_xvfb(binary: str) -> tuple[subprocess.Popen[bytes], str]:
    read_fd, write_fd = os.pipe()
    # -displayfd lets Xvfb pick a free display number and report it, so parallel runs and a
    # developer's own X server never collide. -terminate ends the server when its last client
    # (Tk keeps one connection until the process exits) goes away, so a crashed run leaks none.
    process = subprocess.Popen(
        [
            binary,
            "-displayfd",
            str(write_fd),
            "-terminate",
            "-screen",
            "0",
            "640x480x24",
            "-nolisten",
            "tcp",
        ],
        pass_fds=(write_fd,),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        number = b""
        while not number.endswith(b"\n"):
            ready, _, _ = select.select([read_fd], [], [], 10.0)
            chunk = os.read(read_fd, 16) if ready else b""
            if not chunk:
                process.kill()
                process.wait()
                pytest.fail("Xvfb did not report a display number within 10 s")
            number += chunk
    finally:
        os.close(read_fd)
    return process, f":{number.decode().strip()}"


def _stop_xvfb() -> None:
    while _xvfb:
        process, _ = _xvfb.pop()
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def xvfb_display(request: pytest.FixtureRequest) -> Iterator[str]:
    """Point ``DISPLAY`` at a private ``Xvfb`` for the module; skip when Xvfb is missing
    (fail with ``CI=true``: CI installs it, so its absence is a broken run, not a choice).

    One server serves the whole session and stops when pytest exits: Tk keeps its X connection
    after the last window is destroyed and kills the process (XIO fatal error) if that server
    goes away while Tk is still used, so no module may stop it early.
    """
    binary = shutil.which("Xvfb")
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(XVFB_MISSING + " (CI=true: the Tk tests must run)")
        pytest.skip(XVFB_MISSING)
    if not _xvfb:
        _xvfb.append(_start_xvfb(binary))
        request.config.add_cleanup(_stop_xvfb)
    display = _xvfb[0][1]
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    try:
        yield display
    finally:
        if previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = previous


@pytest.fixture(scope="module")
def qapp() -> Iterator[Any]:
    """The process's QApplication on the offscreen platform (created once, then shared)."""
    qtcore: Any = pytest.importorskip("PySide6.QtCore")
    qtwidgets: Any = pytest.importorskip("PySide6.QtWidgets")
    app = qtwidgets.QApplication.instance()
    if app is None:
        # The platform plugin is chosen when the application is created; restore the variable
        # afterwards so nothing else in the run inherits it.
        previous = os.environ.get("QT_QPA_PLATFORM")
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        try:
            app = qtwidgets.QApplication([])
        finally:
            if previous is None:
                os.environ.pop("QT_QPA_PLATFORM", None)
            else:
                os.environ["QT_QPA_PLATFORM"] = previous
    yield app
    # Flush deferred deletions so no widget outlives the module half-destroyed.
    qtcore.QCoreApplication.sendPostedEvents(None, qtcore.QEvent.Type.DeferredDelete)
