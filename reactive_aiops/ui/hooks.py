"""Hook-style streams: what a widget needs from the store, as memoized selector streams.

Each ``use_*`` function returns an Observable that emits the current value on subscribe and then
only when the value changes (never the same or an equal value twice in a row). They run their
selectors on the store's dispatching thread; bind them to a widget with an adapter
(``bind_textual``, ``bind_tk``, ``bind_qt``, ``aiter_stream``), which moves delivery onto the
toolkit's thread::

    bind_textual(panel, use_websocket(store), panel.show_connection)
    bind_textual(row, use_real_time_detector(store, "cpu-1"), row.show_detector)

Streams are cold and cheap to create; the memoization lives in the selectors (recomputed only
when their slice is a new object) and, for one detector, in a per-store
:class:`~reactive_aiops.core.keyed.KeyedSelector` shared by every ``use_real_time_detector``
stream of that store, so a change to one detector costs nothing for the others' subscribers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from reactivex import Observable

from reactive_aiops.aiops.models import Anomaly, AnomalyState, Detector, Severity
from reactive_aiops.aiops.selectors import (
    keyed_detectors,
    select_anomalies,
    select_anomalies_by_severity,
)
from reactive_aiops.aiops.state import AppState
from reactive_aiops.core.connection import ConnectionHealth, ConnectionState
from reactive_aiops.core.keyed import KeyedSelector
from reactive_aiops.core.selectors import create_selector
from reactive_aiops.core.store import Store

__all__ = [
    "AnomalyFilter",
    "use_real_time_anomalies",
    "use_real_time_detector",
    "use_websocket",
    "use_websocket_health",
]


def _select_connection(state: AppState) -> ConnectionState:
    return state.connection


def _select_connection_health(state: AppState) -> ConnectionHealth:
    return state.connection.health


def _to_states(value: Any) -> frozenset[AnomalyState] | None:
    if value is None:
        return None
    if isinstance(value, str):  # a lone "open" would otherwise iterate into letters
        value = (value,)
    return frozenset(AnomalyState(item) for item in value)


def _to_severity(value: Any) -> Severity | None:
    return None if value is None else Severity(value)


@attrs.frozen
class AnomalyFilter:
    """Which anomalies :func:`use_real_time_anomalies` shows; every given criterion must hold.

    ``states`` accepts ``AnomalyState`` members or their string values; ``min_severity`` a
    ``Severity`` or its string value. An unknown value raises ``ValueError`` at construction.
    """

    detector_id: str | None = None
    min_severity: Severity | None = attrs.field(default=None, converter=_to_severity)
    states: frozenset[AnomalyState] | None = attrs.field(default=None, converter=_to_states)
    metric: str | None = None

    def __call__(self, anomaly: Anomaly) -> bool:
        """Whether ``anomaly`` passes this filter."""
        if self.detector_id is not None and anomaly.detector_id != self.detector_id:
            return False
        if self.min_severity is not None and anomaly.severity.rank < self.min_severity.rank:
            return False
        if self.states is not None and anomaly.state not in self.states:
            return False
        return self.metric is None or anomaly.metric == self.metric


def use_websocket(store: Store[AppState]) -> Observable[ConnectionState]:
    """The connection slice (status, attempt, retry time, reason, health), as it changes."""
    return store.select(_select_connection)


def use_websocket_health(store: Store[AppState]) -> Observable[ConnectionHealth]:
    """Only the link health (latency, last message time, reconnects, rates), as it changes."""
    return store.select(_select_connection_health)


# The per-store KeyedSelector lives on the store itself: it references the store (through
# store.states), so a module-level weak map to it would keep every store alive forever.
_KEYED_ATTRIBUTE = "_reactive_aiops_ui_detectors"
_keyed_lock = threading.Lock()


def _detectors_of(store: Store[AppState]) -> KeyedSelector[AppState, str, Detector]:
    with _keyed_lock:
        keyed: KeyedSelector[AppState, str, Detector] | None = getattr(
            store, _KEYED_ATTRIBUTE, None
        )
        if keyed is None:
            keyed = keyed_detectors(store.states)
            setattr(store, _KEYED_ATTRIBUTE, keyed)
        return keyed


def use_real_time_detector(store: Store[AppState], detector_id: str) -> Observable[Detector | None]:
    """One detector by id (None while unknown), emitted again only when that detector changes.

    Raises:
        TypeError: ``detector_id`` is not a string.
    """
    if not isinstance(detector_id, str):
        raise TypeError(f"detector_id must be a str, got {type(detector_id).__name__}")
    return _detectors_of(store).select(detector_id)


def use_real_time_anomalies(
    store: Store[AppState],
    filter: AnomalyFilter | Callable[[Anomaly], bool] | None = None,
) -> Observable[Sequence[Anomaly]]:
    """Anomalies, most severe first then oldest first, re-emitted when the list changes.

    Without ``filter``: every anomaly (resolved included), from the collection's cached ordered
    view. With an :class:`AnomalyFilter` or any predicate: the matching ones, as a tuple,
    recomputed only when the anomaly collection is a new object. Create the stream once per
    widget and keep it: each call with a filter makes a new memoized selector.

    Raises:
        TypeError: ``filter`` is neither None, an AnomalyFilter nor callable.
    """
    if filter is None:
        return store.select(select_anomalies_by_severity)
    if not callable(filter):
        raise TypeError(f"filter must be an AnomalyFilter or a predicate, got {filter!r}")
    predicate = filter
    selector = create_selector(
        select_anomalies,
        lambda anomalies: tuple(a for a in anomalies.ordered() if predicate(a)),
    )
    return store.select(selector)
