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

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import attrs
from reactivex import abc

from reactive_aiops.core.actions import Batch, action
from reactive_aiops.core.compose import Dispatch, Middleware, StoreAPI
from reactive_aiops.core.events import MalformedEvent, ServerEvent, UnknownEvent, command_id_of

S = TypeVar("S")

#: Reasons recorded on :class:`RevertedTransaction` by the journal itself.
TIMEOUT = "timeout"
OVERFLOW = "overflow"
CONNECTION_LOST = "connection_lost"


@action
class Optimistic:
    """Apply ``action`` at once as part of transaction ``txn_id`` until it is settled.

    Several ``Optimistic`` actions may share a ``txn_id``; they settle together. ``ttl`` overrides
    the enhancer's default time-to-live for a new transaction. Use the RPC ``command_id`` as the
    ``txn_id`` so the server's echo settles it.
    """

    action: object
    txn_id: str
    ttl: float | None = None


@action
class TransactionCommitted:
    """The server accepted transaction ``txn_id``.

    ``result`` is the server's authoritative effect (e.g. an upsert of the entity from the RPC
    reply) and is applied to the confirmed state instead of the optimistic actions; leave it
    ``None`` to confirm the optimistic actions as they are.
    """

    txn_id: str
    result: object | None = None


@action
class TransactionReverted:
    """The server rejected transaction ``txn_id`` (or the caller gave up): undo it.

    ``reason`` is kept in the journal's ``reverted`` list so a UI can say why.
    """

    txn_id: str
    reason: str = "rejected"


@action
class RevertPending:
    """Revert every pending transaction with ``reason`` (e.g. on connection loss)."""

    reason: str = CONNECTION_LOST


@action
class ExpireTransactions:
    """Clock reading: revert transactions whose TTL elapsed at ``now`` (seconds)."""

    now: float


@attrs.frozen
class PendingTransaction:
    """One unsettled transaction: its actions in dispatch order and its timing.

    ``started_at`` is ``None`` until the journal has a clock reading.
    """

    txn_id: str
    actions: tuple[object, ...]
    started_at: float | None
    ttl: float

    @property
    def deadline(self) -> float | None:
        """When the transaction expires, or ``None`` before it has a start time."""
        return None if self.started_at is None else self.started_at + self.ttl


@attrs.frozen
class RevertedTransaction:
    """A recently reverted transaction, kept (bounded) so a UI can show why it was undone."""

    txn_id: str
    actions: tuple[object, ...]
    reason: str
    at: float | None


@attrs.frozen
class PendingStep:
    """One optimistic action in the global order of dispatch, tagged with its transaction."""

    txn_id: str
    action: object


@attrs.frozen
class OptimisticJournal:
    """The optimistic bookkeeping kept in the root state (read it; never build one by hand).

    ``base`` is the confirmed state (with this field emptied) while anything is pending, else
    ``None`` (the visible state is then the confirmed state). ``steps`` are the pending actions in
    dispatch order; ``transactions`` the pending transactions in begin order; ``reverted`` the
    most recent reverts (oldest first); ``committed`` recent committed ids used to absorb a second
    confirmation. All tuples are bounded by the enhancer's limits.
    """

    base: Any = None
    steps: tuple[PendingStep, ...] = ()
    transactions: tuple[PendingTransaction, ...] = ()
    reverted: tuple[RevertedTransaction, ...] = ()
    committed: tuple[str, ...] = ()
    clock: float | None = None
    commits: int = 0
    reverts: int = 0
    echoes_absorbed: int = 0

    def pending(self, txn_id: str) -> PendingTransaction | None:
        """Return the pending transaction ``txn_id``, or ``None`` when it is not pending."""
        for txn in self.transactions:
            if txn.txn_id == txn_id:
                return txn
        return None

    def is_pending(self, txn_id: str) -> bool:
        """True while ``txn_id`` is neither committed nor reverted."""
        return self.pending(txn_id) is not None

    def revert_reason(self, txn_id: str) -> str | None:
        """Why ``txn_id`` was recently reverted, or ``None`` if it was not (or is forgotten)."""
        for rev in reversed(self.reverted):
            if rev.txn_id == txn_id:
                return rev.reason
        return None

    def summary(self) -> str:
        """One line for logs and the replay summary."""
        return (
            f"{len(self.transactions)} pending ({len(self.steps)} actions), "
            f"{self.commits} committed, {self.reverts} reverted, "
            f"{self.echoes_absorbed} echoes absorbed"
        )

    @property
    def next_deadline(self) -> float | None:
        """Earliest expiry among pending transactions (``-inf`` if one awaits a start time)."""
        best: float | None = None
        for txn in self.transactions:
            deadline = txn.deadline
            if deadline is None:
                return float("-inf")
            if best is None or deadline < best:
                best = deadline
        return best


