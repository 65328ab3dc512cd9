"""The AIOps domain models: detectors, anomalies and system health (frozen attrs, see contracts).

Times are float Unix seconds. ``version`` grows by one per server-side change of an entity, which
is what lets a client ignore a late, older copy (:class:`~reactive_aiops.core.entities.
EntityCollection` with ``versioned=True``).
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

__all__ = [
    "Anomaly",
    "AnomalyState",
    "Detector",
    "DetectorStatus",
    "HealthStatus",
    "Severity",
    "SystemHealth",
    "anomaly_key",
    "anomaly_order",
    "detector_key",
    "detector_order",
]


class DetectorStatus(enum.StrEnum):
    """What a detector is doing."""

    ACTIVE = "active"
    PAUSED = "paused"
    TRAINING = "training"
    ERROR = "error"


class Severity(enum.StrEnum):
    """How bad an anomaly is; compares by :attr:`rank` (low < medium < high < critical)."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    #: 1 for low up to 4 for critical. A plain member attribute (set below), not a property:
    #: it is read in every anomaly sort key, and a property through ``value`` costs a call.
    rank: int

    # str's alphabetical order would put "critical" below "high"; severities compare by rank.
    def __lt__(self, other: Any) -> bool:
        if isinstance(other, Severity):
            return self.rank < other.rank
        return NotImplemented

    def __le__(self, other: Any) -> bool:
        if isinstance(other, Severity):
            return self.rank <= other.rank
        return NotImplemented

    def __gt__(self, other: Any) -> bool:
        if isinstance(other, Severity):
            return self.rank > other.rank
        return NotImplemented

    def __ge__(self, other: Any) -> bool:
        if isinstance(other, Severity):
            return self.rank >= other.rank
        return NotImplemented


for _rank, _severity in enumerate(Severity, start=1):
    _severity.rank = _rank
del _rank, _severity


class AnomalyState(enum.StrEnum):
    """Where an anomaly is in its life: open, acknowledged by someone, or resolved."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class HealthStatus(enum.StrEnum):
    """The overall health of the monitored system."""

    OK = "ok"
    DEGRADED = "degraded"
    CRITICAL = "critical"


@attrs.frozen
class Detector:
    """A detector watching one metric."""

    id: str
    name: str
    metric: str
    status: DetectorStatus
    updated_at: float
    version: int = 0

    def __attrs_post_init__(self) -> None:
        if type(self.status) is not DetectorStatus:
            _require_members(self, ("status", DetectorStatus))


@attrs.frozen
class Anomaly:
    """An anomaly a detector found on its metric."""

    id: str
    detector_id: str
    metric: str
    severity: Severity
    score: float
    value: float
    started_at: float
    state: AnomalyState = AnomalyState.OPEN
    version: int = 0
    updated_at: float = 0.0
    resolved_at: float | None = None
    acknowledged_by: str | None = None

    def __attrs_post_init__(self) -> None:
        # Both enum fields in one check: msgspec runs this once per decoded anomaly, where it
        # ran a wrapper and one attrs validator per field (three Python calls per live event).
        if type(self.severity) is not Severity or type(self.state) is not AnomalyState:
            _require_members(self, ("severity", Severity), ("state", AnomalyState))

    @property
    def is_unresolved(self) -> bool:
        """Open or acknowledged: still something to look at."""
        return self.state is not AnomalyState.RESOLVED


@attrs.frozen
class SystemHealth:
    """A summary of the whole system, published by the server."""

    status: HealthStatus
    events_per_second: float
    open_anomalies: int
    detectors_active: int
    detectors_error: int
    updated_at: float

    def __attrs_post_init__(self) -> None:
        if type(self.status) is not HealthStatus:
            _require_members(self, ("status", HealthStatus))


def _require_members(obj: object, *fields: tuple[str, type[enum.Enum]]) -> None:
    """Raise ``TypeError`` for the first field of ``obj`` that does not hold a member of its
    enum, worded and shaped as attrs' ``instance_of`` validator (message, field, type, value)."""
    for name, kind in fields:
        value = getattr(obj, name)
        if not isinstance(value, kind):
            raise TypeError(
                f"'{name}' must be {kind!r} (got {value!r} that is a {type(value)!r}).",
                name,
                kind,
                value,
            )


def detector_key(detector: Detector) -> str:
    """The key detectors are filed under: their id."""
    return detector.id


def detector_order(detector: Detector) -> tuple[str, str]:
    """Detectors list by name (then id, for a total order)."""
    return (detector.name, detector.id)


def anomaly_key(anomaly: Anomaly) -> str:
    """The key anomalies are filed under: their id."""
    return anomaly.id


def anomaly_order(anomaly: Anomaly) -> tuple[int, float]:
    """Anomalies list most severe first, then oldest first (the id breaks remaining ties)."""
    return (-anomaly.severity.rank, anomaly.started_at)
