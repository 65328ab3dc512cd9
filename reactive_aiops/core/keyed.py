"""Keyed selector streams: many subscribers, one key each, cost per change, not per subscriber.

``Store.select(lambda s: s.anomalies.get(key))`` per row would run every row's selector on every
state: 10,000 rows cost 10,000 calls per action. A :class:`KeyedSelector` holds *one* upstream
subscription and a dict ``key -> subscribers``; on each new state it asks the entity collection
which keys changed (:meth:`EntityCollection.changed_keys_since`, a walk of one link in the common
case) and touches only those keys' subscribers::

    rows = KeyedSelector(store.states, lambda state: state.anomalies)
    disposable = rows.select("a-17").subscribe(print)   # current anomaly (or None), then changes

When the collection cannot say what changed (an unrelated collection, or a history too long ago),
it falls back to comparing the *subscribed* keys only, never the whole collection.

Threading: the upstream (the store) notifies on the dispatching thread under its lock; this class
guards its own bookkeeping with a re-entrant lock and emits while holding it, so per-key values
arrive in order. A subscriber that must hop threads should use ``observe_on``.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import attrs
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from reactive_aiops.core.entities import EntityCollection

__all__ = ["KeyedSelector", "KeyedStats"]

S = TypeVar("S")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING: Any = object()

#: (the key's oldest subscription token, its observers, the value to send them)
_Delivery = tuple[int, tuple[abc.ObserverBase[V | None], ...], V | None]


def _oldest_token(delivery: _Delivery[Any]) -> int:
    return delivery[0]


@attrs.define
class KeyedStats:
    """Counters that let a test (or a dashboard) prove the cost is per change."""

    #: states received from upstream
    states: int = 0
    #: keys whose old and new entity were compared
    keys_checked: int = 0
    #: values delivered to subscribers (initial values included)
    emissions: int = 0
    #: states for which the changed keys were unknown and subscribed keys were diffed
    fallbacks: int = 0


class _KeyStream(Observable[V | None], Generic[K, V]):
    def __init__(self, owner: KeyedSelector[Any, K, V], key: K) -> None:
        super().__init__()
        self._owner = owner
        self._key = key

    def _subscribe_core(
        self,
        observer: abc.ObserverBase[V | None],
        scheduler: abc.SchedulerBase | None = None,
    ) -> abc.DisposableBase:
        return self._owner._add(self._key, observer)


class KeyedSelector(Generic[S, K, V]):
    """Per-key streams over the entity collection ``collection_of(state)`` of a state stream.

    ``states`` must emit the current state on subscribe and then each new state (like
    ``Store.states`` or a ``BehaviorSubject``). It is subscribed to once, while at least one key
    stream has a subscriber, and released when the last one leaves.
    """

    def __init__(
        self,
        states: Observable[S],
        collection_of: Callable[[S], EntityCollection[K, V]],
    ) -> None:
        self._states = states
        self._collection_of = collection_of
        self._lock = threading.RLock()
        self._watches: dict[K, dict[int, abc.ObserverBase[V | None]]] = {}
        self._tokens = itertools.count()
        self._upstream: abc.DisposableBase | None = None
        self._last: EntityCollection[K, V] | None = None
        self._busy = False
        self._pending: deque[S] = deque()
        #: Cost counters; see :class:`KeyedStats`.
        self.stats = KeyedStats()

    def select(self, key: K) -> Observable[V | None]:
        """An Observable of the entity under ``key``: its current value (None when absent)
        first, then each change (never the same or an equal value twice in a row)."""
        return _KeyStream(self, key)

    @property
    def subscribed_keys(self) -> int:
        """How many distinct keys have at least one subscriber."""
        return len(self._watches)

    @property
    def subscriber_count(self) -> int:
        """How many key-stream subscriptions are live."""
        with self._lock:
            return sum(len(observers) for observers in self._watches.values())

    @property
    def connected(self) -> bool:
        """Whether the upstream state stream is currently subscribed."""
        return self._upstream is not None

    # -- subscriptions -------------------------------------------------------------------------

    def _add(self, key: K, observer: abc.ObserverBase[V | None]) -> abc.DisposableBase:
        with self._lock:
            token = next(self._tokens)
            self._watches.setdefault(key, {})[token] = observer
            last = self._last
            if last is not None:
                self.stats.emissions += 1
                observer.on_next(last.get(key))
            connect = self._upstream is None
        if connect:
            # Outside our lock: the upstream takes its own lock and calls back into _on_state,
            # which takes ours, so the order is always upstream lock -> ours. The first state
            # it delivers gives every waiting subscriber its initial value.
            self._connect()
        return Disposable(lambda: self._remove(key, token))

    def _remove(self, key: K, token: int) -> None:
        upstream = None
        with self._lock:
            observers = self._watches.get(key)
            if observers is None or observers.pop(token, None) is None:
                return
            if not observers:
                del self._watches[key]
            if not self._watches:
                upstream, self._upstream = self._upstream, None
                self._last = None
        if upstream is not None:
            upstream.dispose()

    def _connect(self) -> None:
        subscription = self._states.subscribe(
            on_next=self._on_state, on_error=self._on_error, on_completed=self._on_completed
        )
        with self._lock:
            # Keep it unless another thread connected first, or every subscriber already left
            # (a subscribe and dispose racing on other threads) -- then nobody would release it.
            if self._upstream is None and self._watches:
                self._upstream = subscription
                return
            if not self._watches:
                self._last = None
        subscription.dispose()

    # -- upstream ------------------------------------------------------------------------------

    def _on_state(self, state: S) -> None:
        with self._lock:
            self.stats.states += 1
            if self._busy:
                # A subscriber pushed a state synchronously while we were emitting: finish this
                # round first so every key sees its values in order.
                self._pending.append(state)
                return
            self._busy = True
            try:
                error = self._process(state)
                while self._pending:
                    error = self._process(self._pending.popleft()) or error
            finally:
                self._busy = False
                self._pending.clear()
        if error is not None:
            raise error

    def _process(self, state: S) -> Exception | None:
        new = self._collection_of(state)
        old = self._last
        if new is old:
            return None
        self._last = new
        watches = self._watches
        if old is None:
            return self._deliver(
                [(0, tuple(obs.values()), new.get(k)) for k, obs in watches.items()]
            )
        changed = new.changed_keys_since(old)
        if changed is None:
            self.stats.fallbacks += 1
            candidates: Any = list(watches)
        elif len(changed) <= len(watches):
            candidates = changed
        else:
            candidates = [k for k in watches if k in changed]
        checked = 0
        deliveries: list[_Delivery[V]] = []
        for key in candidates:
            observers = watches.get(key)
            if observers is None:
                continue
            checked += 1
            before = old.get(key, _MISSING)
            after = new.get(key, _MISSING)
            if before is after or before == after:
                continue
            deliveries.append(
                (
                    next(iter(observers)),
                    tuple(observers.values()),
                    None if after is _MISSING else after,
                )
            )
        if not checked:
            # The usual state for a few watched rows among many entities: a key nobody watches
            # changed. Nothing to count or deliver.
            return None
        self.stats.keys_checked += checked
        if not deliveries:
            return None
        if len(deliveries) > 1:
            # Changed keys come in hash order; deliver in the order keys were first subscribed
            # (a key's oldest token) so runs are reproducible whatever the hash seed.
            deliveries.sort(key=_oldest_token)
        return self._deliver(deliveries)

    def _deliver(self, deliveries: list[_Delivery[V]]) -> Exception | None:
        # Snapshots were taken before the first emission: a subscriber added by an emission gets
        # the new value once (from _add), not again from this round.
        error: Exception | None = None
        for _, observers, value in deliveries:
            for observer in observers:
                self.stats.emissions += 1
                try:
                    observer.on_next(value)
                except Exception as exc:  # one failing subscriber must not starve the others
                    error = error or exc
        return error

    def _on_error(self, error: Exception) -> None:
        for observer in self._detach_all():
            observer.on_error(error)

    def _on_completed(self) -> None:
        for observer in self._detach_all():
            observer.on_completed()

    def _detach_all(self) -> list[abc.ObserverBase[V | None]]:
        with self._lock:
            observers = [o for watch in self._watches.values() for o in watch.values()]
            self._watches.clear()
            self._upstream = None
            self._last = None
        return observers
