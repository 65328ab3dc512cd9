"""create_live_store (aiops/live_store.py): every slice reduced, middleware order, optimistic and
dedupe interplay; the deprecated reactive_aiops.app alias."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

from reactive_aiops.aiops import (
    AcknowledgeAnomaly,
    Anomaly,
    AnomalyState,
    AnomalyUpserted,
    Severity,
)
from reactive_aiops.aiops.live_store import create_live_reducer, create_live_store
from reactive_aiops.aiops.state import AppState
from reactive_aiops.core import Dispatch, StoreAPI
from reactive_aiops.core.connection import (
    Connected,
    ConnectionLost,
    DuplicatesDropped,
    ResyncRequired,
    Status,
)
from reactive_aiops.core.dedupe import Deduplicator
from reactive_aiops.core.events import EventMeta, EventTable, ServerEvent
from reactive_aiops.core.optimistic import (
    Optimistic,
    TransactionCommitted,
    TransactionReverted,
)
from reactive_aiops.testing.clock import ManualClock

EMPTY_TABLE = EventTable([])


def _anomaly(version: int = 1, state: AnomalyState = AnomalyState.OPEN) -> Anomaly:
    return Anomaly(
        id="a1",
        detector_id="d1",
        metric="cpu",
        severity=Severity.HIGH,
        score=9.0,
        value=97.0,
        started_at=1.0,
        state=state,
        version=version,
    )


def _event(offset: int, event_id: str = "") -> ServerEvent:
    meta = EventMeta(
        "anomalies", "anomaly.future", event_id=event_id or f"e{offset}", offset=offset, epoch="x"
    )
    return ServerEvent(meta, {"id": "a1"})


def _recorder(seen: list[object]) -> Callable[[StoreAPI[Any]], Callable[[Dispatch], Dispatch]]:
    def middleware(api: StoreAPI[Any]) -> Callable[[Dispatch], Dispatch]:
        def wrap(next_: Dispatch) -> Dispatch:
            def dispatch(act: object) -> Any:
                seen.append(act)
                return next_(act)

            return dispatch

        return wrap

    return middleware


def test_root_state_has_every_slice_and_connection_actions_reduce() -> None:
    store = create_live_store(event_table=EMPTY_TABLE, clock=ManualClock())
    state = store.state
    assert isinstance(state, AppState)
    assert state.connection.status is Status.DISCONNECTED
    assert state.dedupe.duplicates == 0
    assert not state.optimistic.transactions
    store.dispatch(Connected(1.0, "c-1"))
    connected = store.state.connection
    assert connected.status is Status.CONNECTED
    assert connected.client_id == "c-1"
    store.dispatch(ConnectionLost(2.0, 3001, "shutdown", 1, 2.4))
    lost = store.state.connection
    assert lost.status is Status.RECONNECTING
    assert lost.reason == "shutdown"
    store.dispatch(ResyncRequired("anomalies", "not recovered", 3.0))
    assert store.state.connection.resyncs["anomalies"] == 1


def test_optimistic_command_reverts_with_reason_and_commits_server_result() -> None:
    store = create_live_store(event_table=EMPTY_TABLE, clock=ManualClock())
    store.dispatch(AnomalyUpserted(_anomaly()))
    cmd = AcknowledgeAnomaly("a1", command_id="cmd-1", by="alice")
    store.dispatch(Optimistic(cmd, txn_id=cmd.command_id))
    optimistic_state = store.state
    assert optimistic_state.anomalies["a1"].state is AnomalyState.ACKNOWLEDGED
    store.dispatch(TransactionReverted("cmd-1", reason="rejected: 409 anomaly already resolved"))
    reverted_state = store.state
    assert reverted_state.anomalies["a1"].state is AnomalyState.OPEN
    assert store.state.optimistic.revert_reason("cmd-1") == "rejected: 409 anomaly already resolved"

    cmd2 = AcknowledgeAnomaly("a1", command_id="cmd-2", by="alice")
    store.dispatch(Optimistic(cmd2, txn_id="cmd-2"))
    server_copy = _anomaly(version=2, state=AnomalyState.ACKNOWLEDGED)
    store.dispatch(TransactionCommitted("cmd-2", result=AnomalyUpserted(server_copy)))
    assert store.state.anomalies["a1"] == server_copy
    assert not store.state.optimistic.transactions


def test_duplicate_is_dropped_before_decoding() -> None:
    dedup = Deduplicator()
    store = create_live_store(event_table=EMPTY_TABLE, clock=ManualClock(), deduplicator=dedup)
    store.dispatch(_event(1))
    store.dispatch(_event(1))  # same channel + epoch + offset
    store.dispatch(_event(2, event_id="e1"))  # same event id on a new offset
    stats = store.state.dedupe
    # the first got through and was decoded (to UnknownEvent: the table is empty); the
    # re-deliveries never reached the table
    assert stats.unknown == 1
    assert stats.duplicates == 2
    assert dedup.dropped["duplicate_offset"] == 1
    assert dedup.dropped["duplicate_id"] == 1


def test_confirmed_slices_survive_a_revert() -> None:
    # The optimistic journal is outermost: counters changed while a command is pending are part
    # of the confirmed state, so reverting the command keeps them.
    store = create_live_store(event_table=EMPTY_TABLE, clock=ManualClock())
    store.dispatch(AnomalyUpserted(_anomaly()))
    store.dispatch(Optimistic(AcknowledgeAnomaly("a1", command_id="c"), txn_id="c"))
    store.dispatch(_event(1))
    store.dispatch(_event(1))
    store.dispatch(Connected(5.0, "cid"))
    store.dispatch(TransactionReverted("c", reason="timeout"))
    state = store.state
    assert state.anomalies["a1"].state is AnomalyState.OPEN
    assert state.dedupe.duplicates == 1
    assert state.dedupe.unknown == 1
    assert state.connection.status is Status.CONNECTED


def test_command_times_out_on_the_injected_clock() -> None:
    clock = ManualClock(100.0)
    store = create_live_store(event_table=EMPTY_TABLE, clock=clock, command_ttl=2.0)
    store.dispatch(AnomalyUpserted(_anomaly()))
    store.dispatch(Optimistic(AcknowledgeAnomaly("a1", command_id="c"), txn_id="c"))
    clock.advance(1.5)
    store.dispatch(Connected(clock(), "x"))
    assert store.state.optimistic.is_pending("c")
    clock.advance(1.0)
    store.dispatch(Connected(clock(), "x"))
    assert store.state.optimistic.revert_reason("c") == "timeout"
    assert store.state.anomalies["a1"].state is AnomalyState.OPEN


def test_one_duplicate_figure_counts_the_protocol_and_the_store_dedupe() -> None:
    store = create_live_store(event_table=EMPTY_TABLE, clock=ManualClock())
    store.dispatch(DuplicatesDropped("anomalies", 2))  # the client protocol dropped two
    store.dispatch(_event(1))
    store.dispatch(_event(1))  # the store's dedupe drops this one (same offset)
    store.dispatch(_event(2, "e1"))  # ... and this one (same event id)
    state = store.state
    assert state.dedupe.duplicates == 2
    assert state.connection.health.duplicates_dropped_total == 2 + 2


def test_middleware_order_extra_then_log_then_dedupe() -> None:
    outer: list[object] = []
    logged: list[object] = []
    store = create_live_store(
        event_table=EMPTY_TABLE,
        clock=ManualClock(),
        middleware=[_recorder(outer)],
        action_log=_recorder(logged),
    )
    store.dispatch(_event(1))
    store.dispatch(_event(1))
    # both middlewares see the raw events, duplicates included: dedupe runs after them
    assert [type(a).__name__ for a in logged[-2:]] == ["ServerEvent", "ServerEvent"]
    assert outer[-2:] == logged[-2:]
    assert store.state.dedupe.duplicates == 1


def test_replaying_the_log_rebuilds_the_state() -> None:
    logged: list[object] = []
    clock = ManualClock()
    store = create_live_store(
        event_table=EMPTY_TABLE, clock=clock, action_log=_recorder(logged)
    )
    store.dispatch(AnomalyUpserted(_anomaly()))
    store.dispatch(Optimistic(AcknowledgeAnomaly("a1", command_id="c"), txn_id="c"))
    store.dispatch(_event(1))
    store.dispatch(TransactionReverted("c", reason="rejected"))
    replay = create_live_store(event_table=EMPTY_TABLE, clock=ManualClock())
    for act in logged:
        replay.dispatch(act)
    assert replay.state.anomalies["a1"] == store.state.anomalies["a1"]
    assert replay.state.dedupe == store.state.dedupe
    assert replay.state.optimistic.revert_reason("c") == "rejected"


def test_live_reducer_is_pure_and_starts_empty() -> None:
    reducer = create_live_reducer()
    first = reducer(None, object())
    assert isinstance(first, AppState)
    assert reducer(first, object()) is first


def test_bad_settings_raise() -> None:
    with pytest.raises(ValueError, match="positive"):
        create_live_store(event_table=EMPTY_TABLE, command_ttl=0)


def test_default_table_decodes_aiops_events_and_echo_confirms_a_command() -> None:
    store = create_live_store(clock=ManualClock())
    store.dispatch(AnomalyUpserted(_anomaly()))
    store.dispatch(Optimistic(AcknowledgeAnomaly("a1", command_id="cmd-9"), txn_id="cmd-9"))
    payload = {
        "id": "a1", "detector_id": "d1", "metric": "cpu", "severity": "high", "score": 9.0,
        "value": 97.0, "started_at": 1.0, "state": "acknowledged", "version": 2,
        "updated_at": 2.0, "resolved_at": None, "acknowledged_by": "alice",
    }
    meta = EventMeta(
        "anomalies", "anomaly.upserted", event_id="ev-1", offset=1, epoch="e", command_id="cmd-9"
    )
    store.dispatch(ServerEvent(meta, payload))
    state = store.state
    assert not state.optimistic.transactions  # the echo confirmed it
    assert state.optimistic.commits == 1
    assert state.anomalies["a1"].version == 2
    assert state.anomalies["a1"].acknowledged_by == "alice"
    store.dispatch(ServerEvent(meta, payload))  # re-delivered after a reconnect
    assert store.state.dedupe.duplicates == 1
    bad = attrs.evolve(meta, event_id="ev-2", offset=2, command_id=None)
    store.dispatch(ServerEvent(bad, {"id": 3}))
    assert store.state.dedupe.malformed == 1


def test_the_old_app_module_is_a_deprecated_alias_of_live_store() -> None:
    import reactive_aiops.app as old
    from reactive_aiops.aiops import live_store

    for name in ("create_live_store", "create_live_reducer", "DEFAULT_COMMAND_TTL"):
        with pytest.warns(DeprecationWarning, match=f"aiops.live_store.{name}"):
            assert getattr(old, name) is getattr(live_store, name)
    with pytest.raises(AttributeError):
        _ = old.nothing_here
