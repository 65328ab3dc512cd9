"""Wire events as actions, and the declarative table that maps them to domain actions.

The bridge turns each publication into a :class:`ServerEvent` (an :class:`EventMeta` plus the raw
JSON payload) and dispatches it. An :class:`EventTable` decodes it, with its own dedicated cattrs
converter, into the domain action its :class:`EventRoute` names::

    table = EventTable(
        [EventRoute("anomalies", "anomaly.upserted", Anomaly, AnomalyUpserted.from_event)],
        converter=cattrs.Converter(),
    )
    store = create_store(reducer, middleware=[map_events(table)])
    store.dispatch(ServerEvent(EventMeta("anomalies", "anomaly.upserted", offset=7), payload))

Nothing is dropped silently: an event type (or a schema version newer than the table knows)
without a route becomes :class:`UnknownEvent`; a payload that fails to decode becomes
:class:`MalformedEvent` with a readable reason. Both keep the meta and the raw payload.

The event meta protocol: an action *is a server event* when it has an attribute ``meta`` holding
an :class:`EventMeta` (:func:`event_meta` reads it). Dedupe keys and echo matching
(:func:`command_id_of`, used by the optimistic journal) read only that, so a command action that
happens to have a ``command_id`` field is never mistaken for an echo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import attrs
import cattrs
import cattrs.v

from reactive_aiops.core.actions import Batch, action
from reactive_aiops.core.compose import Dispatch, Middleware, StoreAPI

P = TypeVar("P")


@attrs.frozen
class EventMeta:
    """Where and how an event arrived: the dedupe key, the echo key and the schema.

    ``offset``/``epoch`` are the channel's stream position (``None`` without history);
    ``event_id`` is the envelope's unique ``id``; ``command_id`` names the RPC command that caused
    the event (the optimistic transaction id); ``sent_ts`` is the server's send time.
    """

    channel: str
    event_type: str
    version: int = 1
    event_id: str | None = None
    offset: int | None = None
    epoch: str | None = None
    command_id: str | None = None
    sent_ts: float | None = None


@action
class ServerEvent:
    """A wire event not yet decoded: ``data`` is the envelope's raw JSON ``data`` payload."""

    meta: EventMeta
    data: Any


@action
class UnknownEvent:
    """An event the table has no route for (unknown type, or a newer schema version)."""

    meta: EventMeta
    data: Any
    reason: str


@action
class MalformedEvent:
    """An event whose payload failed to decode; ``reason`` says which field and why."""

    meta: EventMeta
    data: Any
    reason: str


def event_meta(act: object) -> EventMeta | None:
    """Return the :class:`EventMeta` of a server-event action, or ``None`` for other actions."""
    meta = getattr(act, "meta", None)
    return meta if isinstance(meta, EventMeta) else None


def command_id_of(act: object) -> str | None:
    """Return the command id a server event echoes, or ``None`` (also for non-event actions)."""
    meta = getattr(act, "meta", None)
    return meta.command_id if isinstance(meta, EventMeta) else None


@attrs.frozen
class EventRoute(Generic[P]):
    """One row of the table: events of ``event_type`` at schema ``version`` on matching channels.

    ``channel`` is an exact name, or a prefix ending in ``*`` (``"detectors:*"``), or ``"*"`` for
    any channel. ``payload`` is the class the payload decodes to; ``build(payload, meta)`` makes
    the domain action (attach ``meta`` so dedupe and echo matching can see it).
    """

    channel: str
    event_type: str
    payload: type[P]
    build: Callable[[P, EventMeta], object]
    version: int = 1

    def matches(self, channel: str) -> bool:
        """True when this route applies to events on ``channel``."""
        pattern = self.channel
        if pattern.endswith("*"):
            return channel.startswith(pattern[:-1])
        return channel == pattern


_Compiled = tuple[EventRoute[Any], Callable[[Any, Any], Any], bool]
#: Bound on the table's compiled-route cache (one entry per channel, type and version seen).
_MAX_COMPILED = 1024


