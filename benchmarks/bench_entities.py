"""B2: update one entity in a keyed collection; B3: keyed subscribers, one change per action.

B2 compares :class:`EntityCollection.upsert` with the naive immutable update (copy the dict, set
one key) at 100, 10,000 and 1,000,000 entities; a raw ``immutables.Map.set`` is the floor of the
persistent-map approach. Target: EntityCollection at 1M no more than 2x its cost at 100. Keys are
either spread over the whole collection (each update walks a trie path that is cold in the CPU
cache at 1M: the floor itself grows ~10x from 100 to 1M, though the work is O(log n)) or a hot
set of 100 (the open anomalies of a live dashboard amid a long history).

B3 dispatches one ``AnomalyUpserted`` per action (a different anomaly each time) to a store whose
state holds as many anomalies as there are subscribers, each subscriber watching one anomaly:

- bare Python (baseline): a plain reducer function and a list of listeners, each listener
  comparing its own key (the cost every "subscribe to the store" design pays);
- bare Python, keyed: the action names the key, so only that key's listeners are called
  (the floor for per-key delivery, with no store at all);
- python-redux: its idiom, one ``store.autorun(selector)(callback)`` per watched key;
- reactive-aiops ``Store.select`` per key (what ``KeyedSelector`` replaces);
- reactive-aiops ``KeyedSelector`` on ``store.states``.

Every state holds its entities in an ``immutables.Map`` so B3 measures notification, not copying.
Target: KeyedSelector with 10,000 subscribers no more than 2x with 100.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import attrs
import immutables

from benchmarks._harness import Row, time_per_op
from reactive_aiops.aiops import (
    Anomaly,
    AnomalyUpserted,
    Severity,
    create_aiops_store,
    keyed_anomalies,
    select_anomaly,
)
from reactive_aiops.aiops.actions import AnomaliesLoaded
from reactive_aiops.core.entities import EntityCollection

T0 = 1_700_000_000.0


@attrs.frozen
class Item:
    """A small versioned entity for B2 (B3 uses the real :class:`Anomaly`)."""

    id: int
    version: int = 0


# -- B2 -----------------------------------------------------------------------------------------


def _timed(op: Callable[[int], None], *, ops: int, repeats: int) -> tuple[float, ...]:
    # Millions of live entities would make every per-repeat gc.collect() in the harness take
    # seconds; freezing moves them out of the collector's sight (they are still refcounted).
    gc.freeze()
    try:
        return time_per_op(op, ops=ops, repeats=repeats)
    finally:
        gc.unfreeze()


def _b2_rows(n: int, quick: bool) -> list[Row]:
    group = f"B2 update 1 entity, n={n:,}"
    big = n >= 1_000_000
    items = {i: Item(i) for i in range(n)}
    # Replacements prepared up front so every variant pays only for the update itself.
    # Random keys: every update lands on a different path of the trie (cold in the CPU cache
    # at 1M). Hot keys: 100 entities updated over and over, like the open anomalies of a live
    # dashboard among a long history.
    spread = [Item((i * 7919) % n, version=i + 1) for i in range(20_000)]
    hot = [Item((i % 100) * (n // 100), version=i + 1) for i in range(20_000)]
    repeats = 3 if quick else 7

    plain: dict[int, Item] = dict(items)

    def dict_copy(ops: int) -> None:
        d = plain
        for item in spread[:ops]:
            d = dict(d)
            d[item.id] = item

    base = immutables.Map(items)

    def map_set(ops: int) -> None:
        m = base
        for item in spread[:ops]:
            m = m.set(item.id, item)

    empty: EntityCollection[int, Item] = EntityCollection.empty(key=_item_id, versioned=True)
    collection = empty.upsert_many(items.values())
    del items

    def upserts(updates: list[Item]) -> Callable[[int], None]:
        def op(ops: int) -> None:
            c = collection
            for item in updates[:ops]:
                c = c.upsert(item)

        return op

    copy_ops = 3 if big else (200 if n >= 10_000 else 5_000)
    fast_ops = 5_000 if quick else 20_000
    return [
        Row(group, "dict copy + set", "us/op", _timed(dict_copy, ops=copy_ops, repeats=repeats),
            note=f"{copy_ops} ops, random keys"),
        Row(group, "immutables.Map.set (floor)", "us/op",
            _timed(map_set, ops=fast_ops, repeats=repeats), note="random keys"),
        Row(group, "EntityCollection.upsert", "us/op",
            _timed(upserts(spread), ops=fast_ops, repeats=repeats), note="versioned, random keys"),
        Row(group, "EntityCollection.upsert (hot keys)", "us/op",
            _timed(upserts(hot), ops=fast_ops, repeats=repeats), note="versioned, 100 hot keys"),
    ]  # fmt: skip


def _item_id(item: Item) -> int:
    return item.id


# -- B3 -----------------------------------------------------------------------------------------


def _anomaly(i: int, version: int = 0) -> Anomaly:
    return Anomaly(
        id=f"a{i}",
        detector_id="d1",
        metric="latency",
        severity=Severity.HIGH,
        score=0.9,
        value=float(version),
        started_at=T0 + i,
        version=version,
    )


def _b3_bare(n: int, updates: Iterator[Anomaly]) -> tuple[Callable[[int], None], Callable[[], int]]:
    state: dict[str, Any] = {"anomalies": immutables.Map({f"a{i}": _anomaly(i) for i in range(n)})}
    received = [0]

    def reducer(s: dict[str, Any], act: AnomalyUpserted) -> dict[str, Any]:
        return {**s, "anomalies": s["anomalies"].set(act.anomaly.id, act.anomaly)}

    listeners: list[Callable[[dict[str, Any]], None]] = []
    for i in range(n):
        key, last = f"a{i}", [state["anomalies"][f"a{i}"]]

        def listener(s: dict[str, Any], key: str = key, last: list[Any] = last) -> None:
            value = s["anomalies"].get(key)
            if value is not last[0]:
                last[0] = value
                received[0] += 1

        listeners.append(listener)

    def run(ops: int) -> None:
        nonlocal state
        for anomaly in islice(updates, ops):
            state = reducer(state, AnomalyUpserted(anomaly))
            for listener in listeners:
                listener(state)

    return run, lambda: received[0]


def _b3_bare_keyed(
    n: int, updates: Iterator[Anomaly]
) -> tuple[Callable[[int], None], Callable[[], int]]:
    state = immutables.Map({f"a{i}": _anomaly(i) for i in range(n)})
    received = [0]
    by_key: dict[str, list[Callable[[Anomaly | None], None]]] = {}

    def on_value(_: Anomaly | None) -> None:
        received[0] += 1

    for i in range(n):
        by_key.setdefault(f"a{i}", []).append(on_value)

    def run(ops: int) -> None:
        nonlocal state
        for anomaly in islice(updates, ops):
            act = AnomalyUpserted(anomaly)
            state = state.set(act.anomaly.id, act.anomaly)
            for listener in by_key.get(act.anomaly.id, ()):
                listener(state.get(act.anomaly.id))

    return run, lambda: received[0]


def _b3_redux(
    n: int, updates: Iterator[Anomaly]
) -> tuple[Callable[[int], None], Callable[[], int]]:
    from immutable import Immutable
    from redux import BaseAction, InitAction, Store
    from redux.basic_types import StoreOptions

    class PyReduxState(Immutable):
        anomalies: immutables.Map[str, Anomaly]

    class Upserted(BaseAction):
        anomaly: Anomaly

    initial = PyReduxState(anomalies=immutables.Map({f"a{i}": _anomaly(i) for i in range(n)}))

    def reducer(state: PyReduxState | None, act: BaseAction) -> PyReduxState:
        if state is None or isinstance(act, InitAction):
            return initial
        if isinstance(act, Upserted):
            return PyReduxState(anomalies=state.anomalies.set(act.anomaly.id, act.anomaly))
        return state

    store: Any = Store(reducer, options=StoreOptions(auto_init=True, side_effect_threads=1))
    received = [0]
    autoruns = []
    for i in range(n):
        key = f"a{i}"

        def on_value(_: Anomaly | None) -> None:
            received[0] += 1

        autoruns.append(store.autorun(lambda s, key=key: s.anomalies.get(key))(on_value))

    def run(ops: int) -> None:
        for anomaly in islice(updates, ops):
            store.dispatch(Upserted(anomaly=anomaly))

    def count() -> int:
        return received[0] - n  # autoruns run once at creation

    run.cleanup = store.clean_up  # type: ignore[attr-defined]
    return run, count


def _loaded_store(n: int) -> Any:
    store = create_aiops_store()
    store.dispatch(AnomaliesLoaded(tuple(_anomaly(i) for i in range(n))))
    return store


def _b3_store_select(
    n: int, updates: Iterator[Anomaly]
) -> tuple[Callable[[int], None], Callable[[], int]]:
    store = _loaded_store(n)
    received = [0]

    def on_value(_: Anomaly | None) -> None:
        received[0] += 1

    for i in range(n):
        store.select(select_anomaly(f"a{i}")).subscribe(on_value)

    def run(ops: int) -> None:
        for anomaly in islice(updates, ops):
            store.dispatch(AnomalyUpserted(anomaly))

    return run, lambda: received[0] - n


def _b3_keyed(
    n: int, updates: Iterator[Anomaly]
) -> tuple[Callable[[int], None], Callable[[], int]]:
    store = _loaded_store(n)
    keyed = keyed_anomalies(store.states)
    received = [0]

    def on_value(_: Anomaly | None) -> None:
        received[0] += 1

    for i in range(n):
        keyed.select(f"a{i}").subscribe(on_value)

    def run(ops: int) -> None:
        for anomaly in islice(updates, ops):
            store.dispatch(AnomalyUpserted(anomaly))

    return run, lambda: received[0] - n


def _b3_rows(n: int, quick: bool) -> tuple[list[Row], float]:
    group = f"B3 {n:,} keyed subscribers, 1 change/action"
    repeats = 3 if quick else 7
    many = n >= 10_000
    slow = (5 if quick else 20) if many else (300 if quick else 1_000)
    fast = 2_000 if quick else 5_000
    variants: list[tuple[str, Any, int]] = [
        ("bare Python: reducer + list of listeners", _b3_bare, 20 if many else 1_000),
        ("bare Python: dict key -> listeners (floor)", _b3_bare_keyed, fast),
        ("python-redux: 1 autorun per key", _b3_redux, slow),
        ("reactive-aiops: Store.select per key", _b3_store_select, slow),
        ("reactive-aiops: KeyedSelector", _b3_keyed, fast),
    ]
    rows: list[Row] = []
    keyed_median = float("nan")
    for variant, build, ops in variants:
        # Every action changes the next key, with a growing version so none is a no-op; the
        # feed carries on across repeats so a repeat never replays values already held.
        feed = (_anomaly((i * 7919) % n, version=1 + i) for i in range(ops * (repeats + 1)))
        run, count = build(n, feed)
        samples = _timed(run, ops=ops, repeats=repeats)
        delivered = count()
        cleanup = getattr(run, "cleanup", None)
        if cleanup is not None:
            cleanup()
        expected = ops * (repeats + 1)  # warmup included
        if delivered != expected:
            raise AssertionError(f"{variant}: delivered {delivered}, expected {expected}")
        row = Row(group, variant, "us/action", samples, note=f"{ops} actions")
        if variant.endswith("KeyedSelector"):
            keyed_median = row.median
        rows.append(row)
    return rows, keyed_median


def run(quick: bool) -> list[Row]:
    """B2 at 100 / 10,000 / 1,000,000 entities, then B3 at 100 and 10,000 subscribers."""
    rows: list[Row] = []
    for n in (100, 10_000, 1_000_000):
        rows.extend(_b2_rows(n, quick))
    for variant in ("EntityCollection.upsert", "EntityCollection.upsert (hot keys)"):
        at = [i for i, r in enumerate(rows) if r.variant == variant]
        first, last = rows[at[0]], rows[at[-1]]
        rows[at[-1]] = attrs.evolve(
            last, note=f"{last.note}; {last.median / first.median:.2f}x its n=100 cost"
        )
    small, keyed_small = _b3_rows(100, quick)
    large, keyed_large = _b3_rows(10_000, quick)
    large[-1] = attrs.evolve(
        large[-1],
        note=f"{large[-1].note}; {keyed_large / keyed_small:.2f}x its 100-subscriber cost",
    )
    return rows + small + large
