"""Selectors over :class:`~reactive_aiops.aiops.state.AppState`, memoized with create_selector.

Plain ``select_*`` functions read one slice (an attribute access). The memoized ones recompute
only when their slice is a new object, and the anomaly ones use the collection's cached ordered
view and change tracking, so a dashboard refresh after one change costs O(changes), not O(n),
wherever the result allows it (filtered lists are rebuilt in O(n) from the ordered view).
Factories (``select_detector(id)``, ``select_anomalies_of(id)``) return a new memoized selector
per call: create one per widget and keep it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from reactivex import Observable

from reactive_aiops.aiops.models import Anomaly, AnomalyState, Detector, Severity, SystemHealth
from reactive_aiops.aiops.reducers import Anomalies, Detectors
from reactive_aiops.aiops.state import AppState
from reactive_aiops.core.keyed import KeyedSelector
from reactive_aiops.core.selectors import Selector, create_selector

__all__ = [
    "SeverityCounts",
    "keyed_anomalies",
    "keyed_detectors",
    "select_anomalies",
    "select_anomalies_by_severity",
    "select_anomalies_of",
    "select_anomaly",
    "select_detector",
    "select_detectors",
    "select_detectors_by_name",
    "select_health",
    "select_open_anomalies",
    "select_severity_counts",
    "select_unresolved_anomalies",
]


def select_detectors(state: AppState) -> Detectors:
    """The detector collection."""
    return state.detectors


def select_anomalies(state: AppState) -> Anomalies:
    """The anomaly collection (every state, resolved included)."""
    return state.anomalies


def select_health(state: AppState) -> SystemHealth | None:
    """The latest system health, or None before the first update."""
    return state.health


# The view selectors read the slice with an attrgetter (select_anomalies's body, in C) and call
# the collection's method itself, not a lambda around it: two Python frames less on every store
# notification.
_anomalies_of: Callable[[AppState], Anomalies] = operator.attrgetter("anomalies")
_detectors_of: Callable[[AppState], Detectors] = operator.attrgetter("detectors")

#: Every detector, ordered by name.
select_detectors_by_name: Selector[AppState, Sequence[Detector]] = create_selector(
    _detectors_of, Detectors.ordered
)

#: Every anomaly, most severe first, then oldest first (the collection's cached ordered view).
select_anomalies_by_severity: Selector[AppState, Sequence[Anomaly]] = create_selector(
    _anomalies_of, Anomalies.ordered
)

#: Anomalies in state ``open`` (not yet acknowledged), most severe first, then oldest first.
select_open_anomalies: Selector[AppState, tuple[Anomaly, ...]] = create_selector(
    _anomalies_of,
    lambda anomalies: tuple(a for a in anomalies.ordered() if a.state is AnomalyState.OPEN),
)

#: Open and acknowledged anomalies (everything not resolved), most severe first.
select_unresolved_anomalies: Selector[AppState, tuple[Anomaly, ...]] = create_selector(
    _anomalies_of,
    lambda anomalies: tuple(a for a in anomalies.ordered() if a.is_unresolved),
)


def select_detector(detector_id: str) -> Selector[AppState, Detector | None]:
    """A selector of one detector by id (None when unknown)."""
    return create_selector(select_detectors, lambda detectors: detectors.get(detector_id))


def select_anomaly(anomaly_id: str) -> Selector[AppState, Anomaly | None]:
    """A selector of one anomaly by id (None when unknown)."""
    return create_selector(select_anomalies, lambda anomalies: anomalies.get(anomaly_id))


def select_anomalies_of(detector_id: str) -> Selector[AppState, tuple[Anomaly, ...]]:
    """A selector of the anomalies one detector found (any state), most severe first."""
    return create_selector(
        select_anomalies,
        lambda anomalies: tuple(a for a in anomalies.ordered() if a.detector_id == detector_id),
    )


@attrs.frozen
class SeverityCounts:
    """How many unresolved anomalies there are of each severity."""

    low: int = 0
    medium: int = 0
    high: int = 0
    critical: int = 0

    def __getitem__(self, severity: Severity) -> int:
        count: int = getattr(self, severity.value)
        return count

    @property
    def total(self) -> int:
        """All unresolved anomalies."""
        return self.low + self.medium + self.high + self.critical


#: Each severity's position among SeverityCounts' fields (its constructor's arguments), so a
#: tally is a list of four ints: no enum iteration or ``.value`` lookups on every update.
_SLOT = {Severity(field.name): i for i, field in enumerate(attrs.fields(SeverityCounts))}
_TALLY = operator.attrgetter(*(field.name for field in attrs.fields(SeverityCounts)))


def _count_unresolved() -> Callable[[Anomalies], SeverityCounts]:
    previous: list[Any] = [None, None]  # [collection, its counts]
    slot = _SLOT

    def count(anomalies: Anomalies) -> SeverityCounts:
        before, counts = previous
        changed = None if before is None else anomalies.changed_keys_since(before)
        if changed is None:
            tally = [0] * len(slot)
            for anomaly in anomalies.values():
                if anomaly.is_unresolved:
                    tally[slot[anomaly.severity]] += 1
        else:
            # Adjust the previous counts by the changed keys only: O(changes), not O(n).
            tally = list(_TALLY(counts))
            for key in changed:
                old = before.get(key)
                if old is not None and old.is_unresolved:
                    tally[slot[old.severity]] -= 1
                new = anomalies.get(key)
                if new is not None and new.is_unresolved:
                    tally[slot[new.severity]] += 1
        result = SeverityCounts(*tally)
        previous[:] = [anomalies, result]
        return result

    return count


#: Counts of unresolved anomalies by severity (updated incrementally from the changed keys).
select_severity_counts: Selector[AppState, SeverityCounts] = create_selector(
    _anomalies_of, _count_unresolved()
)


def keyed_anomalies(states: Observable[AppState]) -> KeyedSelector[AppState, str, Anomaly]:
    """Per-anomaly streams over ``states`` (e.g. ``store.states``): ``.select(anomaly_id)``."""
    return KeyedSelector(states, select_anomalies)


def keyed_detectors(states: Observable[AppState]) -> KeyedSelector[AppState, str, Detector]:
    """Per-detector streams over ``states`` (e.g. ``store.states``): ``.select(detector_id)``."""
    return KeyedSelector(states, select_detectors)
