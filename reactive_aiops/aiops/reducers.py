"""Slice reducers for the AIOps state: detectors, anomalies and health. Pure functions.

Facts from the server upsert, load or remove entities; upserts honour versions (a copy older than
the held one is ignored). Commands from the UI are applied at once, *optimistically*, by the
``apply_*`` functions below: the entity gets its new state but keeps its version, so the server's
confirmation (the same entity with ``version + 1``) replaces it, and an optimistic layer that
reverts a rejected command simply replays the journal without it. A command whose target is
missing, or already in the asked-for state, changes nothing (the server will answer 404/409).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
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
    anomaly_order,
    detector_order,
)
from reactive_aiops.core.batching import with_reduce_many
from reactive_aiops.core.entities import EntityCollection
from reactive_aiops.core.routing import handles

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

#: ``detector_key`` / ``anomaly_key`` (both the entity's id), read in C: the collections call
#: it on every upsert.
_by_id: Callable[[Any], str] = operator.attrgetter("id")

# Shared empties are safe to keep forever: a collection never references its descendants.
_EMPTY_DETECTORS: Detectors = EntityCollection.empty(
    key=_by_id, order=detector_order, versioned=True
)
_EMPTY_ANOMALIES: Anomalies = EntityCollection.empty(
    key=_by_id, order=anomaly_order, versioned=True
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


#: Every action class the slice reducers below react to, the upsert first; any other action
#: leaves the slice as it is (which the batch path and the routing by action type rely on:
#: keep these in step).
_DETECTOR_ACTIONS = (DetectorUpserted, DetectorsLoaded, PauseDetector, ResumeDetector)
_ANOMALY_ACTIONS = (
    AnomalyUpserted,
    AnomaliesLoaded,
    AnomalyRemoved,
    AcknowledgeAnomaly,
    ResolveAnomaly,
)


@handles(*_DETECTOR_ACTIONS)
def detectors_reducer(state: Detectors | None, action: Any) -> Detectors:
    """The ``detectors`` slice: an :class:`EntityCollection` of :class:`Detector` by id.

    Carries ``reduce_many`` (:mod:`reactive_aiops.core.batching`): consecutive
    ``DetectorUpserted`` actions become one ``upsert_many``.
    """
    if state is None:
        state = _EMPTY_DETECTORS
    if isinstance(action, DetectorUpserted):
        return state.upsert(action.detector)
    if isinstance(action, DetectorsLoaded):
        return state.set_all(action.detectors, keep_newer=not action.exact)
    if isinstance(action, PauseDetector):
        return apply_pause(state, action)
    if isinstance(action, ResumeDetector):
        return apply_resume(state, action)
    return state


@handles(*_ANOMALY_ACTIONS)
def anomalies_reducer(state: Anomalies | None, action: Any) -> Anomalies:
    """The ``anomalies`` slice: an :class:`EntityCollection` of :class:`Anomaly` by id.

    Carries ``reduce_many`` (:mod:`reactive_aiops.core.batching`): consecutive
    ``AnomalyUpserted`` actions become one ``upsert_many``.
    """
    if state is None:
        state = _EMPTY_ANOMALIES
    if isinstance(action, AnomalyUpserted):
        return state.upsert(action.anomaly)
    if isinstance(action, AnomaliesLoaded):
        return state.set_all(action.anomalies, keep_newer=not action.exact)
    if isinstance(action, AnomalyRemoved):
        return state.remove(action.anomaly_id)
    if isinstance(action, AcknowledgeAnomaly):
        return apply_acknowledge(state, action)
    if isinstance(action, ResolveAnomaly):
        return apply_resolve(state, action)
    return state


def _upsert_runs(
    plain: Callable[[Any, Any], Any],
    empty: EntityCollection[str, Any],
    handled: tuple[type[Any], ...],
    entity_of: Callable[[Any], Any],
) -> Callable[[Any, Sequence[object]], Any]:
    """``reduce_many`` for an entity slice whose reducer ``plain`` returns its state itself
    (``empty`` for None) for every action that is not an instance of ``handled``.

    Each run of consecutive ``handled[0]`` (upsert) actions is one
    :meth:`EntityCollection.upsert_many`, which equals upserting them one by one; any other
    handled action goes through ``plain``, in its place.
    """
    upsert_type = handled[0]

    def flush(state: Any, run: list[Any]) -> Any:
        if state is None:
            state = empty
        return state.upsert(run[0]) if len(run) == 1 else state.upsert_many(run)

    def reduce_many(state: Any, actions: Sequence[object]) -> Any:
        if not actions:
            return state
        # Every slice reducer sees every action of a frame, so first ask, in C, which kinds of
        # action there are: usually only upserts of this slice, or nothing it handles at all.
        kinds = set(map(type, actions))
        if kinds == {upsert_type}:
            return flush(state, list(map(entity_of, actions)))  # in C with an attrgetter
        if not any(issubclass(kind, handled) for kind in kinds):
            return empty if state is None else state
        run: list[Any] = []
        for act in actions:
            if isinstance(act, upsert_type):
                run.append(entity_of(act))
                continue
            if run:
                state = flush(state, run)
                run = []
            state = plain(state, act)
        return flush(state, run) if run else state

    return reduce_many


@handles(HealthUpdated)
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


with_reduce_many(
    detectors_reducer,
    _upsert_runs(
        detectors_reducer, _EMPTY_DETECTORS, _DETECTOR_ACTIONS, operator.attrgetter("detector")
    ),
)
with_reduce_many(
    anomalies_reducer,
    _upsert_runs(
        anomalies_reducer, _EMPTY_ANOMALIES, _ANOMALY_ACTIONS, operator.attrgetter("anomaly")
    ),
)
