"""The root application state and its reducer.

``AppState`` is a frozen attrs class, one field per slice. Every field has a default, so a new
slice (``connection``, ``optimistic``, ``dedupe``, ...) is added by declaring a field with a
default here and passing its reducer to :func:`combine_reducers` in :func:`make_root_reducer`;
fields without a reducer keep their value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from reactive_aiops.aiops.models import SystemHealth
from reactive_aiops.aiops.reducers import (
    Anomalies,
    Detectors,
    anomalies_reducer,
    detectors_reducer,
    empty_anomalies,
    empty_detectors,
    health_reducer,
)
from reactive_aiops.core import Epic, Middleware, Store, combine_reducers, create_store
from reactive_aiops.core.connection import ConnectionState
from reactive_aiops.core.dedupe import DedupeStats
from reactive_aiops.core.optimistic import EMPTY_JOURNAL, OptimisticJournal

__all__ = ["AppState", "create_aiops_store", "make_root_reducer", "root_reducer"]


@attrs.frozen
class AppState:
    """Everything the dashboard shows: detectors and anomalies by id, and the system health."""

    detectors: Detectors = attrs.field(factory=empty_detectors)
    anomalies: Anomalies = attrs.field(factory=empty_anomalies)
    health: SystemHealth | None = None
    # live slices, reduced by aiops.live_store.create_live_store (kept as is by root_reducer)
    connection: ConnectionState = attrs.field(factory=ConnectionState)
    optimistic: OptimisticJournal = EMPTY_JOURNAL
    dedupe: DedupeStats = attrs.field(factory=DedupeStats)


def make_root_reducer(
    **extra: Callable[[Any, Any], Any],
) -> Callable[[AppState | None, Any], AppState]:
    """The root reducer for :class:`AppState`.

    ``extra`` maps further field names to their slice reducers (or replaces a domain slice's
    reducer, e.g. to wrap it); a name that is not an ``AppState`` field raises :class:`TypeError`.
    """
    reducers: dict[str, Callable[[Any, Any], Any]] = {
        "detectors": detectors_reducer,
        "anomalies": anomalies_reducer,
        "health": health_reducer,
    }
    reducers.update(extra)
    return combine_reducers(AppState, **reducers)


#: ``root_reducer(state, action) -> AppState`` for the three domain slices.
root_reducer = make_root_reducer()


def create_aiops_store(
    *,
    initial_state: AppState | None = None,
    middleware: Sequence[Middleware] = (),
    epics: Sequence[Epic] = (),
) -> Store[AppState]:
    """A store running :data:`root_reducer`; a convenience for the demo, tests and benchmarks."""
    return create_store(
        root_reducer, initial_state=initial_state, middleware=middleware, epics=epics
    )