#: The journal of a state with nothing pending and no history; also the field value in ``base``.
EMPTY_JOURNAL = OptimisticJournal()


class Lens(Protocol):
    """Reads and replaces the journal inside a root state."""

    def get(self, state: Any) -> OptimisticJournal:
        """Return the journal held by ``state``."""
        ...

    def set(self, state: Any, journal: OptimisticJournal) -> Any:
        """Return a copy of ``state`` holding ``journal``."""
        ...


@attrs.frozen
class FieldLens:
    """Lens onto attribute ``field`` of a frozen attrs root (or a key of a ``dict`` root)."""

    field: str

    def get(self, state: Any) -> OptimisticJournal:
        """Return the journal, or :data:`EMPTY_JOURNAL` if the state does not hold one yet."""
        found = getattr(state, self.field, _MISSING)
        if type(found) is OptimisticJournal:
            return found
        if isinstance(state, dict):
            found = state.get(self.field, EMPTY_JOURNAL)
        if not isinstance(found, OptimisticJournal):
            held = "no such field" if found is _MISSING else f"a {type(found).__name__}"
            raise TypeError(
                f"the root state needs a field {self.field!r} holding an OptimisticJournal "
                f"(found {held}); add `{self.field}: OptimisticJournal = EMPTY_JOURNAL` to "
                "it, or pass field= or lens="
            )
        return found

    def set(self, state: Any, journal: OptimisticJournal) -> Any:
        """Return ``state`` with the journal replaced (``attrs.evolve`` for attrs roots)."""
        if isinstance(state, dict):
            return {**state, self.field: journal}
        return attrs.evolve(state, **{self.field: journal})


Reducer = Callable[[Any, object], Any]

_MISSING: Any = object()


