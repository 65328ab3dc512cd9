"""What the web dashboard shows and decides, as pure data (no NiceGUI here).

The panels' records come from the Textual dashboard's view selectors
(:mod:`reactive_aiops.ui.dashboard.view`); this module adds what the browser needs on top:

* :data:`select_frame` -- one memoized record of every panel, so a tab renders one coalesced
  value per frame (one UI message) instead of one per panel;
* :class:`TabFilter` -- a tab's severity/state filter, parsed from the page's query string;
* :class:`NotificationGate` -- which rows deserve a browser notification, once per anomaly id;
* :class:`RateHistory` / :class:`ScoreHistory` -- the process-wide series behind the charts;
* :class:`CommandAudit` -- who asked for which command and how the server settled it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from reactive_aiops.aiops.models import AnomalyState, Severity
from reactive_aiops.core.optimistic import OptimisticJournal
from reactive_aiops.core.selectors import Selector, create_selector
from reactive_aiops.ui.dashboard.view import (
    AnomalyRow,
    ConnectionView,
    DetectorBadge,
    HealthView,
    select_anomaly_rows,
    select_connection,
    select_connection_view,
    select_detector_badges,
    select_health_view,
)

__all__ = [
    "NOTIFY_SEVERITIES",
    "AuditRecord",
    "CommandAudit",
    "Frame",
    "NotificationGate",
    "RateHistory",
    "ScoreHistory",
    "TabFilter",
    "connection_text",
    "row_cells",
    "select_frame",
]

#: Severities that raise a browser notification.
NOTIFY_SEVERITIES = frozenset({Severity.HIGH, Severity.CRITICAL})


@attrs.frozen
class Frame:
    """Every panel's record at one moment; equal frames are never rendered twice."""

    connection: ConnectionView
    resyncs: int
    detectors: tuple[DetectorBadge, ...]
    anomalies: tuple[AnomalyRow, ...]
    health: HealthView


def _select_resyncs(state: Any) -> int:
    connection = select_connection(state)
    return 0 if connection is None else connection.health.resyncs


_select_link: Selector[Any, tuple[ConnectionView, int]] = create_selector(
    select_connection_view, _select_resyncs, lambda view, resyncs: (view, resyncs)
)


def _frame(
    link: tuple[ConnectionView, int],
    detectors: tuple[DetectorBadge, ...],
    anomalies: tuple[AnomalyRow, ...],
    health: HealthView,
) -> Frame:
    return Frame(link[0], link[1], detectors, anomalies, health)


#: The whole dashboard's record, recomputed only when one of its parts changes.
select_frame: Selector[Any, Frame] = create_selector(
    _select_link, select_detector_badges, select_anomaly_rows, select_health_view, _frame
)


def connection_text(view: ConnectionView, resyncs: int, now: float) -> str:
    """The connection line: state, latency, messages/s, reconnects, resyncs, then the detail."""
    parts = [view.status.upper()]
    if view.retry_at is not None:
        parts.append(f"retry in {max(0.0, view.retry_at - now):.1f}s")
    parts.append("latency " + ("-" if view.latency_ms is None else f"{view.latency_ms:.1f} ms"))
    parts.append(f"{view.messages_per_second:.0f} msg/s")
    parts.append(f"reconnects {view.reconnects}")
    parts.append(f"resyncs {resyncs}")
    if view.detail:
        parts.append(view.detail)
    return " · ".join(parts)


def row_cells(row: AnomalyRow) -> dict[str, Any]:
    """One table row: plain strings and numbers only (the table renders them as text)."""
    return {
        "id": row.id,
        "severity": row.severity.value,
        "metric": row.metric,
        "detector": row.detector_id,
        "score": round(row.score, 2),
        "value": round(row.value, 3),
        "status": row.marker,
        "by": row.acknowledged_by or "",
    }


# -- per-tab filter --------------------------------------------------------------------------------


def _parse_set(raw: str | None, kind: type[Severity] | type[AnomalyState]) -> frozenset[Any]:
    if not raw:
        return frozenset()
    values = [part.strip() for part in raw.split(",") if part.strip()]
    try:
        return frozenset(kind(value) for value in values)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValueError(f"unknown {kind.__name__.lower()} in {raw!r} (one of {allowed})") from None


@attrs.frozen
class TabFilter:
    """A tab's filter: empty sets mean "all". ``states`` may include ``resolved`` only for rows
    still shown (a resolve in flight)."""

    severities: frozenset[Severity] = frozenset()
    states: frozenset[AnomalyState] = frozenset()

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> TabFilter:
        """From ``?severity=high,critical&state=open``; raises ``ValueError`` for unknown values."""
        return cls(
            _parse_set(query.get("severity"), Severity),
            _parse_set(query.get("state"), AnomalyState),
        )

    def __call__(self, row: AnomalyRow) -> bool:
        """Whether ``row`` passes."""
        if self.severities and row.severity not in self.severities:
            return False
        return not self.states or row.state in self.states

    def apply(self, rows: Iterable[AnomalyRow]) -> list[AnomalyRow]:
        """The rows that pass, in the given (severity, age) order."""
        return [row for row in rows if self(row)]