class EventTable:
    """Decodes wire events to domain actions by (channel, event type, schema version).

    ``converter`` is the table's own cattrs converter (a fresh ``cattrs.Converter()`` if omitted;
    the global one is never used). Raises ``ValueError`` if two routes claim the same channel
    pattern, type and version.
    """

    def __init__(
        self, routes: Iterable[EventRoute[Any]], *, converter: cattrs.Converter | None = None
    ) -> None:
        self.converter = converter if converter is not None else cattrs.Converter()
        self._by_type: dict[str, list[EventRoute[Any]]] = {}
        seen: set[tuple[str, str, int]] = set()
        for route in routes:
            key = (route.channel, route.event_type, route.version)
            if key in seen:
                raise ValueError(f"duplicate event route {key}")
            seen.add(key)
            self._by_type.setdefault(route.event_type, []).append(route)
        #: (channel, type, version) -> (route, its payload's structure hook, payload is attrs);
        #: filled on first use, so the per-event cost is one dict lookup (bounded, see decode).
        self._compiled: dict[tuple[str, str, int], _Compiled] = {}

    @property
    def routes(self) -> tuple[EventRoute[Any], ...]:
        """Every route, grouped by event type."""
        return tuple(r for group in self._by_type.values() for r in group)

    def route_for(self, meta: EventMeta) -> EventRoute[Any] | None:
        """The route for ``meta``'s channel, type and version, or ``None``."""
        for route in self._by_type.get(meta.event_type, ()):
            if route.version == meta.version and route.matches(meta.channel):
                return route
        return None

    def decode(self, meta: EventMeta, data: Any) -> object:
        """Return the domain action for one event; never raises for bad input.

        Returns :class:`UnknownEvent` when no route matches and :class:`MalformedEvent` when the
        payload does not decode (or ``build`` rejects it with ``ValueError``/``TypeError``).
        """
        key = (meta.channel, meta.event_type, meta.version)
        compiled = self._compiled.get(key)
        if compiled is None:
            route = self.route_for(meta)
            if route is None:
                return UnknownEvent(meta, data, self._why_unknown(meta))
            hook = self.converter.get_structure_hook(route.payload)
            compiled = (route, hook, attrs.has(route.payload))
            if len(self._compiled) >= _MAX_COMPILED:  # many per-entity channels: start over
                self._compiled.clear()
            self._compiled[key] = compiled
        route, structure, wants_object = compiled
        if wants_object and type(data) is not dict and not isinstance(data, Mapping):
            return MalformedEvent(meta, data, f"expected a JSON object, got {type(data).__name__}")
        try:
            payload: object = structure(data, route.payload)
            return route.build(payload, meta)
        except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, OverflowError) as exc:
            return MalformedEvent(meta, data, describe_error(exc))

    def _why_unknown(self, meta: EventMeta) -> str:
        candidates = [r for r in self._by_type.get(meta.event_type, ()) if r.matches(meta.channel)]
        if not candidates:
            if meta.event_type in self._by_type:
                return f"event type {meta.event_type!r} is not expected on channel {meta.channel!r}"
            return f"unknown event type {meta.event_type!r}"
        known = sorted(r.version for r in candidates)
        newer = " (newer than this client)" if meta.version > known[-1] else ""
        return f"{meta.event_type!r} version {meta.version}{newer} is not supported; known {known}"


def describe_error(exc: BaseException, path: str = "data") -> str:
    """A one-line, human-readable account of a cattrs (or plain) structuring failure."""
    if isinstance(exc, cattrs.BaseValidationError):
        notes = cattrs.transform_error(exc, path=path, format_exception=_format_leaf)
        return "; ".join(notes) if notes else str(exc)
    return f"{type(exc).__name__}: {exc}"


def _format_leaf(exc: BaseException, type_: type | None) -> str:
    # A ValueError raised by a hook or a validator already says what is wrong; the default
    # formatter would replace it with a generic "invalid value".
    if type(exc) is ValueError and str(exc):
        return str(exc)
    if isinstance(exc, TypeError) and len(exc.args) > 1 and isinstance(exc.args[0], str):
        return exc.args[0]  # an attrs validator: (message, attribute, expected, value)
    return cattrs.v.format_exception(exc, type_)


def map_events(table: EventTable) -> Middleware:
    """Middleware replacing each :class:`ServerEvent` (also inside a ``Batch``) with
    ``table.decode(...)``; every other action passes through unchanged."""

    def middleware(api: StoreAPI[Any]) -> Callable[[Dispatch], Dispatch]:
        def wrap(next_: Dispatch) -> Dispatch:
            def dispatch(act: object) -> Any:
                if type(act) is ServerEvent:
                    return next_(table.decode(act.meta, act.data))
                if type(act) is Batch and ServerEvent in map(type, act.actions):
                    decode = table.decode
                    return next_(
                        Batch(
                            tuple(
                                [
                                    decode(a.meta, a.data) if type(a) is ServerEvent else a
                                    for a in act.actions
                                ]
                            )
                        )
                    )
                return next_(act)

            return dispatch

        return wrap

    return middleware
