"""Shared helpers for the UI adapter tests: tracked streams, thread feeders, an Xvfb display."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

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


@pytest.fixture(scope="module")
def xvfb_display() -> Iterator[str]:
    """Start a private ``Xvfb`` for the module and point ``DISPLAY`` at it; skip without Xvfb."""
    binary = shutil.which("Xvfb")
    if binary is None:
        pytest.skip(XVFB_MISSING)
    read_fd, write_fd = os.pipe()
    # -displayfd lets Xvfb pick a free display number and report it, so parallel runs and a
    # developer's own X server never collide.
    process = subprocess.Popen(
        [binary, "-displayfd", str(write_fd), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
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
                pytest.fail("Xvfb did not report a display number within 10 s")
            number += chunk
        previous = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = f":{number.decode().strip()}"
        try:
            yield os.environ["DISPLAY"]
        finally:
            if previous is None:
                os.environ.pop("DISPLAY", None)
            else:
                os.environ["DISPLAY"] = previous
    finally:
        os.close(read_fd)
        process.terminate()
        process.wait(timeout=10)
