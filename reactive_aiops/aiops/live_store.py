"""The client-side live store: the AIOps domain plus the connection, optimistic and dedupe slices.

:func:`create_live_store` wires one :class:`~reactive_aiops.core.Store` whose root state is
:class:`~reactive_aiops.aiops.state.AppState` with every slice reduced:

* ``detectors`` / ``anomalies`` / ``health`` -- the domain reducers;
* ``connection`` -- :func:`~reactive_aiops.core.connection.connection_reducer` (link status,
  health, resync counts), fed by the bridge;
* ``dedupe`` -- :class:`~reactive_aiops.core.dedupe.DedupeStats` (re-deliveries dropped,
  unknown/malformed events), via :func:`~reactive_aiops.core.dedupe.dedupe_stats_reducer`;
* ``optimistic`` -- the optimistic journal, via :func:`~reactive_aiops.core.optimistic.optimistic`.

Every slice reducer declares the action types it reacts to
(:func:`~reactive_aiops.core.routing.handles`), so a live event reaches only its own slice.
Reducer nesting (inside out): ``root -> optimistic``. The optimistic enhancer is
outermost so that *every* confirmed change -- including the dedupe counters and the connection
slice -- lands in the journal's confirmed base and survives a revert; the visible state is always
the confirmed state with the pending commands re-applied.

Middleware order (outermost first), and why::

    extra (e.g. the bridge's command middleware: command -> Optimistic + RPC)
      -> action_log (optional: records what the store really sees, so a replay without the
         network -- Optimistic, TransactionCommitted/Reverted, ServerEvent -- is deterministic)
      -> dedupe   (drops a re-delivered ServerEvent before it is even decoded; keyed by
                   channel + epoch + offset and by event id)
      -> map_events (ServerEvent -> domain action carrying its EventMeta, via the event table)
      -> expire_transactions (reads ``clock`` and reverts commands older than their TTL)
      -> reducer

Dedupe therefore runs before the optimistic layer: a duplicate echo of a command never reaches
the journal. Time is injected: ``clock`` drives the optimistic TTL (pass a manual clock in tests),
``scheduler`` (optional, a reactivex scheduler on the store's thread) arms the expiry timer so a
command times out even when nothing else is dispatched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from reactivex import abc

from reactive_aiops.aiops.event_table import aiops_event_table
from reactive_aiops.aiops.state import AppState, make_root_reducer
from reactive_aiops.core import Epic, Middleware, Store, create_store
from reactive_aiops.core.connection import connection_reducer
from reactive_aiops.core.dedupe import Deduplicator, dedupe, dedupe_stats_reducer
from reactive_aiops.core.events import EventTable, map_events
from reactive_aiops.core.optimistic import expire_transactions, optimistic

__all__ = ["DEFAULT_COMMAND_TTL", "create_live_reducer", "create_live_store"]

#: Seconds an optimistic command may stay unconfirmed before it is reverted with ``"timeout"``.
DEFAULT_COMMAND_TTL = 15.0


def create_live_reducer(
    *, command_ttl: float = DEFAULT_COMMAND_TTL, max_pending: int = 1000
) -> Callable[[AppState | None, object], AppState]:
    """The live root reducer: domain + ``connection`` + ``dedupe`` slices under the optimistic
    journal. Pure; use it to replay an action log into a fresh store."""
    root = make_root_reducer(connection=connection_reducer, dedupe=dedupe_stats_reducer)
    enhanced: Callable[[Any, object], Any] = optimistic(
        root, ttl=command_ttl, max_pending=max_pending
    )
    return enhanced


def create_live_store(
    *,
    event_table: EventTable | None = None,
    clock: Callable[[], float] = time.monotonic,
    scheduler: abc.SchedulerBase | None = None,
    command_ttl: float = DEFAULT_COMMAND_TTL,
    max_pending: int = 1000,
    deduplicator: Deduplicator | None = None,
    action_log: Middleware | None = None,
    middleware: Sequence[Middleware] = (),
    epics: Sequence[Epic] = (),
    initial_state: AppState | None = None,
) -> Store[AppState]:
    """Build the client-side store (see the module docstring for the slices and the order).

    ``event_table`` decodes server events (default: the AIOps table,
    :func:`reactive_aiops.aiops.event_table.aiops_event_table`). ``clock`` is the optimistic
    journal's clock and ``scheduler`` its optional expiry timer (same clock). ``deduplicator``
    lets a caller inspect or share the dedupe memory (default: a fresh one, window 1024).
    ``action_log`` is any middleware placed where it sees what the reducer will see;
    ``middleware`` (e.g. :meth:`reactive_aiops.net.bridge.StoreBridge.middleware`) runs before
    everything else. Raises ``ValueError`` for a non-positive ``command_ttl``/``max_pending``.
    """
    if event_table is None:
        event_table = aiops_event_table()
    chain: list[Middleware] = list(middleware)
    if action_log is not None:
        chain.append(action_log)
    chain += [
        dedupe(deduplicator=deduplicator if deduplicator is not None else Deduplicator()),
        map_events(event_table),
        expire_transactions(now=clock, scheduler=scheduler),
    ]
    reducer = create_live_reducer(command_ttl=command_ttl, max_pending=max_pending)
    return create_store(
        reducer, initial_state=initial_state, middleware=tuple(chain), epics=tuple(epics)
    )
