"""M1-M3: the real-time middleware's cost, next to the bare store.

* M1: per-dispatch overhead of a server event (an action carrying an ``EventMeta`` with a fresh
  offset and id) through each middleware alone and all of them together. The baseline is the
  bare store with the same reducer.
* M2: cost of one server event while 0, 1, 10 or 100 optimistic transactions are pending, and
  with 1,000 vs 100,000 events of history before it: it grows with the pending count (each event
  re-applies the pending actions on the new confirmed state), not with the history.
* M3: cost of a revert with 1, 10 or 100 pending (measured as begin + revert of one more
  transaction, so the pending count stays put), again with short and long history.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import immutables

from benchmarks._harness import Row, time_per_op
from reactive_aiops.core import Middleware, action, create_store
from reactive_aiops.core.actionlog import JsonlLog, MemoryLog, record_actions
from reactive_aiops.core.dedupe import DedupeStats, dedupe, dedupe_stats
from reactive_aiops.core.events import EventMeta, EventRoute, EventTable, ServerEvent, map_events
from reactive_aiops.core.optimistic import (
    EMPTY_JOURNAL,
    Optimistic,
    OptimisticJournal,
    TransactionReverted,
    expire_transactions,
    optimistic,
)

KEYS = 1_000
_EMPTY: immutables.Map[int, int] = immutables.Map()
_NO_DROPS = DedupeStats()


@action(name="bench.mw.Upsert")
class Upsert:
    key: int
    value: int
    meta: EventMeta | None = None


@attrs.frozen
class Payload:
    key: int
    value: int


@attrs.frozen
class Root:
    data: immutables.Map[int, int] = _EMPTY
    optimistic: OptimisticJournal = EMPTY_JOURNAL
    dedupe: DedupeStats = _NO_DROPS


def domain(state: Root | None, act: object) -> Root:
    if state is None:
        return Root()
    if type(act) is Upsert:
        return attrs.evolve(state, data=state.data.set(act.key, act.value))
    return state


TABLE = EventTable([EventRoute("bench", "upsert", Payload, lambda p, m: Upsert(p.key, p.value, m))])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def events(raw: bool = False) -> Callable[[], object]:
    """A factory of fresh server events (new offset and id each time)."""
    counter = itertools.count()

    def make() -> object:
        i = next(counter)
        meta = EventMeta("bench", "upsert", offset=i, epoch="E", event_id=f"e{i}")
        if raw:
            return ServerEvent(meta, {"key": i % KEYS, "value": i})
        return Upsert(i % KEYS, i, meta)

    return make


def dispatcher(
    reducer: Any, middleware: list[Middleware], raw: bool = False
) -> Callable[[int], None]:
    store = create_store(reducer, middleware=middleware)
    make = events(raw)

    def op(n: int) -> None:
        dispatch = store.dispatch
        for _ in range(n):
            dispatch(make())

    return op


def overhead_rows(ops: int, repeats: int, tmp: Path) -> list[Row]:
    group = "M1 server event through middleware"
    clock = Clock()
    jsonl = JsonlLog(tmp / "bench.jsonl", truncate=True)
    variants: list[tuple[str, Callable[[int], None], str]] = [
        ("bare store", dispatcher(domain, []), ""),
        ("dedupe + stats", dispatcher(dedupe_stats(domain), [dedupe()]), ""),
        (
            "map_events (decode)",
            dispatcher(domain, [map_events(TABLE)], raw=True),
            "ServerEvent in",
        ),
        (
            "optimistic + expiry",
            dispatcher(optimistic(domain), [expire_transactions(now=clock)]),
            "nothing pending",
        ),
        ("action log, memory", dispatcher(domain, [record_actions(MemoryLog())]), ""),
        ("action log, JSONL", dispatcher(domain, [record_actions(jsonl)]), "flush per line"),
        (
            "all, memory log",
            dispatcher(
                optimistic(dedupe_stats(domain)),
                [
                    dedupe(),
                    map_events(TABLE),
                    expire_transactions(now=clock),
                    record_actions(MemoryLog()),
                ],
                raw=True,
            ),
            "ServerEvent in",
        ),
    ]
    # The first loop timed in a fresh process runs ~50% slow (allocator arenas, caches); warm up
    # so the baseline is not penalised for going first.
    dispatcher(domain, [])(ops * 5)
    rows = [
        Row(group, name, "us/dispatch", time_per_op(op, ops=ops, repeats=repeats), note=note)
        for name, op, note in variants
    ]
    jsonl.close()
    return rows


def pending_store(pending: int, history: int) -> Any:
    store = create_store(optimistic(domain, max_pending=10_000))
    make = events()
    for _ in range(history):
        store.dispatch(make())
    for t in range(pending):
        store.dispatch(Optimistic(Upsert(t % KEYS, -t), f"t{t}"))
    return store, make


def server_event_rows(ops: int, repeats: int, long_history: int) -> list[Row]:
    group = "M2 server event vs pending"
    rows = []
    for pending, history in [
        (0, 1_000),
        (1, 1_000),
        (1, long_history),
        (10, 1_000),
        (100, 1_000),
        (100, long_history),
    ]:
        store, make = pending_store(pending, history)

        def op(n: int, store: Any = store, make: Callable[[], object] = make) -> None:
            dispatch = store.dispatch
            for _ in range(n):
                dispatch(make())

        assert len(store.state.optimistic.transactions) == pending
        samples = time_per_op(op, ops=max(ops // max(pending, 1), 200), repeats=repeats)
        rows.append(Row(group, f"pending={pending} history={history:,}", "us/event", samples))
    return rows


def revert_rows(ops: int, repeats: int, long_history: int) -> list[Row]:
    group = "M3 begin + revert vs pending"
    rows = []
    for pending, history in [
        (1, 1_000),
        (1, long_history),
        (10, 1_000),
        (100, 1_000),
        (100, long_history),
    ]:
        store, _ = pending_store(pending - 1, history)
        ids = itertools.count(10**6)

        def op(n: int, store: Any = store, ids: Any = ids) -> None:
            dispatch = store.dispatch
            for _ in range(n):
                txn = f"x{next(ids)}"
                dispatch(Optimistic(Upsert(1, 1), txn))
                dispatch(TransactionReverted(txn, "rejected"))

        samples = time_per_op(op, ops=max(ops // max(pending, 1), 200), repeats=repeats)
        assert len(store.state.optimistic.transactions) == pending - 1
        rows.append(Row(group, f"pending={pending} history={history:,}", "us/pair", samples))
    return rows


def run(quick: bool) -> list[Row]:
    ops = 5_000 if quick else 20_000
    repeats = 3 if quick else 7
    long_history = 20_000 if quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        rows = overhead_rows(ops, repeats, Path(tmp))
    rows += server_event_rows(ops, repeats, long_history)
    rows += revert_rows(ops, repeats, long_history)
    return rows
