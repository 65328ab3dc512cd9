"""bind_textual in a real App under run_test(): background-thread feeds, unmount disposal."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from reactivex import Observable
from reactivex.subject import BehaviorSubject
from ui_helpers import TrackedSubject, feed_in_thread

from reactive_aiops.ui._binding import Binding
from reactive_aiops.ui.textual import BINDING_WORKER_GROUP, bind_textual

pytest.importorskip("textual")

from textual.app import App, ComposeResult
from textual.widgets import Static

TIMEOUT = 10.0


class ValueView(Static):
    """A widget that binds itself to a stream on mount and records what it rendered."""

    def __init__(self, stream: Observable[Any], **options: Any) -> None:
        super().__init__("-")
        self.stream = stream
        self.options = options
        self.rendered: list[Any] = []
        self.render_threads: set[int] = set()
        self.binding: Binding | None = None
        self.content_after_bind: object = None
        self.changed = asyncio.Event()

    def on_mount(self) -> None:
        self.binding = bind_textual(self, self.stream, self.show, **self.options)
        self.content_after_bind = self.content

    def show(self, value: Any) -> None:
        self.render_threads.add(threading.get_ident())
        self.rendered.append(value)
        self.update(str(value))
        self.changed.set()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), TIMEOUT)


class ViewApp(App[None]):
    def __init__(self, view: ValueView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        yield self.view


def binding_workers(app: App[Any]) -> list[Any]:
    return [w for w in app.workers if w.group == BINDING_WORKER_GROUP and not w.is_finished]


@pytest.mark.asyncio
async def test_widget_follows_a_stream_fed_from_a_background_thread() -> None:
    tracked: TrackedSubject[int] = TrackedSubject()
    view = ValueView(tracked.observable)
    app_thread = threading.get_ident()
    async with ViewApp(view).run_test():
        thread, idents = feed_in_thread(tracked.subject.on_next, range(300))
        await view.wait_for(lambda: view.rendered[-1:] == [299])
        thread.join(TIMEOUT)
        assert idents[0] != app_thread
        assert view.render_threads == {app_thread}
        assert str(view.content) == "299"
        assert view.rendered == sorted(view.rendered)
        assert tracked.live == 1


@pytest.mark.asyncio
async def test_current_value_is_shown_synchronously_on_bind() -> None:
    subject: BehaviorSubject[str] = BehaviorSubject("current")
    view = ValueView(subject)
    async with ViewApp(view).run_test():
        assert view.content_after_bind == "current"
        subject.on_next("next, on the app thread")  # delivered directly, not posted
        assert view.rendered == ["current", "next, on the app thread"]


@pytest.mark.asyncio
async def test_unmount_disposes_the_subscription() -> None:
    tracked: TrackedSubject[int] = TrackedSubject()
    view = ValueView(tracked.observable)
    async with ViewApp(view).run_test() as pilot:
        thread, _ = feed_in_thread(tracked.subject.on_next, [1])
        await view.wait_for(lambda: view.rendered == [1])
        thread.join(TIMEOUT)
        assert tracked.live == 1
        await view.remove()
        await pilot.pause()
        assert view.binding is not None
        assert view.binding.is_disposed
        assert tracked.live == 0
        assert binding_workers(pilot.app) == []
        late, _ = feed_in_thread(tracked.subject.on_next, [2])
        late.join(TIMEOUT)
        await pilot.pause()
        assert view.rendered == [1]


@pytest.mark.asyncio
async def test_a_burst_while_the_app_is_busy_posts_one_delivery_with_the_newest_value() -> None:
    tracked: TrackedSubject[int] = TrackedSubject()
    view = ValueView(tracked.observable)
    async with ViewApp(view).run_test():
        thread, _ = feed_in_thread(tracked.subject.on_next, range(10_000))
        thread.join(TIMEOUT)  # blocks the app's loop on purpose: nothing is delivered meanwhile
        await view.wait_for(lambda: bool(view.rendered))
        assert view.rendered == [9_999]


@pytest.mark.asyncio
async def test_completion_from_a_thread_arrives_on_the_app_thread_and_ends_the_binding() -> None:
    tracked: TrackedSubject[int] = TrackedSubject()
    completed_on: list[int] = []

    def completed() -> None:
        completed_on.append(threading.get_ident())
        view.changed.set()

    view = ValueView(tracked.observable, on_completed=completed)
    async with ViewApp(view).run_test() as pilot:
        feed_in_thread(tracked.subject.on_next, [1, 2], then=tracked.subject.on_completed)
        await view.wait_for(lambda: bool(completed_on))
        assert view.rendered[-1] == 2
        assert completed_on == [threading.get_ident()]
        assert view.binding is not None
        assert view.binding.is_disposed
        await pilot.pause()
        assert binding_workers(pilot.app) == []


@pytest.mark.asyncio
async def test_disposing_early_stops_deliveries_and_the_keep_alive_worker() -> None:
    tracked: TrackedSubject[int] = TrackedSubject()
    view = ValueView(tracked.observable)
    async with ViewApp(view).run_test() as pilot:
        assert len(binding_workers(pilot.app)) == 1
        assert view.binding is not None
        await asyncio.to_thread(view.binding.dispose)
        await pilot.pause()
        assert tracked.live == 0
        assert binding_workers(pilot.app) == []
        assert view.is_mounted


@pytest.mark.asyncio
async def test_an_unhandled_stream_error_surfaces_through_the_app() -> None:
    tracked: TrackedSubject[int] = TrackedSubject()
    view = ValueView(tracked.observable)

    async def run_app() -> None:
        async with ViewApp(view).run_test() as pilot:
            thread, _ = feed_in_thread(
                lambda e: tracked.subject.on_error(e), [LookupError("stream failed")]
            )
            await asyncio.to_thread(thread.join, TIMEOUT)
            await pilot.pause()

    with pytest.raises(LookupError, match="stream failed"):
        await run_app()


@pytest.mark.asyncio
async def test_fps_coalesces_values_produced_on_the_app_thread() -> None:
    subject: BehaviorSubject[int] = BehaviorSubject(0)
    view = ValueView(subject, fps=50.0)
    async with ViewApp(view).run_test():
        for value in range(1, 1_000):  # a synchronous burst on the app's own thread
            subject.on_next(value)
        # The mount-time 0 opened a frame; 1 is a leading edge only if that frame is over.
        # Everything else is held for the frame, and only the newest value survives.
        assert view.rendered in ([0], [0, 1])
        await view.wait_for(lambda: view.rendered[-1:] == [999])
        assert view.rendered in ([0, 999], [0, 1, 999])


@pytest.mark.asyncio
async def test_fps_flushes_the_held_value_before_completion() -> None:
    subject: BehaviorSubject[int] = BehaviorSubject(0)
    completed: list[list[int]] = []
    rendered: list[int] = []

    def on_completed() -> None:
        completed.append(list(rendered))

    view = ValueView(subject, fps=1.0, on_completed=on_completed)
    rendered = view.rendered
    async with ViewApp(view).run_test():
        subject.on_next(1)
        subject.on_next(2)
        subject.on_completed()
        assert completed == [[0, 2]]
        assert view.binding is not None
        assert view.binding.is_disposed


def test_binding_outside_the_app_loop_is_refused() -> None:
    with pytest.raises(RuntimeError, match="on_mount"):
        bind_textual(Static(), TrackedSubject[int]().observable, print)
