"""The dashboard process's shared part: one store, the chart histories, commands and their audit.

A :class:`Hub` wraps the live session's store (one WebSocket connection per process). Every
browser tab is a :class:`~reactive_aiops.ui.web.page.DashboardTab` reading the hub; what tabs
share (the series behind the charts, the audit of commands) is recorded here once, from
unthrottled subscriptions made before any tab exists. Nothing here imports NiceGUI.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from reactivex import Observable
from reactivex.disposable import CompositeDisposable
from reactivex.scheduler.eventloop import AsyncIOScheduler

from reactive_aiops.aiops.actions import (
    AcknowledgeAnomaly,
    PauseDetector,
    ResolveAnomaly,
    ResumeDetector,
)
from reactive_aiops.aiops.models import AnomalyState, DetectorStatus
from reactive_aiops.aiops.state import AppState
from reactive_aiops.core.store import Store
from reactive_aiops.ui.coalesce import coalesce_frames
from reactive_aiops.ui.dashboard.view import (
    AnomalyRow,
    DetectorBadge,
    select_anomaly_rows,
    select_health_view,
    select_journal,
)
from reactive_aiops.ui.web.model import (
    AuditRecord,
    CommandAudit,
    Frame,
    RateHistory,
    ScoreHistory,
    select_frame,
)

__all__ = ["AUDIT_LOGGER", "CommandRefused", "Hub"]

#: The logger audit lines go to (``user=... action=... entity=... outcome=...``).
AUDIT_LOGGER = "reactive_aiops.web.audit"
_audit_log = logging.getLogger(AUDIT_LOGGER)


class CommandRefused(Exception):
    """A command that makes no sense on the current state (nothing sent); the message says why."""


class Hub:
    """The shared state of one dashboard process over ``store``.

    ``clock`` stamps commands (wall clock: the server compares it with its own). ``score_fps``
    is how often the per-anomaly score series is sampled, on ``loop`` (default: the running
    loop, the one the store dispatches on). ``on_audit`` receives each settled command (after it
    was logged).
    """

    def __init__(
        self,
        store: Store[AppState],
        *,
        title: str = "",
        clock: Callable[[], float] = time.time,
        score_fps: float = 10.0,
        on_audit: Callable[[AuditRecord], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        timers = AsyncIOScheduler(loop if loop is not None else asyncio.get_running_loop())
        self.store = store
        self.title = title
        self.clock = clock
        self.rates = RateHistory()
        self.scores = ScoreHistory()
        self.audit_records: list[AuditRecord] = []
        self._on_audit = on_audit
        self.audit = CommandAudit(self._report)
        #: anomaly id -> the dashboard user whose acknowledge the server confirmed (the server
        #: only knows the connection's user, the same for every command of this process)
        self.acknowledged_by: dict[str, str] = {}
        #: tab id -> a function returning that tab's counters (frames rendered, UI messages
        #: sent), for the stats endpoint and the benchmark
        self.tabs: dict[str, Callable[[], dict[str, int]]] = {}
        self._subscriptions = CompositeDisposable(
            store.select(select_health_view).subscribe(self.rates.add),
            store.select(select_anomaly_rows)
            .pipe(coalesce_frames(score_fps, scheduler=timers))
            .subscribe(lambda rows: self.scores.add(rows, self.clock())),
            store.select(select_journal).subscribe(self.audit.observe),
        )

    def close(self) -> None:
        """Stop recording."""
        self._subscriptions.dispose()

    def frame(self) -> Frame:
        """The current frame (for a render outside the stream's cadence)."""
        return select_frame(self.store.state)

    def frames(self) -> Observable[Frame]:
        """The stream of frames (current first, then each change)."""
        return self.store.select(select_frame)

    def _report(self, record: AuditRecord) -> None:
        self.audit_records.append(record)
        del self.audit_records[:-1000]
        if record.action == "acknowledge" and record.outcome == "confirmed":
            self.acknowledged_by[record.entity.removeprefix("anomaly:")] = record.user
            if len(self.acknowledged_by) > 10_000:
                del self.acknowledged_by[next(iter(self.acknowledged_by))]
        _audit_log.info("%s", record.format())
        if self._on_audit is not None:
            self._on_audit(record)

    # -- commands ------------------------------------------------------------------------------

    def _issue(self, command: Any, user: str, action: str, entity: str) -> None:
        self.audit.issued(command.command_id, user, action, entity)
        sent = AuditRecord(user, action, entity, "sent")
        self.audit_records.append(sent)
        _audit_log.info("%s", sent.format())
        self.store.dispatch(command)

    def shown_by(self, row: AnomalyRow) -> str:
        """Who acknowledged ``row``, for the page: the dashboard user when this process sent
        it (``ann`` or ``ann via operator`` when the server recorded the connection's user)."""
        server_by = row.acknowledged_by or ""
        user = self.acknowledged_by.get(row.id)
        if user is None or user == server_by or not server_by:
            return server_by if user is None else user
        return f"{user} via {server_by}"

    def acknowledge(self, row: AnomalyRow, user: str) -> None:
        """Acknowledge ``row``'s anomaly as ``user``; raises :class:`CommandRefused` if it is
        not open or has a command in flight."""
        if row.pending is not None or row.state is not AnomalyState.OPEN:
            raise CommandRefused(f"{row.id} is {row.marker}: nothing to acknowledge")
        command = AcknowledgeAnomaly(row.id, by=user, at=self.clock())
        self._issue(command, user, "acknowledge", f"anomaly:{row.id}")

    def resolve(self, row: AnomalyRow, user: str) -> None:
        """Resolve ``row``'s anomaly as ``user``; raises :class:`CommandRefused` if resolved or
        a command is in flight."""
        if row.pending is not None or row.state is AnomalyState.RESOLVED:
            raise CommandRefused(f"{row.id} is {row.marker}: nothing to resolve")
        self._issue(ResolveAnomaly(row.id, at=self.clock()), user, "resolve", f"anomaly:{row.id}")

    def toggle_detector(self, badge: DetectorBadge, user: str) -> str:
        """Pause ``badge``'s detector, or resume it when paused; returns the verb used."""
        if badge.pending is not None:
            raise CommandRefused(f"{badge.name}: {badge.pending} pending")
        entity = f"detector:{badge.id}"
        if badge.status is DetectorStatus.PAUSED:
            self._issue(ResumeDetector(badge.id, at=self.clock()), user, "resume", entity)
            return "resume"
        self._issue(PauseDetector(badge.id, at=self.clock()), user, "pause", entity)
        return "pause"
