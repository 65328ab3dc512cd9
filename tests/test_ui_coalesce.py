"""coalesce_frames in virtual time: bounded rate under bursts, leading edge after quiet, no loss."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
import reactivex
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.disposable import Disposable
from reactivex.notification import OnCompleted, OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded

from reactive_aiops.ui.coalesce import DEFAULT_FPS, coalesce_frames

on_next = ReactiveTest.on_next
on_completed = ReactiveTest.on_completed
on_error = ReactiveTest.on_error

# fps=0.1 makes a frame exactly 10 virtual ticks, which keeps the marble times readable.
FRAME_FPS = 0.1
FRAME = 10.0


def values_at(messages: list[Recorded[Any]]) -> list[tuple[Any, Any]]:
    return [(m.time, m.value.value) for m in messages if isinstance(m.value, OnNext)]


def run(
    scheduler: TestScheduler, source: Observable[Any], fps: float = FRAME_FPS
) -> list[Recorded[Any]]:
    # Dispose long after any marble (TestScheduler.start disposes at tick 1000 by default).
    result = scheduler.start(
        lambda: source.pipe(coalesce_frames(fps, scheduler=scheduler)), disposed=1_000_000
    )
    return list(result.messages)


def test_single_value_after_quiet_is_delivered_at_once() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(250, "a"), on_next(400, "b"))
    messages = run(scheduler, source)
    assert values_at(messages) == [(250, "a"), (400, "b")]


def test_burst_is_bounded_to_one_delivery_per_frame_and_keeps_the_latest() -> None:
    scheduler = TestScheduler()
    # 100 values, one per tick, from 300 to 399: ten frames' worth.
    source = scheduler.create_hot_observable([on_next(300 + i, i) for i in range(100)])
    delivered = values_at(run(scheduler, source))
    assert delivered[0] == (300, 0)  # leading edge
    times = [t for t, _ in delivered]
    assert all(b - a >= FRAME for a, b in pairwise(times))
    assert len(delivered) <= 100 / FRAME + 2
    # Each frame end delivers the newest value produced in that frame.
    assert delivered[1] == (310, 10)
    assert delivered[-1][1] == 99  # the last value is never lost
    values = [v for _, v in delivered]
    assert values == sorted(values)


def test_trailing_value_is_delivered_at_frame_end_then_idle_again() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        on_next(300, "a"), on_next(303, "b"), on_next(306, "c"), on_next(350, "d")
    )
    assert values_at(run(scheduler, source)) == [(300, "a"), (310, "c"), (350, "d")]


def test_completion_flushes_the_held_value_first() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(
        on_next(300, "a"), on_next(302, "b"), on_completed(304)
    )
    messages = run(scheduler, source)
    assert messages == [on_next(300, "a"), on_next(304, "b"), on_completed(304)]


def test_error_flushes_the_held_value_then_propagates() -> None:
    scheduler = TestScheduler()
    boom = RuntimeError("boom")
    source = scheduler.create_hot_observable(
        on_next(300, "a"), on_next(302, "b"), on_error(305, boom)
    )
    messages = run(scheduler, source)
    assert messages == [on_next(300, "a"), on_next(305, "b"), on_error(305, boom)]


def test_dispose_cancels_the_pending_frame() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(on_next(300, "a"), on_next(302, "b"))
    result = scheduler.start(
        lambda: source.pipe(coalesce_frames(FRAME_FPS, scheduler=scheduler)), disposed=305
    )
    assert values_at(list(result.messages)) == [(300, "a")]


class SpyScheduler(TestScheduler):
    """Counts disposals of frame timers that already fired and of ones still pending."""

    def __init__(self) -> None:
        super().__init__()
        self.spent_disposed = 0
        self.pending_disposed = 0

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        fired: list[bool] = []

        def run(scheduler: Any, value: Any) -> Any:
            fired.append(True)
            return action(scheduler, value)

        inner = super().schedule_relative(duetime, run, state)

        def dispose() -> None:
            if fired:
                self.spent_disposed += 1
            else:
                self.pending_disposed += 1
            inner.dispose()

        return Disposable(dispose)


def test_spent_frame_timers_are_never_disposed() -> None:
    # Disposing a spent timer from the producer's thread can block (AsyncIOThreadSafeScheduler
    # waits for its loop) while the producer holds the store lock.
    scheduler = SpyScheduler()
    source = scheduler.create_hot_observable(
        [on_next(300 + 25 * i + j, (i, j)) for i in range(10) for j in range(3)]
        + [on_completed(600)]
    )
    messages = run(scheduler, source)
    assert len(values_at(messages)) == 20  # per burst: a leading edge and a frame end
    assert scheduler.spent_disposed == 0
    assert scheduler.pending_disposed == 0


def test_unsubscribing_mid_frame_cancels_the_pending_timer() -> None:
    scheduler = SpyScheduler()
    source = scheduler.create_hot_observable(on_next(300, "a"), on_next(302, "b"))
    result = scheduler.start(
        lambda: source.pipe(coalesce_frames(FRAME_FPS, scheduler=scheduler)), disposed=305
    )
    assert values_at(list(result.messages)) == [(300, "a")]
    assert scheduler.pending_disposed == 1


def test_default_is_sixty_hertz_with_the_subscribe_scheduler() -> None:
    assert DEFAULT_FPS == 60.0
    scheduler = TestScheduler()
    # Two values 1 ms apart, then one 50 ms later (virtual seconds).
    source = scheduler.create_hot_observable(
        # reactivex annotates ticks as int, but virtual time is a float clock.
        on_next(300.0, 1),  # type: ignore[arg-type]
        on_next(300.001, 2),  # type: ignore[arg-type]
        on_next(300.05, 3),  # type: ignore[arg-type]
    )
    result = scheduler.start(lambda: source.pipe(coalesce_frames()))
    delivered = values_at(list(result.messages))
    assert [v for _, v in delivered] == [1, 2, 3]
    assert delivered[1][0] == pytest.approx(300.0 + 1 / 60)
    assert delivered[2][0] == pytest.approx(300.05)


def test_reentrant_value_from_inside_on_next_is_held_for_the_frame() -> None:
    scheduler = TestScheduler()
    subject: reactivex.subject.Subject[int] = reactivex.subject.Subject()
    seen: list[tuple[float, int]] = []

    def render(value: int) -> None:
        seen.append((scheduler.clock, value))
        if value == 1:
            subject.on_next(2)  # e.g. a dispatch from a render callback

    subject.pipe(coalesce_frames(FRAME_FPS, scheduler=scheduler)).subscribe(render)
    scheduler.schedule_absolute(100, lambda _s, _st: subject.on_next(1))
    scheduler.start()
    assert seen == [(100, 1), (110, 2)]


@pytest.mark.parametrize("fps", [0, -1.0, float("inf"), float("nan")])
def test_bad_fps_is_a_value_error(fps: float) -> None:
    with pytest.raises(ValueError, match="fps"):
        coalesce_frames(fps)


def test_non_numeric_fps_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="fps"):
        coalesce_frames("60")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=80))
def test_properties_rate_order_and_last_value(gaps: list[int]) -> None:
    scheduler = TestScheduler()
    times: list[int] = []
    now = 300
    for gap in gaps:
        now += gap
        times.append(now)
    # Values arriving at the same tick keep their order in a hot observable.
    source = scheduler.create_hot_observable(
        [on_next(t, i) for i, t in enumerate(times)] + [on_completed(now + 1)]
    )
    messages = run(scheduler, source)
    delivered = values_at(messages)
    assert delivered[-1][1] == len(times) - 1  # last value never lost
    values = [v for _, v in delivered]
    assert values == sorted(set(values))  # in order, no duplicates
    # Rate bound: between any two deliveries (except the flush at completion) a full frame.
    body = delivered[:-1] if messages[-1].time == delivered[-1][0] else delivered
    stamps = [t for t, _ in body]
    assert all(b - a >= FRAME for a, b in pairwise(stamps))
    # Leading edge: the first value is delivered at its own arrival time.
    assert delivered[0] == (times[0], 0)
    assert isinstance(messages[-1].value, OnCompleted)


class LateScheduler(TestScheduler):
    """Fires every relative timer ``lateness`` ticks after it was due (a busy loop)."""

    def __init__(self, lateness: float) -> None:
        super().__init__()
        self.lateness = lateness

    def schedule_relative(self, duetime: Any, action: Any, state: Any = None) -> Any:
        return super().schedule_relative(
            self.to_seconds(duetime) + self.lateness, action, state
        )


def test_late_timers_do_not_push_later_frames_back() -> None:
    # Frames stay on the grid 300, 310, 320, ... even though each timer fires 3 ticks late:
    # scheduling each frame from the late delivery would drift to one every 13 ticks.
    scheduler = LateScheduler(3)
    source = scheduler.create_hot_observable([on_next(300 + i, i) for i in range(100)])
    delivered = values_at(run(scheduler, source))
    times = [t for t, _ in delivered]
    assert times[:4] == [300, 313, 323, 333]
    assert len(delivered) == 11  # the leading edge and one per grid frame up to 400
    assert delivered[-1][1] == 99


def test_a_timer_a_whole_frame_late_restarts_the_grid() -> None:
    scheduler = LateScheduler(12)
    source = scheduler.create_hot_observable([on_next(300 + i, i) for i in range(40)])
    delivered = values_at(run(scheduler, source))
    times = [t for t, _ in delivered]
    # 322 is past the next grid point (320): the next frame is due a full period after it.
    assert times[:3] == [300, 322, 344]
    assert all(b - a >= FRAME for a, b in pairwise(times))
    assert delivered[-1][1] == 39


class SteppedClockScheduler(TestScheduler):
    """Virtual time whose ``now`` can be stepped back, like a wall clock set back by NTP.

    reactivex's Tk, Qt and timeout schedulers report wall-clock time, and from 5.1 on so do its
    asyncio schedulers; timers still fire after their relative delay.
    """

    step = 0.0

    @property
    def now(self) -> Any:
        return self.to_datetime(self._clock - self.step)


def test_a_clock_stepped_back_does_not_hold_the_frame_open() -> None:
    scheduler = SteppedClockScheduler()
    source = scheduler.create_hot_observable(
        on_next(300, "a"), on_next(303, "b"), on_next(312, "c"), on_next(315, "d")
    )

    def step_back(*_: Any) -> None:
        scheduler.step = 3_600.0  # an hour, during the first frame

    scheduler.schedule_absolute(305, step_back)
    delivered = values_at(run(scheduler, source))
    # The frame ending at 310 restarts the grid from the stepped clock instead of waiting until
    # the old grid point comes round again an hour later.
    assert delivered == [(300, "a"), (310, "b"), (320, "d")]
