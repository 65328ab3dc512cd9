"""Optimistic updates with rollback, defined by rebase semantics.

At every moment the visible state equals the server-confirmed state with the still-pending
optimistic actions re-applied on top, in the order they were made. The journal that makes this
true lives *in* the application's own root state (a lens onto one field, ``"optimistic"`` by
default), so time travel, the action log and the UI all see the same thing.

Wire it up with the reducer enhancer :func:`optimistic` (pure, deterministic) and, for TTL expiry
driven by a clock, the middleware :func:`expire_transactions`::

    reducer = optimistic(app_reducer, ttl=15.0)
    store = create_store(reducer, middleware=[expire_transactions(now=time.monotonic)])
    store.dispatch(Optimistic(AcknowledgeAnomaly("a1"), txn_id="cmd-7"))
    ...  # later, from the RPC reply:
    store.dispatch(TransactionCommitted("cmd-7", result=AnomalyUpserted(entity)))
    # or store.dispatch(TransactionReverted("cmd-7", reason="rejected: 409 conflict"))

Settlement rules (each is exactly "as if" under the definition above):

* ``TransactionReverted`` drops the transaction's actions: the visible state becomes the state as
  if they had never been dispatched, with every server event and other transaction kept.
* ``TransactionCommitted`` moves the change into the confirmed state: its ``result`` (the server's
  authoritative action) if given, else the transaction's own actions.
* A (decoded) server event whose :func:`~reactive_aiops.core.events.command_id_of` names a
  pending transaction *is* that transaction's confirmation: the event is applied to the
  confirmed state and the transaction settles as committed. The change enters the confirmed
  state once: a commit after the echo is a no-op; an echo after the commit is dropped
  (counted in ``echoes_absorbed``).
  ``ServerEvent``/``UnknownEvent``/``MalformedEvent`` never confirm: they were not understood.
* ``RevertPending(reason)`` reverts everything (the policy for a lost connection, if chosen).
* ``ExpireTransactions(now)`` advances the journal's clock and reverts every transaction older
  than its TTL with reason ``"timeout"``; a transaction begun before any clock reading is stamped
  by the first one. ``max_pending`` bounds the journal even without a clock.

Costs: a server event or a settlement re-applies the pending actions (O(pending) reducer calls),
never the history; with nothing pending an action costs one reducer call plus a field read.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from reactivex import abc

from reactive_aiops.core._journal import (
    CONNECTION_LOST,
    EMPTY_JOURNAL,
    OVERFLOW,
    TIMEOUT,
    ExpireTransactions,
    FieldLens,
    Lens,
    Optimistic,
    OptimisticJournal,
    PendingStep,
    PendingTransaction,
    Reducer,
    RevertedTransaction,
    RevertPending,
    TransactionCommitted,
    TransactionReverted,
    attribute_of,
)
from reactive_aiops.core._rebase import RebaseEngine
from reactive_aiops.core.actions import Batch
from reactive_aiops.core.batching import with_reduce_many
from reactive_aiops.core.compose import Dispatch, Middleware, StoreAPI

__all__ = [
    "CONNECTION_LOST",
    "EMPTY_JOURNAL",
    "OVERFLOW",
    "TIMEOUT",
    "ExpireTransactions",
    "FieldLens",
    "Lens",
    "Optimistic",
    "OptimisticJournal",
    "PendingStep",
    "PendingTransaction",
    "RevertPending",
    "RevertedTransaction",
    "TransactionCommitted",
    "TransactionReverted",
    "expire_transactions",
    "optimistic",
]


def optimistic(
    reducer: Reducer,
    *,
    field: str = "optimistic",
    lens: Lens | None = None,
    ttl: float = 15.0,
    max_pending: int = 1000,
    keep_reverted: int = 32,
    keep_committed: int = 256,
) -> Reducer:
    """Enhance ``reducer`` with the optimistic journal stored in ``field`` of its root state.

    The returned reducer is pure (time comes only from :class:`ExpireTransactions`). ``ttl`` is
    the default time-to-live in seconds; ``max_pending`` caps pending transactions (the oldest is
    reverted with reason ``"overflow"``); ``keep_reverted``/``keep_committed`` bound the history
    kept for the UI and for absorbing echoes. Raises ``ValueError`` for non-positive limits.
    The result carries ``reduce_many`` (:mod:`reactive_aiops.core.batching`): with nothing
    pending, runs of actions that cannot touch the journal reach ``reducer`` at once.
    """
    if ttl <= 0 or max_pending < 1 or keep_reverted < 0 or keep_committed < 0:
        raise ValueError("ttl and max_pending must be positive, keep_* non-negative")
    the_lens: Lens = lens if lens is not None else FieldLens(field)
    engine = RebaseEngine(reducer, the_lens, ttl, max_pending, keep_reverted, keep_committed)
    # A partial is called in C about as fast as the bound method, and unlike one it can carry
    # the batch path as an attribute.
    return with_reduce_many(functools.partial(RebaseEngine.reduce, engine), engine.reduce_many)


def _begins(act: object) -> bool:
    if type(act) is Optimistic:
        return True
    # ``in map(type, ...)`` scans in C: this runs for every dispatched batch (every live frame).
    return type(act) is Batch and Optimistic in map(type, act.actions)


def expire_transactions(
    *,
    now: Callable[[], float] = time.monotonic,
    field: str = "optimistic",
    lens: Lens | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Middleware:
    """Middleware feeding the journal its clock so unsettled transactions expire after their TTL.

    Before each action it reads ``now()`` and dispatches :class:`ExpireTransactions` (through the
    whole chain, so an action log records it and replay stays deterministic) when a pending
    transaction is due, or when an :class:`Optimistic` action is about to begin a transaction
    (which then starts at that reading). With a reactivex ``scheduler`` it also arms a timer for
    the earliest deadline, so a transaction expires even when nothing else is dispatched; pass the
    scheduler of the thread that owns the store, and a ``now`` on the same clock.
    """
    the_lens: Lens = lens if lens is not None else FieldLens(field)
    # Read with getattr on the hot path (once per dispatched event); any other lens is asked.
    fast_field = attribute_of(the_lens)

    def middleware(api: StoreAPI[Any]) -> Callable[[Dispatch], Dispatch]:
        timer: abc.DisposableBase | None = None
        armed_for: float | None = None
        get_state = api.get_state

        def journal_now() -> OptimisticJournal:
            journal = getattr(get_state(), fast_field, None)
            return journal if type(journal) is OptimisticJournal else the_lens.get(get_state())

        def fire(_scheduler: abc.SchedulerBase, _state: object = None) -> None:
            nonlocal timer, armed_for
            timer = armed_for = None
            api.dispatch(ExpireTransactions(now()))

        def arm() -> None:
            nonlocal timer, armed_for
            assert scheduler is not None
            deadline = journal_now().next_deadline
            if deadline == armed_for:
                return
            if timer is not None:
                timer.dispose()
                timer = None
            armed_for = deadline
            if deadline is not None:
                timer = scheduler.schedule_relative(max(deadline - now(), 0.0), fire)

        def wrap(next_: Dispatch) -> Dispatch:
            def dispatch(act: object) -> Any:
                kind = type(act)
                if kind is not ExpireTransactions:
                    journal = getattr(get_state(), fast_field, None)  # journal_now(), inline
                    if type(journal) is not OptimisticJournal:
                        journal = the_lens.get(get_state())
                    # Nothing pending and nothing beginning (the usual live event): no clock.
                    if journal.transactions or kind is Optimistic or kind is Batch:
                        begins = _begins(act)
                        deadline = journal.next_deadline if journal.transactions else None
                        if deadline is not None or begins:
                            t = now()
                            if (deadline is not None and deadline <= t) or (
                                journal.clock != t and begins
                            ):
                                api.dispatch(ExpireTransactions(t))
                result = next_(act)
                if scheduler is not None and (armed_for is not None or journal_now().transactions):
                    arm()
                return result

            return dispatch

        return wrap

    return middleware
