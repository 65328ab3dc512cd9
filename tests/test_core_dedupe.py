"""Dedupe: exactly once per key under duplicates and reordering, flat memory, stats in state."""

from __future__ import annotations

import random
import sys
import tracemalloc
from typing import Any

import attrs
import hypothesis.strategies as st
import pytest
from core_middleware_helpers import Append, Root, reducer
from hypothesis import given, settings

from reactive_aiops.core import Batch, ReducerError, create_store
from reactive_aiops.core.dedupe import (
    DedupeStats,
    Deduplicator,
    DuplicateDropped,
    dedupe,
    dedupe_stats,
)
from reactive_aiops.core.events import EventMeta, MalformedEvent, UnknownEvent

WINDOW = 8


def ev(channel: str, offset: int | None, event_id: str | None = None, epoch: str = "e1") -> Append:
    meta = EventMeta(channel, "append", offset=offset, epoch=epoch, event_id=event_id)
    return Append(f"{channel}:{offset}:{event_id}", "x", meta)


class Arrivals:
    """A reducer recording which server events reached it (and delegating to the domain)."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, int | str | None]] = []
        self.ids: list[str] = []

    def __call__(self, state: Any, act: object) -> Any:
        meta = getattr(act, "meta", None)
        if isinstance(meta, EventMeta):
            self.keys.append(
                (meta.channel, meta.offset if meta.offset is not None else meta.event_id)
            )
            if meta.event_id is not None:
                self.ids.append(meta.event_id)
        return reducer(state, act)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Append], int]:
    """Events on two channels (some also mirrored on a third with the same id), each delivered
    one to three times, reordered by less than the window. Returns (deliveries, distinct ids)."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    events: list[tuple[float, Append]] = []
    ids = 0
    for channel in ("a", "b"):
        for offset in range(draw(st.integers(0, 40))):
            ids += 1
            mirrored = rng.random() < 0.2
            # Half the events carry no id, so only their (channel, offset) can catch a re-delivery.
            event_id = f"{channel}{offset}" if mirrored or rng.random() < 0.5 else None
            copies = [ev(channel, offset, event_id)]
            if mirrored:  # the same event published on an overlapping channel
                copies.append(ev("mirror", None, event_id))
            for copy in copies:
                for _ in range(rng.randint(1, 3)):
                    # jitter < WINDOW keeps every delivery within the window of the high mark
                    events.append((offset + rng.random() * (WINDOW - 1), copy))
    events.sort(key=lambda pair: pair[0])
    return [e for _, e in events], ids


@settings(max_examples=200, deadline=None)
@given(deliveries())
def test_each_event_reaches_the_reducer_once(case: tuple[list[Append], int]) -> None:
    delivered, distinct = case
    arrivals = Arrivals()
    store = create_store(dedupe_stats(arrivals), middleware=[dedupe(window=WINDOW)])
    for act in delivered:
        store.dispatch(act)
    assert len(arrivals.keys) == len(set(arrivals.keys)) == distinct
    assert len(set(arrivals.ids)) == len(arrivals.ids)
    stats: DedupeStats = store.state.dedupe
    assert stats.dropped == len(delivered) - distinct
    assert stats.too_old == 0


@settings(max_examples=50, deadline=None)
@given(deliveries(), st.integers(1, 6))
def test_same_in_batches(case: tuple[list[Append], int], size: int) -> None:
    delivered, distinct = case
    arrivals = Arrivals()
    store = create_store(dedupe_stats(arrivals), middleware=[dedupe(window=WINDOW)])
    for i in range(0, len(delivered), size):
        store.dispatch_batch(delivered[i : i + size])
    assert len(arrivals.keys) == len(set(arrivals.keys)) == distinct
    assert store.state.dedupe.dropped == len(delivered) - distinct


def test_too_old_epoch_reset_and_unkeyed_events() -> None:
    arrivals = Arrivals()
    store = create_store(dedupe_stats(arrivals), middleware=[dedupe(window=4)])
    for act in (ev("a", 10), ev("a", 6), ev("a", 7), ev("a", 7)):
        store.dispatch(act)
    assert arrivals.keys == [("a", 10), ("a", 7)]
    stats = store.state.dedupe
    assert (stats.too_old, stats.duplicates) == (1, 1)
    assert stats.last_dropped == ev("a", 7).meta
    store.dispatch(ev("a", 1, epoch="e2"))  # the stream restarted: offsets start over
    store.dispatch(ev("a", None))
    store.dispatch(ev("a", None))  # no offset and no id: nothing to key on, passes
    assert arrivals.keys[-3:] == [("a", 1), ("a", None), ("a", None)]


def test_reducer_failure_does_not_mark_event_as_seen() -> None:
    fail = [True]

    def flaky(state: Any, act: object) -> Any:
        if isinstance(act, Append) and fail[0]:
            raise RuntimeError("boom")
        return reducer(state, act)

    store = create_store(flaky, middleware=[dedupe()])
    with pytest.raises(ReducerError):
        store.dispatch(ev("a", 1, "id1"))
    with pytest.raises(ReducerError):
        store.dispatch(Batch((ev("a", 2, "id2"),)))
    fail[0] = False
    store.dispatch(ev("a", 1, "id1"))
    store.dispatch_batch([ev("a", 2, "id2")])
    assert len(store.state.data) == 2


