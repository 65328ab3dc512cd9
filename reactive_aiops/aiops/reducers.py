"""Slice reducers for the AIOps state: detectors, anomalies and health. Pure functions.

Facts from the server upsert, load or remove entities; upserts honour versions (a copy older than
the held one is ignored). Commands from the UI are applied at once, *optimistically*, by the
``apply_*`` functions below: the entity gets its new state but keeps its version, so the server's
confirmation (the same entity with ``version + 1``) replaces it, and an optimistic layer that
reverts a rejected command simply replays the journal without it. A command whose target is
missing, or already in the asked-for state, changes nothing (the server will answer 404/409).
"""

from __future__ import annotations

from typing import Any

import attrs

from reactive_aiops.aiops.actions import (
    AcknowledgeAnomaly,
    AnomaliesLoaded,
    AnomalyRemoved,
    AnomalyUpserted,
    DetectorsLoaded,
    DetectorUpserted,
    HealthUpdated,
    PauseDetector,
    ResolveAnomaly,
    ResumeDetector,
)
from reactive_aiops.aiops.models import (
    Anomaly,
    AnomalyState,
    Detector,
    DetectorStatus,
    SystemHealth,
    anomaly_key,
    anomaly_order,
    detector_key,
    detector_order,
)
from reactive_aiops.core.entities import EntityCollection

__all__ = [
    "Anomalies",
    "Detectors",
    "anomalies_reducer",
    "apply_acknowledge",
    "apply_pause",
    "apply_resolve",
    "apply_resume",
    "detectors_reducer",
    "empty_anomalies",
    "empty_detectors",
    "health_reducer",
]

Detectors = EntityCollection[str, Detector]
Anomalies = EntityCollection[str, Anomaly]

# Shared empties are safe to keep forever: a collection never references its descendants.
_EMPTY_DETECTORS: Detectors = EntityCollection.empty(
    key=detector_key, order=detector_order, versioned=True
)
_EMPTY_ANOMALIES: Anomalies = EntityCollection.empty(
    key=anomaly_key, order=anomaly_order, versioned=True
)


def empty_detectors() -> Detectors:
    """The initial detector collection: keyed by id, ordered by name, versioned."""
    return _EMPTY_DETECTORS


def empty_anomalies() -> Anomalies:
    """The initial anomaly collection: keyed by id, most severe then oldest first, versioned."""
    return _EMPTY_ANOMALIES


# -- optimistic command application ------------------------------------------------------------


def _stamp(at: float | None, current: float) -> float:
    return current if at is None else at


def apply_acknowledge(anomalies: Anomalies, command: AcknowledgeAnomaly) -> Anomalies:
    """Mark an *open* anomaly acknowledged (by ``command.by``); anything else is unchanged."""
    anomaly = anomalies.get(command.anomaly_id)
    if anomaly is None or anomaly.state is not AnomalyState.OPEN:
        return anomalies
    return anomalies.upsert(
        attrs.evolve(
            anomaly,
            state=AnomalyState.ACKNOWLEDGED,
            acknowledged_by=command.by,
            updated_at=_stamp(command.at, anomaly.updated_at),
        )
    )


def apply_resolve(anomalies: Anomalies, command: ResolveAnomaly) -> Anomalies:
    """Mark an unresolved anomaly resolved (at ``command.at``); a resolved one is unchanged."""
    anomaly = anomalies.get(command.anomaly_id)
    if anomaly is None or anomaly.state is AnomalyState.RESOLVED:
        return anomalies
    return anomalies.upsert(
        attrs.evolve(
            anomaly,
            state=AnomalyState.RESOLVED,
            resolved_at=command.at,
            updated_at=_stamp(command.at, anomaly.updated_at),
        )
    )


def _set_status(
    detectors: Detectors, detector_id: str, status: DetectorStatus, at: float | None
) -> Detectors:
    detector = detectors.get(detector_id)
    if detector is None or detector.status is status:
        return detectors
    return detectors.upsert(
        attrs.evolve(detector, status=status, updated_at=_stamp(at, detector.updated_at))
    )


def apply_pause(detectors: Detectors, command: PauseDetector) -> Detectors:
    """Mark a detector paused; an already paused (or unknown) one is unchanged."""
    return _set_status(detectors, command.detector_id, DetectorStatus.PAUSED, command.at)


def apply_resume(detectors: Detectors, command: ResumeDetector) -> Detectors:
    """Mark a *paused* detector active; a detector in any other status is unchanged."""
    detector = detectors.get(command.detector_id)
    if detector is None or detector.status is not DetectorStatus.PAUSED:
        return detectors
    return _set_status(detectors, command.detector_id, DetectorStatus.ACTIVE, command.at)


# -- slice reducers ----------------------------------------------------------------------------


def detectors_reducer(state: Detectors | None, action: Any) -> Detectors:
    """The ``detectors`` slice: an :class:`EntityCollection` of :class:`Detector` by id."""
    if state is None:
        state = _EMPTY_DETECTORS
    if isinstance(action, DetectorUpserted):
        return state.upsert(action.detector)
    if isinstance(action, DetectorsLoaded):
        return state.set_all(action.detectors)
    if isinstance(action, PauseDetector):
        return apply_pause(state, action)
    if isinstance(action, ResumeDetector):
        return apply_resume(state, action)
    return state


def anomalies_reducer(state: Anomalies | None, action: Any) -> Anomalies:
    """The ``anomalies`` slice: an :class:`EntityCollection` of :class:`Anomaly` by id."""
    if state is None:
        state = _EMPTY_ANOMALIES
    if isinstance(action, AnomalyUpserted):
        return state.upsert(action.anomaly)
    if isinstance(action, AnomaliesLoaded):
        return state.set_all(action.anomalies)
    if isinstance(action, AnomalyRemoved):
        return state.remove(action.anomaly_id)
    if isinstance(action, AcknowledgeAnomaly):
        return apply_acknowledge(state, action)
    if isinstance(action, ResolveAnomaly):
        return apply_resolve(state, action)
    return state


def health_reducer(state: SystemHealth | None, action: Any) -> SystemHealth | None:
    """The ``health`` slice: the latest :class:`SystemHealth`, None until the first arrives.

    A health update older (``updated_at``) than the held one is ignored; health has no version.
    """
    if isinstance(action, HealthUpdated):
        health = action.health
        if state is not None and (health == state or health.updated_at < state.updated_at):
            return state
        return health
    return state
