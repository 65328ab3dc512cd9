"""What the dashboard shows, as pure data computed from the store's state (no Textual here).

Each panel has a small frozen view record and a memoized selector producing it from the root
state, so a widget re-renders only when its own record changes and the rendering rules are tested
without a terminal. The root state is duck-typed: the domain slices (``detectors``,
``anomalies``, ``health``) are required; ``connection`` (:class:`ConnectionState`) and
``optimistic`` (:class:`OptimisticJournal`) are read when the live store has them.

Optimistic commands: a pending acknowledge/resolve marks its anomaly's row ``pending``; a
recently reverted one marks it with the revert reason until a newer command for the same
anomaly is made. An anomaly whose resolve is pending stays listed (marked) until the server
confirms, so the operator sees the command in flight rather than a row that just vanished.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from reactive_aiops.aiops.actions import (
    AcknowledgeAnomaly,
    PauseDetector,
    ResolveAnomaly,
    ResumeDetector,
)
from reactive_aiops.aiops.models import (
    Anomaly,
    AnomalyState,
    Detector,
    DetectorStatus,
    HealthStatus,
    Severity,
    SystemHealth,
)
from reactive_aiops.core.connection import ConnectionState, Status
from reactive_aiops.core.optimistic import EMPTY_JOURNAL, Optimistic, OptimisticJournal
from reactive_aiops.core.selectors import Selector, create_selector

__all__ = [
    "AnomalyRow",
    "ConnectionView",
    "DetectorBadge",
    "HealthView",
    "command_label",
    "connection_view",
    "new_critical_ids",
    "select_anomaly_rows",
    "select_connection",
    "select_connection_view",
    "select_detector_badges",
    "select_health_view",
    "select_journal",
]

_COMMAND_LABELS: dict[type, str] = {
    AcknowledgeAnomaly: "acknowledge",
    ResolveAnomaly: "resolve",
    PauseDetector: "pause",
    ResumeDetector: "resume",
}


def command_label(command: object) -> str:
    """A short verb for a command (``acknowledge``, ``resolve``, ...), else its class name."""
    inner = command.action if isinstance(command, Optimistic) else command
    return _COMMAND_LABELS.get(type(inner), type(inner).__name__)


def _target(command: object) -> tuple[str, str] | None:
    """``("anomaly", id)`` or ``("detector", id)`` for a command, else None."""
    inner = command.action if isinstance(command, Optimistic) else command
    anomaly_id = getattr(inner, "anomaly_id", None)
    if isinstance(anomaly_id, str):
        return ("anomaly", anomaly_id)
    detector_id = getattr(inner, "detector_id", None)
    if isinstance(detector_id, str):
        return ("detector", detector_id)
    return None


# -- slices read defensively ---------------------------------------------------------------------


def select_connection(state: Any) -> ConnectionState | None:
    """The ``connection`` slice, or None when the store has no connection (offline store)."""
    found = getattr(state, "connection", None)
    return found if isinstance(found, ConnectionState) else None


def select_journal(state: Any) -> OptimisticJournal:
    """The optimistic journal, or the empty one when the store keeps none."""
    found = getattr(state, "optimistic", None)
    return found if isinstance(found, OptimisticJournal) else EMPTY_JOURNAL


def _select_detectors(state: Any) -> Any:
    return state.detectors


def _select_anomalies(state: Any) -> Any:
    return state.anomalies


def _select_health(state: Any) -> SystemHealth | None:
    health: SystemHealth | None = state.health
    return health


# -- connection ----------------------------------------------------------------------------------


@attrs.frozen
class ConnectionView:
    """The connection panel: ``status`` word, a one-line ``detail`` and the link numbers.

    ``retry_at`` is the absolute time of the next attempt (the widget counts down to it on its
    own timer, so the store need not change every second).
    """

    status: str
    detail: str = ""
    latency_ms: float | None = None
    retry_at: float | None = None
    attempt: int = 0
    reconnects: int = 0
    messages_per_second: float = 0.0


def connection_view(connection: ConnectionState | None) -> ConnectionView:
    """The connection panel's record for a slice (``offline`` when there is none)."""
    if connection is None:
        return ConnectionView(status="offline", detail="no connection in this store")
    health = connection.health
    latency = None if health.latency is None else health.latency * 1000.0
    detail = ""
    if connection.status is Status.FAILED:
        detail = f"failed: {connection.reason or 'unknown reason'}"
        if connection.code:
            detail += f" (code {connection.code})"
    elif connection.status is Status.RECONNECTING:
        detail = f"lost: {connection.reason or 'connection closed'}"
    elif connection.status is Status.CONNECTING and connection.attempt:
        detail = f"attempt {connection.attempt}"
    elif connection.status is Status.DISCONNECTED and connection.reason:
        detail = connection.reason
    return ConnectionView(
        status=connection.status.value,
        detail=detail,
        latency_ms=latency,
        retry_at=connection.next_retry_at if connection.status is Status.RECONNECTING else None,
        attempt=connection.attempt,
        reconnects=health.reconnects,
        messages_per_second=health.messages_per_second,
    )


#: The connection panel's record, recomputed only when the slice changes.
select_connection_view: Selector[Any, ConnectionView] = create_selector(
    select_connection, connection_view
)


