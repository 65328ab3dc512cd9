"""aiter_stream: cross-thread delivery, completion, errors, boundedness, closing."""

from __future__ import annotations

import asyncio
import threading

import pytest
import reactivex
from reactivex.subject import Subject
from ui_helpers import TrackedSubject, feed_in_thread

from reactive_aiops.ui.aio import aiter_stream

TIMEOUT = 10.0


@pytest.mark.asyncio
async def test_values_from_another_thread_arrive_on_the_loop_and_completion_ends_it() -> None:
    tracked: TrackedSubject[int] = TrackedSubject()
    loop_thread = threading.get_ident()
    received: list[int] = []
    async with aiter_stream(tracked.observable) as stream:
        assert tracked.live == 1
        release = threading.Event()

        def produce(value: int) -> None:
            # One value at a time: wait for the consumer so nothing is conflated.
            tracked.subject.on_next(value)
            release.wait(TIMEOUT)
            release.clear()

        thread, idents = feed_in_thread(produce, range(5), then=tracked.subject.on_completed)

        async def consume() -> None:
            async for value in stream:
                assert threading.get_ident() == loop_thread
                received.append(value)
                release.set()

        await asyncio.wait_for(consume(), TIMEOUT)
        thread.join(TIMEOUT)
        assert idents[0] != loop_thread
    assert received == [0, 1, 2, 3, 4]
    assert stream.closed
    assert tracked.live == 0


@pytest.mark.asyncio
async def test_a_burst_keeps_only_the_latest_value() -> None:
    subject: Subject[int] = Subject()
    stream = aiter_stream(subject)
    thread, _ = feed_in_thread(subject.on_next, range(10_000), then=subject.on_completed)
    await asyncio.to_thread(thread.join, TIMEOUT)
    # The consumer did not run during the burst: one value is held, not ten thousand.
    assert [value async for value in stream] == [9_999]


@pytest.mark.asyncio
async def test_a_slow_consumer_sees_increasing_values_and_the_last_one() -> None:
    subject: Subject[int] = Subject()
    received: list[int] = []
    stream = aiter_stream(subject)
    thread, _ = feed_in_thread(subject.on_next, range(20_000), then=subject.on_completed)

    async def consume() -> None:
        async for value in stream:
            received.append(value)
            await asyncio.sleep(0)  # yield, as a real render would

    await asyncio.wait_for(consume(), TIMEOUT)
    thread.join(TIMEOUT)
    assert received[-1] == 19_999
    assert received == sorted(set(received))


@pytest.mark.asyncio
async def test_current_value_emitted_on_subscribe_is_held_for_the_first_anext() -> None:
    stream = aiter_stream(reactivex.of("current"))
    assert await anext(stream) == "current"
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


@pytest.mark.asyncio
async def test_none_is_a_value_like_any_other() -> None:
    assert [value async for value in aiter_stream(reactivex.of(None, 0))] == [0]
    subject: Subject[int | None] = Subject()
    stream = aiter_stream(subject)
    subject.on_next(None)
    assert await anext(stream) is None
    await stream.aclose()


@pytest.mark.asyncio
async def test_error_is_raised_after_the_held_value_then_iteration_stops() -> None:
    subject: Subject[int] = Subject()
    stream = aiter_stream(subject)
    thread, _ = feed_in_thread(lambda e: subject.on_error(e), [LookupError("gone")])
    thread.join(TIMEOUT)
    with pytest.raises(LookupError, match="gone"):
        await asyncio.wait_for(anext(stream), TIMEOUT)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)

    subject2: Subject[int] = Subject()
    stream2 = aiter_stream(subject2)
    subject2.on_next(1)
    subject2.on_error(LookupError("after one"))
    assert await anext(stream2) == 1
    with pytest.raises(LookupError):
        await anext(stream2)


@pytest.mark.asyncio
async def test_aclose_unsubscribes_and_wakes_a_waiting_consumer() -> None:
    tracked: TrackedSubject[int] = TrackedSubject()
    stream = aiter_stream(tracked.observable)
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    assert not waiting.done()
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, TIMEOUT)
    assert tracked.live == 0
    tracked.subject.on_next(1)  # nobody listens any more
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
    await stream.aclose()  # idempotent


@pytest.mark.asyncio
async def test_close_from_another_thread_wakes_the_consumer() -> None:
    subject: Subject[int] = Subject()
    stream = aiter_stream(subject)
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    await asyncio.to_thread(stream.close)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, TIMEOUT)


@pytest.mark.asyncio
async def test_two_concurrent_consumers_are_refused() -> None:
    subject: Subject[int] = Subject()
    async with aiter_stream(subject) as stream:
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already awaiting"):
            await anext(stream)
        subject.on_next(7)
        assert await asyncio.wait_for(first, TIMEOUT) == 7


def test_without_a_running_loop_a_loop_must_be_given() -> None:
    with pytest.raises(RuntimeError):
        aiter_stream(reactivex.empty())


def test_an_explicit_loop_can_be_fed_and_iterated_from_its_own_thread() -> None:
    loop = asyncio.new_event_loop()
    try:
        subject: Subject[str] = Subject()
        stream = aiter_stream(subject, loop=loop)
        subject.on_next("before the loop runs")

        async def first() -> str:
            return await anext(stream)

        assert loop.run_until_complete(first()) == "before the loop runs"
        stream.close()
    finally:
        loop.close()


def test_a_producer_after_the_loop_closed_unsubscribes_instead_of_failing() -> None:
    loop = asyncio.new_event_loop()
    tracked: TrackedSubject[int] = TrackedSubject()
    aiter_stream(tracked.observable, loop=loop)
    loop.close()
    thread, _ = feed_in_thread(tracked.subject.on_next, [1])
    thread.join(TIMEOUT)
    assert tracked.live == 0
