"""The four middleware compose in any order the user gives and reach the same state."""

from __future__ import annotations

import itertools
from typing import Any

import cattrs
import pytest
from core_middleware_helpers import Append, Put, reducer

from reactive_aiops.core import Middleware, create_store
from reactive_aiops.core.actionlog import MemoryLog, record_actions, replay
from reactive_aiops.core.dedupe import dedupe, dedupe_stats
from reactive_aiops.core.events import EventMeta, EventRoute, EventTable, ServerEvent, map_events
from reactive_aiops.core.optimistic import (
    Optimistic,
    TransactionCommitted,
    TransactionReverted,
    expire_transactions,
    optimistic,
)


def strict_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


STRICT = cattrs.Converter()
STRICT.register_structure_hook(str, strict_str)
TABLE = EventTable(
    [EventRoute("c*", "append", str, lambda text, m: Append("k", text, m))], converter=STRICT
)
LIVE = optimistic(dedupe_stats(reducer), ttl=5.0)
NAMES = ("dedupe", "map_events", "expire", "log")


def raw(
    offset: int,
    text: Any,
    *,
    channel: str = "c1",
    event_id: str | None = None,
    command_id: str | None = None,
    event_type: str = "append",
) -> ServerEvent:
    meta = EventMeta(
        channel,
        event_type,
        offset=offset,
        epoch="E",
        event_id=event_id or f"{channel}-{offset}",
        command_id=command_id,
    )
    return ServerEvent(meta, text)


def session(order: tuple[str, ...]) -> tuple[Any, MemoryLog]:
    clock = [0.0]
    log = MemoryLog()
    make: dict[str, Middleware] = {
        "dedupe": dedupe(window=8),
        "map_events": map_events(TABLE),
        "expire": expire_transactions(now=lambda: clock[0]),
        "log": record_actions(log, now=lambda: clock[0]),
    }
    store = create_store(LIVE, middleware=[make[name] for name in order])
    script: list[Any] = [
        raw(1, "a"),
        Optimistic(Put("p", "guess"), "t1"),
        raw(2, "b"),
        raw(1, "a"),  # re-delivered
        Optimistic(Append("k", "!"), "t2"),
        raw(3, "c", command_id="t2"),  # the echo confirms t2
        raw(9, "d", channel="c2", event_id="c1-2"),  # the same event on a second channel
        raw(4, 5),  # malformed
        raw(5, "e", event_type="other"),  # unknown
        Optimistic(Append("k", "?"), "t3"),
        TransactionCommitted("t2"),  # absorbed: the echo already confirmed it
        5.0,  # time passes: t1 and t3 time out
        raw(6, "f"),
        Optimistic(Put("q", "x"), "t4"),
        TransactionReverted("t4", "rejected"),
        Optimistic(Put("r", "y"), "t5"),
        TransactionCommitted("t5", Put("r", "server")),
        raw(7, "g", command_id="t5"),  # its echo after the commit: absorbed
    ]
    for step in script:
        if isinstance(step, float):
            clock[0] += step
        else:
            store.dispatch(step)
    return store.state, log


@pytest.mark.parametrize("order", list(itertools.permutations(NAMES)), ids="-".join)
def test_any_order_gives_the_same_state_and_a_faithful_log(order: tuple[str, ...]) -> None:
    state, log = session(order)
    reference, _ = session(NAMES)
    assert state == reference
    assert dict(state.data) == {"k": "abcf", "r": "server"}
    assert (state.dedupe.duplicates, state.dedupe.unknown, state.dedupe.malformed) == (2, 1, 1)
    journal = state.optimistic
    assert [(r.txn_id, r.reason) for r in journal.reverted] == [
        ("t1", "timeout"),
        ("t3", "timeout"),
        ("t4", "rejected"),
    ]
    assert journal.transactions == ()
    assert journal.echoes_absorbed == 1
    # Whatever the log saw, replaying it (through the decoding middleware when it holds raw
    # events, as the CLI does) rebuilds the same state.
    before_decoding = order.index("log") < order.index("map_events")
    before_dedupe = order.index("log") < order.index("dedupe")
    middleware = []
    if before_dedupe:
        middleware.append(dedupe(window=8))
    if before_decoding:
        middleware.append(map_events(TABLE))
    assert replay(log, LIVE, middleware=middleware) == state
