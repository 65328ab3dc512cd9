"""The optimistic journal's types: the settlement actions, the journal kept in state, the lens.

Import them from :mod:`reactive_aiops.core.optimistic`, the public facade.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import attrs

from reactive_aiops.core.actions import action

_MISSING: Any = object()

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


def attribute_of(lens: Lens) -> str:
    """The attribute a hot path may read the journal from with ``getattr(state, name, None)``
    before asking ``lens`` (when the result is not an :class:`OptimisticJournal`): a
    :class:`FieldLens`'s field, else a name no object has (``getattr`` then gives None)."""
    return lens.field if type(lens) is FieldLens else "-"


#: ``reducer(state, action) -> state`` as the enhancer sees it.
Reducer = Callable[[Any, object], Any]
