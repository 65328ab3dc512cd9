"""KeyedSelector: per-key streams whose cost per state is the changed keys, not the subscribers."""

from __future__ import annotations

import gc
import threading
import tracemalloc
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reactivex.subject import BehaviorSubject

from reactive_aiops.core import Batch, create_store
from reactive_aiops.core.entities import EntityCollection
from reactive_aiops.core.keyed import KeyedSelector

Coll = EntityCollection[str, "Item"]


@attrs.frozen
class Item:
    id: str
    value: int = 0


def empty() -> Coll:
    return EntityCollection.empty(key=lambda i: i.id)


class Counting:
    """The collection selector, counting how often the keyed selector evaluates it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, state: Coll) -> Coll:
        self.calls += 1
        return state


def setup(
    initial: Coll | None = None,
) -> tuple[BehaviorSubject[Coll], KeyedSelector[Coll, str, Item], Counting]:
    subject = BehaviorSubject(initial if initial is not None else empty())
    counting = Counting()
    return subject, KeyedSelector(subject, counting), counting


def test_emits_current_value_first_then_changes() -> None:
    subject, keyed, _ = setup(empty().upsert(Item("a", 1)))
    seen: list[Item | None] = []
    keyed.select("a").subscribe(seen.append)
    assert seen == [Item("a", 1)]
    subject.on_next(subject.value.upsert(Item("a", 2)))
    subject.on_next(subject.value.upsert(Item("b", 5)))  # another key: nothing for "a"
    subject.on_next(subject.value.remove("a"))
    subject.on_next(subject.value.upsert(Item("a", 3)))
    assert seen == [Item("a", 1), Item("a", 2), None, Item("a", 3)]


def test_absent_key_starts_with_none() -> None:
    subject, keyed, _ = setup()
    seen: list[Item | None] = []
    keyed.select("x").subscribe(seen.append)
    subject.on_next(subject.value.upsert(Item("x")))
    assert seen == [None, Item("x")]


def test_an_equal_value_after_a_round_trip_is_not_emitted_again() -> None:
    subject, keyed, _ = setup(empty().upsert(Item("a", 1)))
    seen: list[Item | None] = []
    keyed.select("a").subscribe(seen.append)
    start = subject.value
    # Removed and re-added between two states the selector sees: equal, so silent.
    subject.on_next(start.remove("a").upsert(Item("a", 1)))
    assert seen == [Item("a", 1)]


def test_late_subscribers_get_the_latest_value() -> None:
    subject, keyed, _ = setup()
    first: list[Item | None] = []
    keyed.select("a").subscribe(first.append)
    subject.on_next(subject.value.upsert(Item("a", 7)))
    late: list[Item | None] = []
    keyed.select("a").subscribe(late.append)
    assert late == [Item("a", 7)]
    assert keyed.subscriber_count == 2
    assert keyed.subscribed_keys == 1


def test_cost_is_per_change_with_ten_thousand_subscribers() -> None:
    initial = empty().upsert_many(Item(str(i)) for i in range(10_000))
    subject, keyed, counting = setup(initial)
    received = [0]

    def on_next(_: Item | None) -> None:
        received[0] += 1

    for i in range(10_000):
        keyed.select(str(i)).subscribe(on_next)
    assert received[0] == 10_000  # the initial values
    calls, checked, emissions = counting.calls, keyed.stats.keys_checked, keyed.stats.emissions
    for n in range(1, 101):
        subject.on_next(subject.value.upsert(Item(str(n), n)))
    assert counting.calls - calls == 100  # one collection selection per state, not per subscriber
    assert keyed.stats.keys_checked - checked == 100
    assert keyed.stats.emissions - emissions == 100
    assert received[0] == 10_100
    assert keyed.stats.fallbacks == 0


def test_many_changes_touch_only_subscribed_keys() -> None:
    subject, keyed, _ = setup(empty())
    seen: list[Item | None] = []
    keyed.select("k3").subscribe(seen.append)
    subject.on_next(subject.value.upsert_many(Item(f"k{i}", 1) for i in range(1000)))
    assert keyed.stats.keys_checked == 1
    assert seen == [None, Item("k3", 1)]


def test_unknown_changes_fall_back_to_diffing_subscribed_keys_only() -> None:
    big = empty().upsert_many(Item(str(i)) for i in range(5000))
    subject, keyed, _ = setup(big)
    seen: dict[str, list[Item | None]] = {"1": [], "2": [], "3": []}
    for key, out in seen.items():
        keyed.select(key).subscribe(out.append)
    unrelated = empty().upsert_many([Item("1"), Item("2", 9)])  # no link to `big`
    subject.on_next(unrelated)
    assert keyed.stats.fallbacks == 1
    assert keyed.stats.keys_checked == 3
    assert seen == {"1": [Item("1")], "2": [Item("2"), Item("2", 9)], "3": [Item("3"), None]}


def test_same_collection_costs_one_identity_check() -> None:
    subject, keyed, _ = setup(empty().upsert(Item("a")))
    keyed.select("a").subscribe(lambda _: None)
    subject.on_next(subject.value)
    assert keyed.stats.keys_checked == 0


def test_disposal_releases_the_upstream_subscription() -> None:
    subject, keyed, _ = setup()
    d1 = keyed.select("a").subscribe(lambda _: None)
    d2 = keyed.select("b").subscribe(lambda _: None)
    assert len(subject.observers) == 1  # one upstream subscription for both
    d1.dispose()
    d1.dispose()  # twice is harmless
    assert keyed.connected
    d2.dispose()
    assert not keyed.connected
    assert subject.observers == []
    assert keyed.subscribed_keys == 0
    # Resubscribing reconnects and starts from the current state.
    subject.on_next(subject.value.upsert(Item("a", 4)))
    seen: list[Item | None] = []
    keyed.select("a").subscribe(seen.append)
    assert seen == [Item("a", 4)]


def test_subscribe_unsubscribe_cycles_free_everything() -> None:
    subject, keyed, _ = setup(empty().upsert_many(Item(str(i)) for i in range(100)))
    keep = keyed.select("anchor").subscribe(lambda _: None)

    def cycles(n: int) -> None:
        for i in range(n):
            keyed.select(str(i % 100)).subscribe(lambda _: None).dispose()

    cycles(100_000)
    assert keyed.subscribed_keys == 1
    assert len(keyed._watches["anchor"]) == 1
    # And memory stays flat over more cycles (fewer: tracemalloc makes each one slow).
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cycles(10_000)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert growth < 16 * 1024
    assert keyed.subscribed_keys == 1
    assert keyed.subscriber_count == 1
    keep.dispose()
    assert keyed._watches == {}
    assert not keyed.connected
    # Connect/disconnect cycles leave nothing behind either.
    for i in range(1000):
        keyed.select(str(i)).subscribe(lambda _: None).dispose()
    assert keyed._watches == {}
    assert subject.observers == []


def test_a_subscriber_may_dispose_itself_or_subscribe_during_emission() -> None:
    subject, keyed, _ = setup()
    seen: list[tuple[str, Item | None]] = []
    disposables: dict[str, Any] = {}

    def first(value: Item | None) -> None:
        seen.append(("first", value))
        if value is not None:
            disposables["first"].dispose()
            keyed.select("a").subscribe(lambda v: seen.append(("joined", v)))

    disposables["first"] = keyed.select("a").subscribe(first)
    keyed.select("a").subscribe(lambda v: seen.append(("second", v)))
    subject.on_next(subject.value.upsert(Item("a", 1)))
    subject.on_next(subject.value.upsert(Item("a", 2)))
    assert seen == [
        ("first", None),
        ("second", None),
        ("first", Item("a", 1)),
        ("joined", Item("a", 1)),
        ("second", Item("a", 1)),
        ("second", Item("a", 2)),
        ("joined", Item("a", 2)),
    ]


def test_a_raising_subscriber_does_not_starve_the_others() -> None:
    subject, keyed, _ = setup()
    seen: list[Item | None] = []

    def boom(value: Item | None) -> None:
        if value is not None:
            raise RuntimeError("subscriber bug")

    keyed.select("a").subscribe(boom)
    keyed.select("a").subscribe(seen.append)
    with pytest.raises(RuntimeError, match="subscriber bug"):
        subject.on_next(subject.value.upsert(Item("a")))
    assert seen == [None, Item("a")]


def test_a_state_pushed_during_emission_is_delivered_in_order() -> None:
    subject, keyed, _ = setup()
    seen: list[Item | None] = []

    def push_more(value: Item | None) -> None:
        if value is not None and value.value == 1:
            subject.on_next(subject.value.upsert(Item("a", 2)))

    keyed.select("a").subscribe(push_more)
    keyed.select("a").subscribe(seen.append)
    subject.on_next(subject.value.upsert(Item("a", 1)))
    assert seen == [None, Item("a", 1), Item("a", 2)]


def test_upstream_error_and_completion_reach_every_subscriber() -> None:
    subject, keyed, _ = setup()
    errors: list[Exception] = []
    keyed.select("a").subscribe(on_error=errors.append)
    keyed.select("b").subscribe(on_error=errors.append)
    failure = ValueError("upstream broke")
    subject.on_error(failure)
    assert errors == [failure, failure]
    assert keyed.subscribed_keys == 0

    subject2, keyed2, _ = setup()
    done: list[str] = []
    keyed2.select("a").subscribe(on_completed=lambda: done.append("a"))
    subject2.on_completed()
    assert done == ["a"]
    assert not keyed2.connected


@attrs.frozen
class Upsert:
    item: Item


def reducer(state: Coll | None, action: object) -> Coll:
    state = empty() if state is None else state
    return state.upsert(action.item) if isinstance(action, Upsert) else state


def test_works_on_a_real_store_including_batches() -> None:
    store = create_store(reducer)
    keyed = KeyedSelector(store.states, lambda s: s)
    seen: list[Item | None] = []
    keyed.select("a").subscribe(seen.append)
    store.dispatch(Upsert(Item("a", 1)))
    # A batch reduces through intermediate collections nobody keeps; the links still know.
    store.dispatch_batch([Upsert(Item(f"x{i}")) for i in range(10)] + [Upsert(Item("a", 2))])
    store.dispatch(Batch(()))
    assert seen == [None, Item("a", 1), Item("a", 2)]
    assert keyed.stats.fallbacks == 0
    assert keyed.stats.keys_checked == 2


KEYS = st.sampled_from(["a", "b", "c", "d"])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), KEYS, st.integers(0, 2)),
        st.tuples(st.just("remove"), KEYS, st.just(0)),
        st.tuples(st.just("unrelated"), KEYS, st.integers(0, 2)),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_emits_exactly_the_distinct_consecutive_values_per_key(
    steps: list[tuple[str, str, int]],
) -> None:
    subject, keyed, _ = setup()
    seen: dict[str, list[Item | None]] = {k: [] for k in "abcd"}
    for key in "abcd":
        keyed.select(key).subscribe(seen[key].append)
    snapshots = [subject.value]
    for op, key, value in steps:
        current = subject.value
        if op == "upsert":
            nxt = current.upsert(Item(key, value))
        elif op == "remove":
            nxt = current.remove(key)
        else:  # the same contents plus one change, rebuilt without any link to `current`
            nxt = empty().upsert_many(current.values()).upsert(Item(key, value))
        subject.on_next(nxt)
        snapshots.append(nxt)
    for key in "abcd":
        expected: list[Item | None] = []
        for snap in snapshots:
            value_now = snap.get(key)
            if not expected or expected[-1] != value_now:
                expected.append(value_now)
        assert seen[key] == expected


def test_subscribers_on_another_thread_see_values_in_order() -> None:
    store = create_store(reducer)
    keyed = KeyedSelector(store.states, lambda s: s)
    keys = [f"k{i}" for i in range(20)]
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            for n in range(20_000):
                store.dispatch(Upsert(Item(keys[n % 20], n)))
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    seen: dict[str, list[Item | None]] = {}
    thread = threading.Thread(target=dispatcher)
    thread.start()
    try:
        # Subscribe (and churn) while the other thread dispatches.
        for round_ in range(200):
            key = keys[round_ % 20]
            keyed.select(key).subscribe(lambda _: None).dispose()
            if key not in seen:
                seen[key] = []
                keyed.select(key).subscribe(seen[key].append)
    finally:
        thread.join(timeout=60)
    assert not errors
    for key, values in seen.items():
        numbers = [-1 if v is None else v.value for v in values]
        assert numbers == sorted(set(numbers)), key  # in order, no repeats
        assert values[-1] == store.state.get(key)  # and nothing missed at the end
