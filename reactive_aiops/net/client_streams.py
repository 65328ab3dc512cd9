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
from reactive_aiops.protocol import Event, PublicationReceived, RawPublicationReceived
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

    def __init__(self, raw_changed: Callable[[bool], None] | None = None) -> None:
        # told whether a batch listener takes raw publications, whenever that changes
        self._raw_changed = raw_changed
        self._state = connection_reducer(None, None)
        self._states: BehaviorSubject[ConnectionState] = BehaviorSubject(self._state)
        self._actions: Subject[ConnectionAction] = Subject()
        self._events: Subject[Event] = Subject()
        self._batches: Subject[list[Event]] = Subject()
        # plain callbacks (see listen_batches) and whether each takes raw publications; a
        # tuple, replaced on change: safe to iterate
        self._batch_listeners: tuple[tuple[Callable[[list[Event]], None], bool], ...] = ()
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

    def deliver(self, events: list[Event], handle: Callable[[Event], None]) -> None:
        """The events of one protocol step (one frame), in order: each publication to its
        channel's and :attr:`events` observers (a raw one only if someone observes), anything
        else to ``handle`` (which calls :meth:`apply`); then the whole list to the batch
        listeners and ``event_batches`` observers. Only a listener that asked for them sees
        ``RawPublicationReceived``; the others, as the observers, get the
        ``PublicationReceived`` each stands for. Whatever raises is logged, and delivery goes
        on."""
        for event in events:
            try:
                kind = type(event)
                if kind is RawPublicationReceived:
                    if self._channels or self._events.observers:
                        self.publication(event.received())  # type: ignore[union-attr]
                elif kind is PublicationReceived:
                    self.publication(event)  # type: ignore[arg-type]
                else:
                    handle(event)
            except Exception:
                logger.exception("error while delivering %s", type(event).__name__)
        decoded: list[Event] | None = None
        for listener, raw in self._batch_listeners:
            if not raw and decoded is None:
                decoded = _decoded(events)
            try:
                listener(events if raw else decoded)  # type: ignore[arg-type]
            except Exception:
                logger.exception("batch listener raised on %d events", len(events))
        if self._batches.observers:
            _deliver(self._batches, _decoded(events) if decoded is None else decoded)

    @property
    def raw_listened(self) -> bool:
        """True while a batch listener takes raw publications."""
        return any(raw for _, raw in self._batch_listeners)

    def listen_batches(
        self, listener: Callable[[list[Event]], None], *, raw: bool = False
    ) -> abc.DisposableBase:
        """Call ``listener`` with each batch, as an ``event_batches`` observer would be, but
        directly: no observer chain on the per-frame path. With ``raw`` the batches keep
        their ``RawPublicationReceived`` events. Dispose to stop."""
        entry = (listener, raw)
        self._batch_listeners = (*self._batch_listeners, entry)
        self._tell_raw()

        def dispose() -> None:
            self._batch_listeners = tuple(x for x in self._batch_listeners if x is not entry)
            self._tell_raw()

        return Disposable(dispose)

    def _tell_raw(self) -> None:
        if self._raw_changed is not None:
            self._raw_changed(self.raw_listened)

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


def _decoded(events: list[Event]) -> list[Event]:
    """``events`` with each ``RawPublicationReceived`` as its ``PublicationReceived``."""
    if not any(type(e) is RawPublicationReceived for e in events):
        return events
    return [e.received() if type(e) is RawPublicationReceived else e for e in events]


def describe(value: Any) -> str:
    """Short text of an exception for reasons in the connection state."""
    text = str(value) or type(value).__name__
    return text if len(text) <= 200 else text[:197] + "..."
