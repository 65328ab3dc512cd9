"""The store: one state, changed only by dispatching actions through middleware to a reducer.

Threading model
---------------
``dispatch`` may be called from any thread. A re-entrant lock serialises dispatches, so the
reducer, middleware, listeners and stream subscribers all run on the thread that called
``dispatch`` while it holds the lock, one dispatch at a time. A UI moves delivery onto its own
thread with an adapter (``reactive_aiops.ui``) or ``observe_on`` with its mainloop scheduler; it
never reads state from a half-finished dispatch because the new state is published only after
the reducer returned.

Re-entrancy
-----------
* Inside a reducer, ``dispatch`` raises :class:`DispatchInReducerError`.
* Inside middleware, ``api.dispatch`` runs synchronously through the whole chain (Redux).
* From a listener, a stream subscriber or an epic (that is, while the store notifies),
  ``dispatch`` is queued and runs after the current dispatch finished notifying, in order.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject

from reactive_aiops.core.actions import Batch, Init, ReplaceReducer
from reactive_aiops.core.batching import reduce_many_of
from reactive_aiops.core.compose import Dispatch, Middleware, compose
from reactive_aiops.core.epics import Epic, _EpicRunner
from reactive_aiops.core.errors import (
    DispatchInReducerError,
    MiddlewareSetupError,
    ReducerError,
)

S = TypeVar("S")
T = TypeVar("T")

#: ``reducer(state, action) -> new state``; ``state`` is None when the initial one is wanted.
Reducer = Callable[[Any, Any], S]

_log = logging.getLogger(__name__)


class _Callbacks(Generic[T]):
    """Subscribers kept in a dict, snapshotted to a tuple only when the set changed.

    Notifying iterates a tuple (fast, and safe against subscribe/unsubscribe from a callback);
    unsubscribing is O(1) so 10,000 subscribers can leave without quadratic cost.
    """

    __slots__ = ("_by_token", "_counter", "_snapshot")

    def __init__(self) -> None:
        self._by_token: dict[int, Callable[[T], None]] = {}
        self._snapshot: tuple[Callable[[T], None], ...] | None = ()
        self._counter = itertools.count()

    def add(self, callback: Callable[[T], None]) -> int:
        token = next(self._counter)
        self._by_token[token] = callback
        self._snapshot = None
        return token

    def remove(self, token: int) -> None:
        if self._by_token.pop(token, None) is not None:
            self._snapshot = None

    def snapshot(self) -> tuple[Callable[[T], None], ...]:
        snap = self._snapshot
        if snap is None:
            snap = self._snapshot = tuple(self._by_token.values())
        return snap

    def __len__(self) -> int:
        return len(self._by_token)


class _StateStream(Observable[S]):
    """``Store.states``: the current state on subscribe, then every new state by identity."""

    def __init__(self, store: Store[S]) -> None:
        super().__init__()
        self._store = store

    def _subscribe_core(
        self, observer: abc.ObserverBase[S], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        store = self._store
        with store._lock:
            token = store._state_callbacks.add(observer.on_next)
            observer.on_next(store._state)
        return Disposable(lambda: store._state_callbacks.remove(token))


class _SelectStream(Observable[T]):
    """``Store.select``: ``selector(state)`` now, then only when the value changes."""

    def __init__(self, store: Store[Any], selector: Callable[[Any], T]) -> None:
        super().__init__()
        self._store = store
        self._selector = selector

    def _subscribe_core(
        self, observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        store = self._store
        selector = self._selector
        on_next = observer.on_next
        with store._lock:
            last = selector(store._state)

            def on_state(state: Any) -> None:
                nonlocal last
                value = selector(state)
                # Identity first: memoized selectors return the same object when nothing changed,
                # so the (possibly deep) equality check runs only for genuinely new objects.
                if value is last or value == last:
                    return
                last = value
                on_next(value)

            token = store._state_callbacks.add(on_state)
            on_next(last)
        return Disposable(lambda: store._state_callbacks.remove(token))


class _ActionStream(Observable[Any]):
    """``Store.actions``: every action that reached the reducer, in order (no replay)."""

    def __init__(self, store: Store[Any]) -> None:
        super().__init__()
        self._store = store

    def _subscribe_core(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        store = self._store
        with store._lock:
            token = store._action_callbacks.add(observer.on_next)
        return Disposable(lambda: store._action_callbacks.remove(token))


class _API(Generic[S]):
    """The :class:`StoreAPI` handed to middleware."""

    __slots__ = ("_store", "dispatch", "get_state")

    def __init__(self, store: Store[S]) -> None:
        self._store = store
        #: the store's own bound method, not a method calling it: middleware that dispatches
        #: (a bridge does, once per frame) saves a call
        self.dispatch: Callable[[object], Any] = store.dispatch
        #: reads the attribute in C (no Python frame): middleware reading the state once per
        #: event (the optimistic expiry does) saves a call
        self.get_state: Callable[[], S] = functools.partial(getattr, store, "_state")

    @property
    def state(self) -> S:
        return self._store._state


class Store(Generic[S]):
    """A Redux store. Create it with :func:`create_store`; see the module docstring for threads."""

    def __init__(
        self,
        reducer: Reducer[S],
        initial_state: S | None,
        middleware: Sequence[Middleware],
        epics: Sequence[Epic],
        epic_scheduler: abc.SchedulerBase | None,
        epic_backoff: tuple[float, float],
    ) -> None:
        self._reducer: Reducer[S] = reducer
        self._lock = threading.RLock()
        self._reducing = False
        self._notifying = False
        self._depth = 0
        self._queue: deque[object] = deque()
        self._state_callbacks: _Callbacks[Any] = _Callbacks()
        self._action_callbacks: _Callbacks[Any] = _Callbacks()
        self._listeners: _Callbacks[None] = _Callbacks()
        self._errors: Subject[BaseException] = Subject()
        self._closed = False
        self._state: S = reducer(initial_state, Init())
        self.states: Observable[S] = _StateStream(self)
        self.actions: Observable[Any] = _ActionStream(self)
        self._dispatch_chain: Dispatch = self._refuse_during_setup
        if middleware:
            api = _API(self)
            chain = [mw(api) for mw in middleware]
            self._dispatch_chain = compose(*chain)(self._reduce)
        else:
            self._dispatch_chain = self._reduce
        self._epics: list[_EpicRunner] = []
        if epics:
            scheduler = epic_scheduler or reactivex.scheduler.TimeoutScheduler.singleton()
            for epic in epics:
                runner = _EpicRunner(self, epic, scheduler, epic_backoff)
                self._epics.append(runner)
                runner.start()

    # -- reading -------------------------------------------------------------------------------

    @property
    def state(self) -> S:
        """The current state (immutable; never a half-applied one)."""
        return self._state

    def get_state(self) -> S:
        """The current state; the same as :attr:`state`, for Redux familiarity."""
        return self._state

    @property
    def errors(self) -> Observable[BaseException]:
        """Errors raised by listeners, subscribers or queued dispatches, which have no caller.

        Each is also logged. A raising listener does not stop the others from being notified.
        """
        return self._errors

    def select(self, selector: Callable[[S], T]) -> Observable[T]:
        """An Observable of ``selector(state)``: the current value, then each change.

        A change is a value that is neither identical nor equal to the previous one, so
        subscribers never see the same value twice in a row. Use a memoized selector
        (:func:`create_selector`) so unchanged inputs cost one identity check.
        """
        return _SelectStream(self, selector)

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every dispatch that changed the state.

        Returns a function that unsubscribes; calling it twice is harmless.
        """
        token = self._listeners.add(lambda _none: listener())
        return lambda: self._listeners.remove(token)

    # -- writing -------------------------------------------------------------------------------

    def dispatch(self, action: object) -> Any:
        """Run ``action`` through the middleware to the reducer and notify subscribers.

        Returns what the middleware chain returns (the action itself without middleware).
        Raises :class:`ReducerError` if the reducer raised (the state is unchanged) and
        :class:`DispatchInReducerError` if called from inside a reducer. Called while the store
        is notifying (from a listener, subscriber or epic), the action is queued and runs right
        after the current dispatch; the call then returns the action.
        """
        with self._lock:
            if self._reducing:
                raise DispatchInReducerError(action)
            if self._notifying:
                self._queue.append(action)
                return action
            if self._depth:
                return self._dispatch_chain(action)
            self._depth = 1
            try:
                result = self._dispatch_chain(action)
            finally:
                self._depth = 0
            if self._queue:
                self._drain()
            return result

    def dispatch_batch(self, actions: Iterable[object]) -> Any:
        """Apply ``actions`` in order, all or nothing, with a single notification.

        If any reducer call raises, none of the actions is applied and :class:`ReducerError`
        names the one that failed. Middleware sees one :class:`~reactive_aiops.core.actions.Batch`.
        A reducer carrying ``reduce_many`` (:mod:`reactive_aiops.core.batching`) applies the
        batch in one call; if that raises, the actions are folded one by one instead, to name
        the failing one (or, should only ``reduce_many`` raise, to apply the fold's state).
        """
        return self.dispatch(Batch(tuple(actions)))

    def replace_reducer(self, reducer: Reducer[S]) -> None:
        """Use ``reducer`` from now on; dispatches ``ReplaceReducer`` so it can add its slices."""
        with self._lock:
            self._reducer = reducer
        self.dispatch(ReplaceReducer())

    def close(self) -> None:
        """Stop the epics and complete the streams. Dispatching afterwards still works."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for runner in self._epics:
                runner.stop()
            self._epics.clear()
            self._errors.on_completed()

    # -- internals -----------------------------------------------------------------------------

    def _refuse_during_setup(self, action: object) -> Any:
        raise MiddlewareSetupError()

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            queued = queue.popleft()
            self._depth = 1
            try:
                self._dispatch_chain(queued)
            except Exception as exc:  # nobody is waiting for this result
                self._report(exc)
            finally:
                self._depth = 0

    def _report(self, exc: BaseException) -> None:
        _log.error("error in a store subscriber or queued dispatch", exc_info=exc)
        self._errors.on_next(exc)

    def _reduce(self, action: object) -> Any:
        """The innermost dispatch: apply the reducer, publish the state, notify."""
        old = self._state
        if type(action) is Batch:
            applied: Sequence[object] = action.actions
            new = self._reduce_batch(old, applied)
        else:
            self._reducing = True
            try:
                new = self._reducer(old, action)
            except Exception as exc:
                raise ReducerError(action, exc) from exc
            finally:
                self._reducing = False
            applied = (action,)
        self._state = new
        # Notifying, here rather than in a method of its own (one call less per dispatch).
        # Each snapshot is read from its attribute (``_Callbacks.snapshot()`` only when a
        # subscription changed since).
        self._notifying = True
        try:
            if new is not old:
                snap = self._state_callbacks._snapshot
                for callback in snap if snap is not None else self._state_callbacks.snapshot():
                    try:
                        callback(new)
                    except Exception as exc:  # isolate subscribers
                        self._report(exc)
                snap = self._listeners._snapshot
                for listener in snap if snap is not None else self._listeners.snapshot():
                    try:
                        listener(None)
                    except Exception as exc:  # isolate listeners
                        self._report(exc)
            action_callbacks = self._action_callbacks._snapshot
            if action_callbacks is None:
                action_callbacks = self._action_callbacks.snapshot()
            if action_callbacks:
                for act in applied:
                    for callback in action_callbacks:
                        try:
                            callback(act)
                        except Exception as exc:  # isolate subscribers
                            self._report(exc)
        finally:
            self._notifying = False
        return action

    def _reduce_batch(self, old: S, applied: Sequence[object]) -> S:
        reducer = self._reducer
        self._reducing = True
        try:
            many = reduce_many_of(reducer) if len(applied) > 1 else None
            if many is None:
                return _fold_naming(reducer, old, applied)
            try:
                result: S = many(old, applied)
                return result
            except Exception as exc:
                # The fold is the reference: it names the failing action, or (if reduce_many
                # raised where the fold does not) gives the right state.
                new = _fold_naming(reducer, old, applied)
                _log.warning(
                    "reduce_many raised but the fold did not; the fold's state is used",
                    exc_info=exc,
                )
                return new
        finally:
            self._reducing = False


def _fold_naming(reducer: Reducer[S], state: S, actions: Sequence[object]) -> S:
    """Fold ``actions`` into ``state``; a raising action is named by :class:`ReducerError`."""
    for inner in actions:
        try:
            state = reducer(state, inner)
        except Exception as exc:
            raise ReducerError(inner, exc) from exc
    return state


def create_store(
    reducer: Reducer[S],
    *,
    initial_state: S | None = None,
    middleware: Sequence[Middleware] = (),
    epics: Sequence[Epic] = (),
    epic_scheduler: abc.SchedulerBase | None = None,
    epic_backoff: tuple[float, float] = (0.1, 30.0),
) -> Store[S]:
    """Create a :class:`Store`.

    ``reducer(state, action)`` is called with ``initial_state`` (None by default) and
    :class:`~reactive_aiops.core.actions.Init` to produce the first state. ``middleware`` wraps
    dispatch, the first one outermost. Each epic's output is dispatched in order; an epic that
    errors is reported as an :class:`~reactive_aiops.core.actions.EffectFailed` action and
    restarted after an exponential backoff between ``epic_backoff`` (initial, maximum) seconds,
    timed on ``epic_scheduler`` (pass a ``TestScheduler`` in tests).
    """
    return Store(reducer, initial_state, middleware, epics, epic_scheduler, epic_backoff)