def test_unknown_and_malformed_are_counted_and_passed_on() -> None:
    seen: list[object] = []

    def spy(state: Any, act: object) -> Any:
        seen.append(act)
        return reducer(state, act)

    store = create_store(dedupe_stats(spy))
    meta = EventMeta("a", "nope")
    store.dispatch(UnknownEvent(meta, {}, "unknown event type 'nope'"))
    store.dispatch(MalformedEvent(meta, {}, "data.id: missing"))
    assert (store.state.dedupe.unknown, store.state.dedupe.malformed) == (1, 1)
    assert [type(a) for a in seen[-2:]] == [UnknownEvent, MalformedEvent]
    assert DuplicateDropped not in [type(a) for a in seen]


def test_stats_field_errors_and_dict_root() -> None:
    @attrs.frozen
    class NoField:
        n: int = 0

    enhanced = dedupe_stats(lambda s, a: s if s is not None else NoField())
    with pytest.raises(TypeError, match="DedupeStats"):
        enhanced(NoField(), DuplicateDropped(EventMeta("a", "t"), "duplicate_id"))
    as_dict = dedupe_stats(lambda s, a: s if s is not None else {})
    state = as_dict(None, DuplicateDropped(EventMeta("a", "t"), "duplicate_id"))
    assert state["dedupe"].duplicates == 1
    with pytest.raises(ValueError, match="positive"):
        Deduplicator(window=0)


def test_dropped_event_is_not_an_echo() -> None:
    from reactive_aiops.core.events import command_id_of, event_meta

    dropped = DuplicateDropped(EventMeta("a", "t", command_id="c1"), "duplicate_id")
    assert event_meta(dropped) is None
    assert command_id_of(dropped) is None


def test_works_with_root_state_field() -> None:
    store = create_store(dedupe_stats(reducer), middleware=[dedupe()])
    store.dispatch(ev("a", 1, "x"))
    store.dispatch(ev("a", 1, "x"))
    assert isinstance(store.state, Root)
    assert store.state.dedupe.duplicates == 1


def deep_size(dedup: Deduplicator) -> int:
    """Bytes held by the deduplicator's own structures (containers, keys, windows, masks)."""
    total = sys.getsizeof(dedup._channels) + sys.getsizeof(dedup._ids)
    total += sys.getsizeof(dedup._id_order)
    for name, win in dedup._channels.items():
        total += sys.getsizeof(name) + sys.getsizeof(win) + sys.getsizeof(win.mask)
        total += sys.getsizeof(win.high) + sys.getsizeof(win.epoch)
    return total + sum(sys.getsizeof(k) for k in dedup._ids)


@pytest.mark.slow
def test_memory_stays_flat_over_a_million_events() -> None:
    dedup = Deduplicator(window=256, max_channels=64, max_ids=4096)
    passed = 0

    def sink(act: object) -> None:
        nonlocal passed
        passed += 1

    dispatch = dedupe(deduplicator=dedup)(None)(sink)  # the middleware never uses its api
    # More channels than max_channels, so the least recently used are forgotten and come back.
    channels = [f"detectors:{i}" for i in range(100)]

    def feed(start: int, stop: int) -> None:
        for i in range(start, stop):
            meta = EventMeta(channels[i % 100], "t", offset=i // 100, event_id=f"i{i:07}")
            dispatch(Append("k", "x", meta))
            if i % 10 == 0:  # a re-delivery of a recent event
                dispatch(Append("k", "x", meta))

    # Traced from the start, so objects freed later were counted when allocated.
    tracemalloc.start()
    try:
        feed(0, 50_000)
        warm = tracemalloc.get_traced_memory()[0]
        feed(50_000, 200_000)
        traced_growth = tracemalloc.get_traced_memory()[0] - warm
    finally:
        tracemalloc.stop()
    size_at_200k = deep_size(dedup)
    feed(200_000, 1_000_000)
    assert passed == 1_000_000 + 100_000  # each re-delivery was passed on as DuplicateDropped
    assert sum(dedup.dropped.values()) == 100_000
    channels_held, ids_held, bits = dedup.footprint
    assert channels_held <= 64
    assert ids_held <= 4096
    assert bits <= 256
    assert traced_growth < 16 * 1024, f"memory grew by {traced_growth} bytes"
    assert deep_size(dedup) <= size_at_200k + 1024


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda c, o, i, e: EventMeta(c, "append", offset=o, epoch=e, event_id=i),
            st.sampled_from(["a", "b"]),
            st.one_of(st.none(), st.integers(0, 12)),
            st.one_of(st.none(), st.sampled_from(["x", "y", "z", "w"])),
            st.sampled_from(["e1", "e2"]),
        ),
        max_size=8,
    ),
    st.lists(st.one_of(st.none(), st.integers(0, 12)), max_size=8),
)
def test_admits_all_only_when_no_event_of_the_run_is_a_redelivery(
    run: list[EventMeta], remembered: list[int | None]
) -> None:
    seen = Deduplicator(window=WINDOW)
    seen.remember_many(
        EventMeta("a", "append", offset=o, epoch="e1", event_id=None if o is None else f"r{o}")
        for o in remembered
    )
    footprint = seen.footprint
    admitted = seen.admits_all(run)
    assert seen.footprint == footprint  # pure
    # The reference: check each event, then remember it, as a fold of single dispatches does.
    clean = True
    for meta in run:
        if seen.check(meta) is not None:
            clean = False
            break
        seen.remember(meta)
    if admitted:
        assert clean
    # A frame of a live stream (rising offsets on a known channel, fresh ids) is admitted.
    fresh = Deduplicator(window=WINDOW)
    live = [EventMeta("a", "append", offset=n, epoch="e1", event_id=f"i{n}") for n in range(5)]
    assert fresh.admits_all(live)
    fresh.remember_many(live)
    assert not fresh.admits_all(live[-1:])