@attrs.frozen
class _Probe:
    """Private action no reducer knows: asks an enhanced reducer for its initial state."""


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
    """
    if ttl <= 0 or max_pending < 1 or keep_reverted < 0 or keep_committed < 0:
        raise ValueError("ttl and max_pending must be positive, keep_* non-negative")
    the_lens: Lens = lens if lens is not None else FieldLens(field)
    engine = _Engine(reducer, the_lens, ttl, max_pending, keep_reverted, keep_committed)
    return engine.reduce


class _Engine:
    """The enhancer's logic; one instance per enhanced reducer, holding only configuration."""

    def __init__(
        self,
        reducer: Reducer,
        lens: Lens,
        ttl: float,
        max_pending: int,
        keep_reverted: int,
        keep_committed: int,
    ) -> None:
        self.inner = reducer
        self.lens = lens
        self.ttl = ttl
        self.max_pending = max_pending
        self.keep_reverted = keep_reverted
        self.keep_committed = keep_committed

    def reduce(self, state: Any, act: object) -> Any:
        if state is None:
            if type(act) not in _JOURNAL_TYPES:
                return self.inner(None, act)
            state = self.inner(None, _Probe())
        journal = self.lens.get(state)
        kind = type(act)
        if kind not in _JOURNAL_TYPES:  # the hot path: a server event or any other action
            return self._server(state, journal, act)
        if isinstance(act, Optimistic):
            return self._begin(state, journal, act)
        if isinstance(act, TransactionCommitted):
            return self._commit(state, journal, act)
        if isinstance(act, TransactionReverted):
            return self._revert(state, journal, {act.txn_id}, act.reason, journal.clock)
        if isinstance(act, RevertPending):
            ids = {t.txn_id for t in journal.transactions}
            return self._revert(state, journal, ids, act.reason, journal.clock)
        assert isinstance(act, ExpireTransactions)
        return self._expire(state, journal, act.now)

    # -- helpers -------------------------------------------------------------------------------

    def _confirmed(self, state: Any, journal: OptimisticJournal) -> Any:
        """The confirmed state with the journal field emptied (so no nested journal copies)."""
        if journal.base is not None:
            return journal.base
        return self.lens.set(state, EMPTY_JOURNAL)

    def _rebuild(
        self, base: Any, steps: tuple[PendingStep, ...], journal: OptimisticJournal
    ) -> Any:
        """Visible state: ``base`` with ``steps`` re-applied, holding ``journal`` (fixed up).

        A pending action that raises on the new base is stale (the server moved under it): its
        transaction is reverted with reason ``"conflict: ..."`` and the fold restarts without
        it, so a confirmed change is never lost to an optimistic guess.
        """
        inner = self.inner
        while True:
            visible = base
            try:
                for step in steps:
                    visible = inner(visible, step.action)
            except Exception as exc:  # any reducer error: the step is what failed, not the event
                culprit = step.txn_id
                steps = tuple(s for s in steps if s.txn_id != culprit)
                reason = f"conflict: {type(exc).__name__}: {exc}"
                journal = self._forget(journal, {culprit}, reason, journal.clock)
                continue
            journal = attrs.evolve(journal, base=base if steps else None, steps=steps)
            return self.lens.set(visible, journal)

    def _forget(
        self, journal: OptimisticJournal, txn_ids: set[str], reason: str, at: float | None
    ) -> OptimisticJournal:
        """``journal`` without the pending transactions ``txn_ids``, recorded as reverted."""
        gone = tuple(t for t in journal.transactions if t.txn_id in txn_ids)
        records = tuple(RevertedTransaction(t.txn_id, t.actions, reason, at) for t in gone)
        kept = (*journal.reverted, *records)
        return attrs.evolve(
            journal,
            transactions=tuple(t for t in journal.transactions if t.txn_id not in txn_ids),
            reverted=kept[-self.keep_reverted :] if self.keep_reverted else (),
            reverts=journal.reverts + len(gone),
        )

    def _remember_committed(self, journal: OptimisticJournal, txn_id: str) -> tuple[str, ...]:
        if self.keep_committed == 0 or txn_id in journal.committed:
            return journal.committed
        return (*journal.committed, txn_id)[-self.keep_committed :]

    # -- transitions ---------------------------------------------------------------------------

    def _begin(self, state: Any, journal: OptimisticJournal, act: Optimistic) -> Any:
        step = PendingStep(act.txn_id, act.action)
        existing = journal.pending(act.txn_id)
        if existing is not None:
            grown = attrs.evolve(existing, actions=(*existing.actions, act.action))
            txns = tuple(grown if t is existing else t for t in journal.transactions)
        else:
            txn = PendingTransaction(
                act.txn_id, (act.action,), journal.clock, self.ttl if act.ttl is None else act.ttl
            )
            txns = (*journal.transactions, txn)
        base = self._confirmed(state, journal)
        # Appending one step on top of the visible state equals re-folding everything: O(1).
        visible = self.inner(state, act.action)
        new_journal = attrs.evolve(
            journal, base=base, steps=(*journal.steps, step), transactions=txns
        )
        state = self.lens.set(visible, new_journal)
        if len(txns) > self.max_pending:
            oldest = txns[0].txn_id
            state = self._revert(state, new_journal, {oldest}, OVERFLOW, journal.clock)
        return state

    def _server(self, state: Any, journal: OptimisticJournal, act: object) -> Any:
        # An event this client could not decode says nothing about what the command did, so it
        # cannot confirm it: the RPC reply or the TTL settles the transaction instead.
        cid = None if type(act) in _UNDECODED else command_id_of(act)
        if cid is not None:
            if journal.pending(cid) is not None:
                # The echo is the server's own record of the change: it confirms the transaction.
                base = self.inner(journal.base, act)
                steps = tuple(s for s in journal.steps if s.txn_id != cid)
                new_journal = attrs.evolve(
                    journal,
                    transactions=tuple(t for t in journal.transactions if t.txn_id != cid),
                    committed=self._remember_committed(journal, cid),
                    commits=journal.commits + 1,
                )
                return self._rebuild(base, steps, new_journal)
            if cid in journal.committed:
                absorbed = attrs.evolve(journal, echoes_absorbed=journal.echoes_absorbed + 1)
                return self.lens.set(state, absorbed)
            if any(r.txn_id == cid for r in journal.reverted):
                # A late echo of a reverted transaction is still server truth; remember it so a
                # late commit of the same id does not apply the change a second time.
                journal = attrs.evolve(journal, committed=self._remember_committed(journal, cid))
                state = self.lens.set(state, journal)
        if not journal.steps:
            return self.inner(state, act)
        base = self.inner(journal.base, act)
        if base is journal.base:
            return state
        return self._rebuild(base, journal.steps, journal)

    def _commit(self, state: Any, journal: OptimisticJournal, act: TransactionCommitted) -> Any:
        txn_id = act.txn_id
        txn = journal.pending(txn_id)
        if txn is not None:
            effects: tuple[object, ...] = txn.actions if act.result is None else (act.result,)
            base = journal.base
            for effect in effects:
                base = self.inner(base, effect)
            new_journal = attrs.evolve(
                journal,
                transactions=tuple(t for t in journal.transactions if t is not txn),
                committed=self._remember_committed(journal, txn_id),
                commits=journal.commits + 1,
            )
            steps = tuple(s for s in journal.steps if s.txn_id != txn_id)
            return self._rebuild(base, steps, new_journal)
        if txn_id in journal.committed:
            return state
        # A late commit (after a timeout revert, or of an id we never saw): the server did it.
        reverted = next((r for r in journal.reverted if r.txn_id == txn_id), None)
        if act.result is not None:
            effects = (act.result,)
        elif reverted is not None:
            effects = reverted.actions
        else:
            return state
        new_journal = attrs.evolve(
            journal,
            reverted=tuple(r for r in journal.reverted if r is not reverted),
            committed=self._remember_committed(journal, txn_id),
            commits=journal.commits + 1,
        )
        base = self._confirmed(state, journal)
        for effect in effects:
            base = self.inner(base, effect)
        return self._rebuild(base, journal.steps, new_journal)

    def _revert(
        self,
        state: Any,
        journal: OptimisticJournal,
        txn_ids: set[str],
        reason: str,
        at: float | None,
    ) -> Any:
        if not any(t.txn_id in txn_ids for t in journal.transactions):
            return state
        steps = tuple(s for s in journal.steps if s.txn_id not in txn_ids)
        return self._rebuild(journal.base, steps, self._forget(journal, txn_ids, reason, at))

    def _expire(self, state: Any, journal: OptimisticJournal, now: float) -> Any:
        if journal.clock != now or any(t.started_at is None for t in journal.transactions):
            stamped = tuple(
                t if t.started_at is not None else attrs.evolve(t, started_at=now)
                for t in journal.transactions
            )
            journal = attrs.evolve(journal, clock=now, transactions=stamped)
            state = self.lens.set(state, journal)
        due = {
            t.txn_id
            for t in journal.transactions
            if (deadline := t.deadline) is not None and deadline <= now
        }
        return self._revert(state, journal, due, TIMEOUT, now)


