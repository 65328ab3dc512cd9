"""The rebase engine behind :func:`reactive_aiops.core.optimistic.optimistic` (private).

Every transition keeps one invariant: the visible state is the confirmed ``base`` with the
pending ``steps`` re-applied in order. Settlements and server events re-fold only the pending
steps (O(pending) reducer calls), never the history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from reactive_aiops.core._journal import (
    EMPTY_JOURNAL,
    OVERFLOW,
    TIMEOUT,
    ExpireTransactions,
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
from reactive_aiops.core.batching import fold, reduce_all
from reactive_aiops.core.events import (
    EventMeta,
    MalformedEvent,
    ServerEvent,
    UnknownEvent,
    command_id_of,
)


@attrs.frozen
class _Probe:
    """Private action no reducer knows: asks an enhanced reducer for its initial state."""


class RebaseEngine:
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
        # The journal's field, read with getattr on the hot path (a FieldLens's own get is a
        # Python call); any other lens is always asked.
        self._field = attribute_of(lens)
        self.ttl = ttl
        self.max_pending = max_pending
        self.keep_reverted = keep_reverted
        self.keep_committed = keep_committed

    def reduce(self, state: Any, act: object) -> Any:
        if state is None:
            if type(act) not in _JOURNAL_TYPES:
                return self.inner(None, act)
            state = self.inner(None, _Probe())
        journal = getattr(state, self._field, None)
        if type(journal) is not OptimisticJournal:
            journal = self.lens.get(state)
        kind = type(act)
        if kind not in _JOURNAL_TYPES:  # the hot path: a server event or any other action
            # _echo_id, inline for the usual case (this runs once per server event)
            meta = getattr(act, "meta", None)
            if type(meta) is EventMeta:
                cid = None if kind in _UNDECODED else meta.command_id
            else:
                cid = None if meta is None else _echo_id(act)
            if cid is None and not journal.steps:
                # Nothing pending, nothing to confirm: the inner reducer alone, without a call.
                return self.inner(state, act)
            return self._server(state, journal, act, cid)
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

    def reduce_many(self, state: Any, actions: Sequence[object]) -> Any:
        """``reduce`` over ``actions`` in order (the batching contract), in runs where it can.

        With nothing pending, ``reduce`` hands a plain action (no journal type, no command id
        to match) straight to the inner reducer and leaves the journal alone, so a run of such
        actions is one ``reduce_all`` of the inner reducer. Everything else -- a journal
        action, a possible echo, any action while steps are pending -- takes ``reduce``.
        """
        count = len(actions)
        i = 0
        if state is None and count:
            state = self.reduce(None, actions[0])
            i = 1
        get = self.lens.get
        while i < count:
            journal = get(state)
            if not journal.steps:
                end = i
                while end < count:
                    # Plain: no journal type, and no command id that could confirm a
                    # transaction (what _server would look at).
                    act = actions[end]
                    kind = type(act)
                    if kind in _JOURNAL_TYPES:
                        break
                    meta = getattr(act, "meta", None)  # _echo_id(act), inline: once per event
                    if (
                        meta is not None
                        and isinstance(meta, EventMeta)
                        and meta.command_id is not None
                        and kind not in _UNDECODED
                    ):
                        break
                    end += 1
                if end - i > 1:
                    after = reduce_all(self.inner, state, actions[i:end])
                    if get(after) is journal:
                        state = after
                    else:
                        # The inner reducer rewrote the journal itself: each action of the run
                        # must then see the journal the one before it left, as in a fold.
                        state = fold(self.reduce, state, actions[i:end])
                    i = end
                    continue
            state = self.reduce(state, actions[i])
            i += 1
        return state

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

    def _server(
        self, state: Any, journal: OptimisticJournal, act: object, cid: str | None
    ) -> Any:
        """A server event or any other plain action; ``cid`` is its ``_echo_id``."""
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



def _echo_id(act: object) -> str | None:
    """The command id ``act`` could confirm a transaction with, or None.

    An event this client could not decode says nothing about what the command did, so it
    cannot confirm it: the RPC reply or the TTL settles the transaction instead.
    """
    return None if type(act) in _UNDECODED else command_id_of(act)


#: Exact classes the journal handles (subclasses would be treated as ordinary actions).
_JOURNAL_TYPES = frozenset(
    (Optimistic, TransactionCommitted, TransactionReverted, RevertPending, ExpireTransactions)
)
