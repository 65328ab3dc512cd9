"""Reactive outputs of the WebSocketManager: connection state, health, actions, per-channel
publications. Kept apart from the socket pump so each half stays small.

Everything here runs on the event loop thread: observers are called synchronously, in protocol
order (a ``ResyncRequired`` action reaches ``actions`` before the publications that follow it
reach ``publications(channel)``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.disposable import Disposable
from reactivex.subject import BehaviorSubject, Subject

from reactive_aiops.core.connection import (
    ConnectionAction,
    ConnectionHealth,
    ConnectionState,
    connection_reducer,
)
from reactive_aiops.protocol import Event, PublicationReceived
from reactive_aiops.wire import Publication


class SubscriptionError(Exception):
    """The server refused or ended a channel subscription for good (``code``, ``reason``).

    Raised into the channel's publication observers; subscribe again to retry.
    """

    def __init__(self, channel: str, code: int, reason: str) -> None:
        super().__init__(f"{channel}: {code} {reason}")
        self.channel = channel
        self.code = code
        self.reason = reason


logger = logging.getLogger("reactive_aiops.net.client")

_T = TypeVar("_T")


def _health(state: ConnectionState) -> ConnectionHealth:
    return state.health


def _isolated(source: reactivex.Observable[_T]) -> reactivex.Observable[_T]:
    """``source`` where an observer whose ``on_next`` raises is logged and skipped, so it
    cannot starve the observers after it (a Subject stops at the first exception)."""

    def subscribe(
        observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        def on_next(value: _T) -> None:
            try:
                observer.on_next(value)
            except Exception:
                logger.exception("observer raised on %s", type(value).__name__)

        return source.subscribe(on_next, observer.on_error, observer.on_completed)

    return reactivex.create(subscribe)


class ClientStreams:
    """Subjects fed by the manager; observables handed to the application."""

    def __init__(self) -> None:
        self._state = connection_reducer(None, None)
        self._states: BehaviorSubject[ConnectionState] = BehaviorSubject(self._state)
        self._actions: Subject[ConnectionAction] = Subject()
        self._events: Subject[Event] = Subject()
        self._batches: Subject[list[Event]] = Subject()
        # plain callbacks (see listen_batches); a tuple, replaced on change: safe to iterate
        self._batch_listeners: tuple[Callable[[list[Event]], None], ...] = ()
        self._channels: dict[str, Subject[Publication]] = {}
        # Bare holds (see hold()): the release of each, per channel, in acquisition order.
        self._holds: dict[str, list[Callable[[], None]]] = {}
        self.states: reactivex.Observable[ConnectionState] = _isolated(
            self._states.pipe(ops.distinct_until_changed(lambda s: s, lambda a, b: a is b))
        )
        self.health: reactivex.Observable[ConnectionHealth] = _isolated(
            self._states.pipe(ops.map(_health), ops.distinct_until_changed())
        )
        self.actions: reactivex.Observable[ConnectionAction] = _isolated(self._actions)
        self.events: reactivex.Observable[Event] = _isolated(self._events)
        self.event_batches: reactivex.Observable[list[Event]] = _isolated(self._batches)

    @property
    def state(self) -> ConnectionState:
        """The current connection slice."""
        return self._state

    def apply(self, event: Event, is_action: bool) -> None:
        """Fold a connection action into the state, then tell observers."""
        if is_action:
            new = connection_reducer(self._state, event)
            if new is not self._state:
                self._state = new
                self._states.on_next(new)
            self._actions.on_next(event)  # type: ignore[arg-type]
        if self._events.observers:  # a bridge may listen to event_batches only
            self._events.on_next(event)

    def apply_batch(self, events: list[Event]) -> None:
        """Tell ``event_batches`` observers and batch listeners about the events of one
        protocol step (one frame), after each went through :meth:`apply`."""
        for listener in self._batch_listeners:
            try:
                listener(events)
            except Exception:
                logger.exception("batch listener raised on %d events", len(events))
        if self._batches.observers:
            _deliver(self._batches, events)

    def listen_batches(self, listener: Callable[[list[Event]], None]) -> abc.DisposableBase:
        """Call ``listener`` with each batch, as an ``event_batches`` observer would be, but
        directly: no observer chain on the per-frame path. Dispose to stop."""
        self._batch_listeners = (*self._batch_listeners, listener)

        def dispose() -> None:
            self._batch_listeners = tuple(x for x in self._batch_listeners if x is not listener)

        return Disposable(dispose)

    def publication(self, event: PublicationReceived) -> None:
        """An in-order publication: :meth:`publish` and :meth:`apply` (not an action) in one
        call, as the pump hands on every one."""
        subject = self._channels.get(event.channel)
        if subject is not None:
            _deliver(subject, event.publication)
        if self._events.observers:
            self._events.on_next(event)

    def publish(self, channel: str, publication: Publication) -> None:
        """Deliver one in-order publication to the channel's observers."""
        subject = self._channels.get(channel)
        if subject is not None:
            _deliver(subject, publication)

    def fail_channel(self, channel: str, error: Exception) -> None:
        """End the channel's observers with ``error`` (their disposal drops the references)."""
        subject = self._channels.pop(channel, None)
        if subject is not None:
            subject.on_error(error)
        # A hold ends with the channel too, as an observer's subscription would.
        for release in self._holds.pop(channel, ()):
            release()

    def channel(
        self, name: str, acquire: Callable[[], None], release: Callable[[], None]
    ) -> reactivex.Observable[Publication]:
        """A cold-looking, ref-counted view of one channel: each subscription holds one
        reference (``acquire``) until disposed (``release``)."""

        def subscribe(
            observer: abc.ObserverBase[Publication], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            subject = self._channels.get(name)
            if subject is None:
                subject = self._channels[name] = Subject()
            inner = _isolated(subject).subscribe(observer)
            acquire()
            released = False

            def dispose() -> None:
                nonlocal released
                if released:
                    return
                released = True
                inner.dispose()
                release()
                current = self._channels.get(name)
                if current is subject and not subject.observers:
                    del self._channels[name]

            return Disposable(dispose)

        return reactivex.create(subscribe)

    def hold(
        self, name: str, acquire: Callable[[], None], release: Callable[[], None]
    ) -> abc.DisposableBase:
        """One reference to a channel with no observer: what subscribing to :meth:`channel`
        with an observer that does nothing gives (``acquire`` now, ``release`` once on dispose
        or when the channel fails), minus its calls on every publication."""
        released = False

        def dispose() -> None:
            nonlocal released
            if released:
                return
            released = True
            holds = self._holds.get(name)
            if holds is not None and dispose in holds:
                holds.remove(dispose)
                if not holds:
                    del self._holds[name]
            release()

        self._holds.setdefault(name, []).append(dispose)
        acquire()
        return Disposable(dispose)

    def complete(self) -> None:
        """Complete every stream (the manager is being discarded)."""
        for subject in list(self._channels.values()):
            subject.on_completed()
        self._channels.clear()
        self._actions.on_completed()
        self._events.on_completed()
        self._batches.on_completed()
        self._states.on_completed()


def _deliver(subject: Subject[_T], value: _T) -> None:
    """``subject.on_next(value)`` minus its per-call lock and checks, for the per-event path.

    The same observers get the same call: these subjects are never disposed, and one that
    completed or failed has no observers left (and is no longer reachable here).
    """
    observers = subject.observers
    if observers and not subject.is_stopped:
        for observer in observers.copy():
            observer.on_next(value)


def describe(value: Any) -> str:
    """Short text of an exception for reasons in the connection state."""
    text = str(value) or type(value).__name__
    return text if len(text) <= 200 else text[:197] + "..."
