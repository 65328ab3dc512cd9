"""The server's view of the AIOps world: detectors, anomalies, health, and how changes publish.

Entities are frozen records whose ``payload()`` is the contract's wire payload (enums as their
string values). Every change goes through ``AiopsState``, which bumps the entity's version, stores
it and publishes an event envelope on the contract's channels: ``detectors`` and
``detectors:<id>`` for a detector, ``anomalies`` for an anomaly, ``health`` for system health.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any

import attrs

from reactive_aiops.server.broker import Broker, Clock
from reactive_aiops.wire.events import (
    ANOMALY_UPSERTED,
    CHANNEL_ANOMALIES,
    CHANNEL_DETECTORS,
    CHANNEL_HEALTH,
    DETECTOR_UPSERTED,
    HEALTH_UPDATED,
    EventEnvelope,
    detector_channel,
    encode_event,
)

DETECTOR_STATUSES = frozenset({"active", "paused", "training", "error"})
SEVERITIES = ("low", "medium", "high", "critical")
ANOMALY_STATES = frozenset({"open", "acknowledged", "resolved"})
HEALTH_STATUSES = frozenset({"ok", "degraded", "critical"})

__all__ = ["AiopsState", "AnomalyRecord", "DetectorRecord", "HealthRecord", "detector_channel"]


@attrs.frozen
class DetectorRecord:
    """A detector as the server knows it (contract ``Detector``)."""

    id: str
    name: str
    metric: str
    status: str
    updated_at: float
    version: int = 0

    def payload(self) -> dict[str, Any]:
        """The contract payload of ``detector.upserted``."""
        # Spelled out: attrs.asdict walks every value for nested classes, five times the cost,
        # on every publication and for each entity of a snapshot (a test holds it to asdict).
        return {"id": self.id, "name": self.name, "metric": self.metric, "status": self.status,
                "updated_at": self.updated_at, "version": self.version}


@attrs.frozen
class AnomalyRecord:
    """An anomaly as the server knows it (contract ``Anomaly``)."""

    id: str
    detector_id: str
    metric: str
    severity: str
    score: float
    value: float
    started_at: float
    state: str = "open"
    version: int = 0
    updated_at: float = 0.0
    resolved_at: float | None = None
    acknowledged_by: str | None = None

    def payload(self) -> dict[str, Any]:
        """The contract payload of ``anomaly.upserted``."""
        return {"id": self.id, "detector_id": self.detector_id, "metric": self.metric,
                "severity": self.severity, "score": self.score, "value": self.value,
                "started_at": self.started_at, "state": self.state, "version": self.version,
                "updated_at": self.updated_at, "resolved_at": self.resolved_at,
                "acknowledged_by": self.acknowledged_by}


@attrs.frozen
class HealthRecord:
    """System health (contract ``SystemHealth``)."""

    status: str
    events_per_second: float
    open_anomalies: int
    detectors_active: int
    detectors_error: int
    updated_at: float

    def payload(self) -> dict[str, Any]:
        """The contract payload of ``health.updated``."""
        return {"status": self.status, "events_per_second": self.events_per_second,
                "open_anomalies": self.open_anomalies, "detectors_active": self.detectors_active,
                "detectors_error": self.detectors_error, "updated_at": self.updated_at}


def record_from(kind: str, data: dict[str, Any]) -> DetectorRecord | AnomalyRecord | HealthRecord:
    """The full record of a validated contract payload (absent fields take their defaults)."""
    if kind == "detector":
        return DetectorRecord(
            id=data["id"], name=data["name"], metric=data["metric"], status=data["status"],
            updated_at=float(data["updated_at"]), version=data.get("version", 0))
    if kind == "anomaly":
        return AnomalyRecord(
            id=data["id"], detector_id=data["detector_id"], metric=data["metric"],
            severity=data["severity"], score=float(data["score"]), value=float(data["value"]),
            started_at=float(data["started_at"]), state=data.get("state", "open"),
            version=data.get("version", 0), updated_at=float(data.get("updated_at", 0.0)),
            resolved_at=data.get("resolved_at"), acknowledged_by=data.get("acknowledged_by"))
    return HealthRecord(
        status=data["status"], events_per_second=float(data["events_per_second"]),
        open_anomalies=data["open_anomalies"], detectors_active=data["detectors_active"],
        detectors_error=data["detectors_error"], updated_at=float(data["updated_at"]))


class AiopsState:
    """Current detectors and anomalies; every change is versioned and published."""

    def __init__(
        self, broker: Broker, *, clock: Clock = time.time,
        new_event_id: Callable[[], str] | None = None,
    ) -> None:
        self.broker = broker
        self.clock = clock
        if new_event_id is None:
            prefix = secrets.token_hex(3)
            counter = itertools.count(1)

            def new_event_id() -> str:
                return f"ev-{prefix}-{next(counter)}"

        self._new_event_id = new_event_id
        self.detectors: dict[str, DetectorRecord] = {}
        self.anomalies: dict[str, AnomalyRecord] = {}
        self.health: HealthRecord | None = None

    @property
    def published(self) -> int:
        """Publications made so far (the simulated source's health rate reads it)."""
        return self.broker.published

    def _publish(self, channels: tuple[str, ...], event_type: str, payload: dict[str, Any],
                 command_id: str | None) -> None:
        for channel in channels:
            # ``ts`` is taken per publication: it is the send time used for latency.
            event = EventEnvelope(type=event_type, id=self._new_event_id(), ts=self.clock(),
                                  data=payload, command_id=command_id)
            self.broker.publish(channel, encode_event(event))

    def upsert_detector(self, detector: DetectorRecord, *, command_id: str | None = None,
                        bump: bool = True) -> DetectorRecord:
        """Store ``detector`` (version bumped past the stored one) and publish it."""
        if bump:
            old = self.detectors.get(detector.id)
            detector = attrs.evolve(detector, version=(old.version + 1) if old else
                                    max(detector.version, 1))
        self.detectors[detector.id] = detector
        self._publish((CHANNEL_DETECTORS, detector_channel(detector.id)), DETECTOR_UPSERTED,
                      detector.payload(), command_id)
        return detector

    def upsert_anomaly(self, anomaly: AnomalyRecord, *, command_id: str | None = None,
                       bump: bool = True) -> AnomalyRecord:
        """Store ``anomaly`` (version bumped past the stored one) and publish it."""
        if bump:
            old = self.anomalies.get(anomaly.id)
            anomaly = attrs.evolve(anomaly, version=(old.version + 1) if old else
                                   max(anomaly.version, 1))
        self.anomalies[anomaly.id] = anomaly
        if anomaly.state == "resolved":
            # Resolved anomalies are history; keep memory bounded for long runs.
            self._forget_resolved()
        self._publish((CHANNEL_ANOMALIES,), ANOMALY_UPSERTED, anomaly.payload(), command_id)
        return anomaly

    def _forget_resolved(self, keep: int = 5000) -> None:
        if len(self.anomalies) <= keep * 2:
            return
        resolved = [k for k, a in self.anomalies.items() if a.state == "resolved"]
        for key in resolved[: len(resolved) - keep]:
            del self.anomalies[key]

    def update_health(self, health: HealthRecord) -> None:
        """Store and publish system health."""
        self.health = health
        self._publish((CHANNEL_HEALTH,), HEALTH_UPDATED, health.payload(), None)

    def compute_health(self, events_per_second: float) -> HealthRecord:
        """Health derived from the current entities: critical if a critical anomaly is open,
        degraded if any anomaly is open or a detector is in error, else ok."""
        live = [a for a in self.anomalies.values() if a.state != "resolved"]
        errors = sum(1 for d in self.detectors.values() if d.status == "error")
        if any(a.severity == "critical" for a in live):
            status = "critical"
        elif live or errors:
            status = "degraded"
        else:
            status = "ok"
        return HealthRecord(
            status=status,
            events_per_second=round(events_per_second, 3),
            open_anomalies=len(live),
            detectors_active=sum(1 for d in self.detectors.values() if d.status == "active"),
            detectors_error=errors,
            updated_at=self.clock(),
        )
