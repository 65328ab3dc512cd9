"""The dashboard's pure view records: rows, marks from the optimistic journal, connection text."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from dashboard_helpers import anomaly, detector

from reactive_aiops.aiops import (
    AcknowledgeAnomaly,
    AnomalyUpserted,
    DetectorsLoaded,
    DetectorStatus,
    PauseDetector,
    ResolveAnomaly,
    Severity,
)
from reactive_aiops.aiops.models import AnomalyState
from reactive_aiops.aiops.state import make_root_reducer
from reactive_aiops.core import Store, create_store
from reactive_aiops.core.connection import (
    Connected,
    ConnectionFailed,
    ConnectionLost,
    ConnectionState,
    LatencyMeasured,
    connection_reducer,
)
from reactive_aiops.core.optimistic import (
    Optimistic,
    TransactionCommitted,
    TransactionReverted,
    optimistic,
)
from reactive_aiops.ui.dashboard.view import (
    AnomalyRow,
    command_label,
    connection_view,
    new_critical_ids,
    select_anomaly_rows,
    select_detector_badges,
    select_health_view,
)
from reactive_aiops.ui.dashboard.widgets import format_connection


def _store() -> Store[Any]:
    reducer = optimistic(make_root_reducer(connection=connection_reducer), ttl=15.0)
    return create_store(reducer)


def test_rows_are_unresolved_most_severe_then_oldest() -> None:
    store = _store()
    store.dispatch(AnomalyUpserted(anomaly("a-low", Severity.LOW, started=1.0)))
    store.dispatch(AnomalyUpserted(anomaly("a-crit-new", Severity.CRITICAL, started=5.0)))
    store.dispatch(AnomalyUpserted(anomaly("a-crit-old", Severity.CRITICAL, started=2.0)))
    store.dispatch(
        AnomalyUpserted(anomaly("a-gone", Severity.HIGH, state=AnomalyState.RESOLVED, version=2))
    )
    rows = select_anomaly_rows(store.state)
    assert [r.id for r in rows] == ["a-crit-old", "a-crit-new", "a-low"]
    assert all(r.marker == "open" for r in rows)


def test_rows_selector_is_memoized_on_unrelated_changes() -> None:
    store = _store()
    store.dispatch(AnomalyUpserted(anomaly("a1", Severity.HIGH)))
    first = select_anomaly_rows(store.state)
    store.dispatch(DetectorsLoaded([detector("d1")]))
    assert select_anomaly_rows(store.state) is first


def test_pending_acknowledge_is_marked_then_confirmed() -> None:
    store = _store()
    store.dispatch(AnomalyUpserted(anomaly("a1", Severity.HIGH, version=1)))
    store.dispatch(Optimistic(AcknowledgeAnomaly("a1", command_id="c1", by="ann"), txn_id="c1"))
    (row,) = select_anomaly_rows(store.state)
    assert row.pending == "acknowledge"
    assert row.marker == "acknowledge pending"
    assert row.state is AnomalyState.ACKNOWLEDGED  # applied optimistically
    confirmed = anomaly("a1", Severity.HIGH, version=2, state=AnomalyState.ACKNOWLEDGED)
    store.dispatch(TransactionCommitted("c1", result=AnomalyUpserted(confirmed)))
    (row,) = select_anomaly_rows(store.state)
    assert (row.pending, row.reverted, row.marker) == (None, None, "acknowledged")


def test_pending_resolve_stays_listed_until_confirmed() -> None:
    store = _store()
    store.dispatch(AnomalyUpserted(anomaly("a1", Severity.HIGH, version=1)))
    store.dispatch(Optimistic(ResolveAnomaly("a1", command_id="c2"), txn_id="c2"))
    (row,) = select_anomaly_rows(store.state)
    assert row.marker == "resolve pending"
    assert row.state is AnomalyState.RESOLVED
    store.dispatch(TransactionCommitted("c2"))
    assert select_anomaly_rows(store.state) == ()


def test_reverted_command_shows_its_reason_until_a_new_command() -> None:
    store = _store()
    store.dispatch(AnomalyUpserted(anomaly("a1", Severity.HIGH, version=1)))
    store.dispatch(Optimistic(AcknowledgeAnomaly("a1", command_id="c1"), txn_id="c1"))
    store.dispatch(TransactionReverted("c1", reason="409 conflict"))
    (row,) = select_anomaly_rows(store.state)
    assert row.state is AnomalyState.OPEN
    assert row.marker == "open · acknowledge reverted: 409 conflict"
    store.dispatch(Optimistic(AcknowledgeAnomaly("a1", command_id="c3"), txn_id="c3"))
    (row,) = select_anomaly_rows(store.state)
    assert (row.pending, row.reverted) == ("acknowledge", None)


def test_detector_badges_mark_pending_commands() -> None:
    store = _store()
    store.dispatch(DetectorsLoaded([detector("d2", name="b"), detector("d1", name="a")]))
    store.dispatch(Optimistic(PauseDetector("d2", command_id="p1"), txn_id="p1"))
    badges = select_detector_badges(store.state)
    assert [(b.name, b.status, b.pending) for b in badges] == [
        ("a", DetectorStatus.ACTIVE, None),
        ("b", DetectorStatus.PAUSED, "pause"),
    ]


def test_health_view_before_and_after_first_update() -> None:
    store = _store()
    assert select_health_view(store.state).status is None


def test_connection_view_texts() -> None:
    assert connection_view(None).status == "offline"
    state = connection_reducer(None, Connected(at=10.0, client_id="c"))
    state = connection_reducer(state, LatencyMeasured(at=10.0, rtt=0.004))
    view = connection_view(state)
    assert (view.status, view.latency_ms, view.retry_at) == ("connected", pytest.approx(4.0), None)
    assert "latency 4.0 ms" in format_connection(view, now=11.0).plain
    lost = connection_reducer(
        state,
        ConnectionLost(at=12.0, code=3001, reason="shutdown", attempt=1, next_retry_at=14.5),
    )
    view = connection_view(lost)
    line = format_connection(view, now=13.0).plain
    assert "RECONNECTING" in line
    assert "retry in 1.5s" in line
    assert "lost: shutdown" in line
    assert view.reconnects == 1
    failed = connection_reducer(lost, ConnectionFailed(at=15.0, code=3500, reason="bad token"))
    assert "failed: bad token (code 3500)" in format_connection(connection_view(failed), 15).plain


def test_connection_view_of_a_fresh_slice() -> None:
    assert connection_view(ConnectionState()).status == "disconnected"


def test_new_critical_ids_fire_once() -> None:
    rows = (
        attrs.evolve(_row("a1"), severity=Severity.CRITICAL),
        attrs.evolve(_row("a2"), severity=Severity.HIGH),
    )
    seen: set[str] = set()
    assert new_critical_ids(seen, rows) == ["a1"]
    assert new_critical_ids(seen, rows) == []


def test_command_label_unwraps_optimistic() -> None:
    assert command_label(Optimistic(ResolveAnomaly("a"), txn_id="t")) == "resolve"
    assert command_label(object()) == "object"


def _row(anomaly_id: str) -> AnomalyRow:
    store = _store()
    store.dispatch(AnomalyUpserted(anomaly(anomaly_id, Severity.HIGH)))
    return select_anomaly_rows(store.state)[0]