# -- notifications ---------------------------------------------------------------------------------


class NotificationGate:
    """Decides which anomalies raise a notification: high/critical, once per id, never for what
    was already there when the tab opened (the first :meth:`fresh` call only remembers)."""

    def __init__(self, severities: frozenset[Severity] = NOTIFY_SEVERITIES) -> None:
        self._severities = severities
        self._seen: set[str] = set()
        self._primed = False

    def fresh(self, rows: Iterable[AnomalyRow]) -> list[AnomalyRow]:
        """Rows to notify about now (each id at most once over the gate's life)."""
        out = [r for r in rows if r.severity in self._severities and r.id not in self._seen]
        self._seen.update(r.id for r in out)
        if not self._primed:
            self._primed = True
            return []
        return out


# -- histories for the charts ----------------------------------------------------------------------


class RateHistory:
    """The last ``size`` health samples ``(updated_at, events_per_second)``, one per update."""

    def __init__(self, size: int = 300) -> None:
        self._samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=size)
        #: bumped on every new sample, so a tab can tell whether to redraw
        self.version = 0

    def add(self, health: HealthView) -> None:
        """Record ``health`` if it is a new sample (a later ``updated_at``)."""
        if health.status is None:
            return
        if self._samples and health.updated_at <= self._samples[-1][0]:
            return
        self._samples.append((health.updated_at, health.events_per_second))
        self.version += 1

    def samples(self) -> list[tuple[float, float]]:
        """Oldest first."""
        return list(self._samples)


class ScoreHistory:
    """Score samples per anomaly id, for the score chart; the ``keep`` most recently changed
    anomalies are kept, ``size`` samples each."""

    def __init__(self, *, keep: int = 500, size: int = 200) -> None:
        self._keep = keep
        self._size = size
        self._series: collections.OrderedDict[str, collections.deque[tuple[float, float]]] = (
            collections.OrderedDict()
        )
        self._last: dict[str, float] = {}
        self._versions: dict[str, int] = {}
        self.version = 0

    def add(self, rows: Sequence[AnomalyRow], now: float) -> None:
        """Sample each row whose score changed since its last sample (or that is new)."""
        for row in rows:
            if self._last.get(row.id) == row.score:
                continue
            self._last[row.id] = row.score
            series = self._series.get(row.id)
            if series is None:
                series = self._series[row.id] = collections.deque(maxlen=self._size)
            else:
                self._series.move_to_end(row.id)
            series.append((now, row.score))
            self.version += 1
            self._versions[row.id] = self.version
        while len(self._series) > self._keep:
            old, _ = self._series.popitem(last=False)
            self._last.pop(old, None)
            self._versions.pop(old, None)

    def version_of(self, anomaly_id: str) -> int:
        """Changes whenever ``anomaly_id``'s series does (0 for an unknown id)."""
        return self._versions.get(anomaly_id, 0)

    def samples(self, anomaly_id: str) -> list[tuple[float, float]]:
        """Oldest first; empty for an unknown id."""
        return list(self._series.get(anomaly_id, ()))


# -- audit -----------------------------------------------------------------------------------------


@attrs.frozen
class AuditRecord:
    """One line of the audit log: who asked for what on which entity, and how it ended."""

    user: str
    action: str
    entity: str
    outcome: str

    def format(self) -> str:
        """``user=ann action=acknowledge entity=anomaly:a1 outcome=confirmed`` (values quoted
        with ``repr`` when they hold spaces or ``=``)."""
        def q(value: str) -> str:
            return repr(value) if (not value or any(c in value for c in " =\n'\"")) else value

        return (
            f"user={q(self.user)} action={q(self.action)} entity={q(self.entity)} "
            f"outcome={q(self.outcome)}"
        )


class CommandAudit:
    """Follows commands through the optimistic journal and reports each outcome once.

    :meth:`issued` records a command; :meth:`observe` (called with every journal) reports
    ``confirmed`` when its transaction was committed and ``reverted: reason`` when it was undone,
    through ``report``.
    """

    def __init__(self, report: Callable[[AuditRecord], None]) -> None:
        self._report = report
        self._pending: dict[str, tuple[str, str, str]] = {}

    @property
    def pending(self) -> int:
        """Commands not settled yet."""
        return len(self._pending)

    def issued(self, command_id: str, user: str, action: str, entity: str) -> None:
        """Record that ``user`` sent ``action`` on ``entity`` as ``command_id``."""
        self._pending[command_id] = (user, action, entity)

    def observe(self, journal: OptimisticJournal) -> None:
        """Report every recorded command that ``journal`` shows settled."""
        if not self._pending:
            return
        reverted = {rev.txn_id: rev.reason for rev in journal.reverted}
        committed = set(journal.committed)
        for command_id in list(self._pending):
            if command_id in committed:
                outcome = "confirmed"
            elif command_id in reverted:
                outcome = f"reverted: {reverted[command_id]}"
            else:
                continue
            user, action, entity = self._pending.pop(command_id)
            self._report(AuditRecord(user, action, entity, outcome))