_UNDECODED = (ServerEvent, UnknownEvent, MalformedEvent)

#: Exact classes the journal handles (subclasses would be treated as ordinary actions).
_JOURNAL_TYPES = frozenset(
    (Optimistic, TransactionCommitted, TransactionReverted, RevertPending, ExpireTransactions)
)


def _begins(act: object) -> bool:
    if type(act) is Optimistic:
        return True
    return type(act) is Batch and any(type(a) is Optimistic for a in act.actions)


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

    def middleware(api: StoreAPI[Any]) -> Callable[[Dispatch], Dispatch]:
        timer: abc.DisposableBase | None = None
        armed_for: float | None = None

        def fire(_scheduler: abc.SchedulerBase, _state: object = None) -> None:
            nonlocal timer, armed_for
            timer = armed_for = None
            api.dispatch(ExpireTransactions(now()))

        def arm() -> None:
            nonlocal timer, armed_for
            assert scheduler is not None
            deadline = the_lens.get(api.state).next_deadline
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
                if type(act) is not ExpireTransactions:
                    journal = the_lens.get(api.state)
                    deadline = journal.next_deadline if journal.transactions else None
                    if deadline is not None or _begins(act):
                        t = now()
                        if (deadline is not None and deadline <= t) or (
                            journal.clock != t and _begins(act)
                        ):
                            api.dispatch(ExpireTransactions(t))
                result = next_(act)
                if scheduler is not None:
                    arm()
                return result

            return dispatch

        return wrap

    return middleware