# -- detectors -----------------------------------------------------------------------------------


@attrs.frozen
class DetectorBadge:
    """One detector badge: name, status and the command in flight (or the last revert)."""

    id: str
    name: str
    metric: str
    status: DetectorStatus
    pending: str | None = None
    reverted: str | None = None


def _marks(journal: OptimisticJournal, kind: str) -> tuple[dict[str, str], dict[str, str]]:
    """``(pending, reverted)``: target id -> command label / revert reason, newest wins."""
    pending: dict[str, str] = {}
    for txn in journal.transactions:
        for command in txn.actions:
            target = _target(command)
            if target is not None and target[0] == kind:
                pending[target[1]] = command_label(command)
    reverted: dict[str, str] = {}
    for rev in journal.reverted:  # oldest first, so a newer revert overwrites
        for command in rev.actions:
            target = _target(command)
            if target is not None and target[0] == kind:
                reverted[target[1]] = f"{command_label(command)} reverted: {rev.reason}"
    # A newer command supersedes the memory of an older revert on the same target.
    for target_id in pending:
        reverted.pop(target_id, None)
    return pending, reverted


def _badges(detectors: Any, journal: OptimisticJournal) -> tuple[DetectorBadge, ...]:
    pending, reverted = _marks(journal, "detector")
    ordered: Iterable[Detector] = detectors.ordered()
    return tuple(
        DetectorBadge(
            id=d.id,
            name=d.name,
            metric=d.metric,
            status=d.status,
            pending=pending.get(d.id),
            reverted=reverted.get(d.id),
        )
        for d in ordered
    )


#: Every detector as a badge, ordered by name.
select_detector_badges: Selector[Any, tuple[DetectorBadge, ...]] = create_selector(
    _select_detectors, select_journal, _badges
)


# -- anomalies -----------------------------------------------------------------------------------


@attrs.frozen
class AnomalyRow:
    """One row of the notification centre."""

    id: str
    detector_id: str
    metric: str
    severity: Severity
    state: AnomalyState
    score: float
    value: float
    started_at: float
    acknowledged_by: str | None = None
    #: the command in flight for this anomaly (``acknowledge``/``resolve``), shown as pending
    pending: str | None = None
    #: why the last command on it was undone (``acknowledge reverted: 409 ...``)
    reverted: str | None = None

    @property
    def marker(self) -> str:
        """What the status column says: the command in flight, else the state (followed by the
        last revert's reason, if any: ``open · acknowledge reverted: timeout``)."""
        if self.pending is not None:
            return f"{self.pending} pending"
        if self.reverted is not None:
            return f"{self.state.value} · {self.reverted}"
        return self.state.value


def _row(anomaly: Anomaly, pending: str | None, reverted: str | None) -> AnomalyRow:
    return AnomalyRow(
        id=anomaly.id,
        detector_id=anomaly.detector_id,
        metric=anomaly.metric,
        severity=anomaly.severity,
        state=anomaly.state,
        score=anomaly.score,
        value=anomaly.value,
        started_at=anomaly.started_at,
        acknowledged_by=anomaly.acknowledged_by,
        pending=pending,
        reverted=reverted,
    )


def _rows(anomalies: Any, journal: OptimisticJournal) -> tuple[AnomalyRow, ...]:
    pending, reverted = _marks(journal, "anomaly")
    ordered: Sequence[Anomaly] = anomalies.ordered()
    if not pending and not reverted:
        # The common case: no command in flight, one pass over the cached ordered view.
        return tuple(_row(a, None, None) for a in ordered if a.is_unresolved)
    shown = [a for a in ordered if a.is_unresolved or a.id in pending]
    return tuple(_row(a, pending.get(a.id), reverted.get(a.id)) for a in shown)


#: Unresolved anomalies (plus those with a command in flight), most severe first, then oldest.
select_anomaly_rows: Selector[Any, tuple[AnomalyRow, ...]] = create_selector(
    _select_anomalies, select_journal, _rows
)


# -- health --------------------------------------------------------------------------------------


@attrs.frozen
class HealthView:
    """The health panel's figures (None before the server's first health update)."""

    status: HealthStatus | None
    events_per_second: float = 0.0
    open_anomalies: int = 0
    detectors_active: int = 0
    detectors_error: int = 0
    updated_at: float = 0.0


def _health_view(health: SystemHealth | None) -> HealthView:
    if health is None:
        return HealthView(status=None)
    return HealthView(
        status=health.status,
        events_per_second=health.events_per_second,
        open_anomalies=health.open_anomalies,
        detectors_active=health.detectors_active,
        detectors_error=health.detectors_error,
        updated_at=health.updated_at,
    )


#: The health panel's record.
select_health_view: Selector[Any, HealthView] = create_selector(_select_health, _health_view)


def new_critical_ids(
    seen: set[str], rows: Iterable[AnomalyRow], *, severity: Severity = Severity.CRITICAL
) -> list[str]:
    """Ids of rows at ``severity`` not in ``seen`` (which is updated): one toast each."""
    fresh = [r.id for r in rows if r.severity is severity and r.id not in seen]
    seen.update(fresh)
    return fresh
