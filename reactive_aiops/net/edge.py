"""Decoding a live publication once, at the edge, straight into its domain action (and the
slow path's :func:`publication_action`, which ``net.bridge`` re-exports).

The slow path turns a publication into a :class:`~reactive_aiops.core.events.ServerEvent`
(:func:`~reactive_aiops.net.bridge.publication_action` checks the envelope) that the store's
``map_events`` middleware decodes with the event table (the payload into the domain model).
:class:`EdgeDecoder` does both in one ``msgspec.convert`` of the publication's data into a
struct of the envelope whose ``data`` field is the route's payload class (an attrs model:
msgspec builds it, validators included), then builds the route's action with its
:class:`~reactive_aiops.core.events.EventMeta`: no ``ServerEvent``, no second pass.

It answers only where the answer is the slow path's, exactly: version 1 envelopes (the only
version whose envelope the slow path checks) of routes whose payload the table itself converts
with msgspec first (:func:`~reactive_aiops.aiops.event_table.converts_with_msgspec`; a custom
converter's hooks are never bypassed), and only when the conversion and ``build`` succeed.
Everything else -- an unknown type, a newer version, a bad envelope or payload -- gets ``None``
and takes the slow path, which produces the same ``UnknownEvent`` / ``MalformedEvent`` (with
its reason) as before.

:meth:`EdgeDecoder.decode_raw` gives the same answer from the data's JSON text (a
``RawPublicationReceived``): one typed decode of the text straight into the envelope and its
payload, so the generic dict of the data is never built.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable
from typing import Any

import attrs
import msgspec

from reactive_aiops.aiops.event_table import action_with_meta, converts_with_msgspec
from reactive_aiops.core._fastinit import fast_constructor, fast_copier
from reactive_aiops.core.events import EventMeta, EventTable, MalformedEvent, ServerEvent
from reactive_aiops.wire import Publication
from reactive_aiops.wire.events import ENVELOPE_VERSION, EventError, decode_event

__all__ = ["EdgeDecoder", "publication_action"]

#: Bound on the per-(channel, event type) cache, as the event table bounds its own.
_MAX_COMPILED = 1024

_Compiled = tuple[type[msgspec.Struct], Callable[[Any, EventMeta], object]] | None


def _envelope_struct(payload: type[Any], *, raw: bool = False) -> type[msgspec.Struct] | None:
    """The envelope with ``data`` typed as ``payload``; None if msgspec cannot handle it.

    ``raw``: the struct the JSON text is decoded into, which also carries the ``type`` (the
    decoded path has read it already)."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [("type", str)] if raw else []
    fields += [
        ("v", int),
        ("id", str),
        ("ts", float),
        ("data", payload),
        ("command_id", str | None, None),
    ]
    try:
        struct = msgspec.defstruct(
            f"{'RawEnvelope' if raw else 'Envelope'}_{payload.__name__}", fields
        )
        msgspec.inspect.type_info(struct)  # raises for a payload type msgspec cannot handle
    except (TypeError, ValueError):
        return None
    return struct


class _EventType(msgspec.Struct):
    type: Any = None


_peek_type = msgspec.json.Decoder(_EventType).decode

#: (event type, decode the raw envelope, ``make(payload, meta)``: the route's build, or the
#: action class's fast constructor where build is exactly ``cls(payload, meta=meta)``, and
#: ``to_payload(data)`` when the envelope's data is the payload's mirror struct (else None:
#: it is the payload))
_RawCompiled = tuple[
    str, Callable[[msgspec.Raw], Any], Callable[[Any, EventMeta], object],
    Callable[[Any], Any] | None,
]

#: Defaults a mirror struct may carry: immutable (attrs shares one default object between
#: instances; msgspec would copy a mutable one).
_PLAIN_DEFAULTS = (type(None), bool, int, float, str, bytes, enum.Enum)


def _mirror(payload: type[Any]) -> tuple[type[msgspec.Struct], Callable[[Any], Any]] | None:
    """A msgspec struct with the fields of the attrs class ``payload`` (names, types and
    defaults) and ``to_payload(struct)``, the ``payload`` instance msgspec would have built
    from the same JSON (``__attrs_post_init__`` included): msgspec decodes a struct in about
    a third of the time it takes to build an attrs instance. None for a class whose
    ``__init__`` does more than store its fields and call the hook (validators, converters),
    or with a field msgspec would read otherwise (a private name, a factory default)."""
    if not attrs.has(payload):
        return None
    to_payload = fast_copier(payload)
    if to_payload is None:
        return None
    try:
        hints = typing.get_type_hints(payload)
    except Exception:  # an unresolvable annotation: msgspec's own attrs path decides
        return None
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field in attrs.fields(payload):
        default = field.default
        if field.name.startswith("_") or field.name not in hints:
            return None
        if default is attrs.NOTHING:
            fields.append((field.name, hints[field.name]))
        elif isinstance(default, _PLAIN_DEFAULTS):
            fields.append((field.name, hints[field.name], default))
        else:
            return None
    try:
        struct = msgspec.defstruct(f"{payload.__name__}Fields", fields)
        msgspec.inspect.type_info(struct)  # raises for a field type msgspec cannot handle
    except (TypeError, ValueError):
        return None
    return struct, to_payload


#: ``EventMeta`` from its eight fields, positionally, without attrs' ``__init__`` (a quarter of
#: its cost, once per live event; the very same frozen object: core._fastinit).
_new_meta: Callable[..., EventMeta] = fast_constructor(EventMeta) or EventMeta


def _fast_build(build: Callable[[Any, EventMeta], object]) -> Callable[[Any, EventMeta], object]:
    """``build`` itself, or the action class's fast constructor when ``build(payload, meta)`` is
    exactly ``cls(payload, meta=meta)`` and the class's fields are just those two."""
    cls = action_with_meta(build)
    if cls is None or [f.name for f in attrs.fields(cls)][1:] != ["meta"]:
        return build
    fast = fast_constructor(cls)
    return build if fast is None else fast


class EdgeDecoder:
    """``decoder(channel, publication, epoch)``: the domain action of a live publication, or
    ``None`` when the slow path must decide (see the module doc)."""

    def __init__(self, table: EventTable) -> None:
        self.table = table
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._raw_compiled: dict[tuple[str, str], _RawCompiled | None] = {}
        # per channel, the route that decoded its last event: tried first (a channel carries
        # one event type, or a few, in practice)
        self._raw_last: dict[str, _RawCompiled] = {}

    def _compile(self, channel: str, event_type: str) -> _Compiled:
        route = self.table.route_for(EventMeta(channel, event_type, ENVELOPE_VERSION))
        compiled: _Compiled = None
        if route is not None and converts_with_msgspec(self.table.converter, route.payload):
            struct = _envelope_struct(route.payload)
            if struct is not None:
                compiled = (struct, route.build)
        if len(self._compiled) >= _MAX_COMPILED:  # many per-entity channels: start over
            self._compiled.clear()
        self._compiled[(channel, event_type)] = compiled
        return compiled

    def __call__(self, channel: str, pub: Publication, epoch: str) -> object | None:
        data = pub.data
        if type(data) is not dict:
            return None
        event_type = data.get("type")
        if type(event_type) is not str:
            return None
        key = (channel, event_type)
        compiled = self._compiled[key] if key in self._compiled else self._compile(*key)
        if compiled is None:
            return None
        struct, build = compiled
        try:
            env: Any = _convert(data, struct)
        except _REFUSED:  # whatever goes wrong, the slow path gives the verdict
            return None
        if env.v != ENVELOPE_VERSION:
            return None
        # Positional (channel, event_type, version, event_id, offset, epoch, command_id,
        # sent_ts), as publication_action builds it.
        meta = EventMeta(
            channel, event_type, 1, env.id, pub.offset or None, epoch or None, env.command_id,
            env.ts,
        )
        try:
            return build(env.data, meta)
        except _REFUSED:
            return None  # the table reports it (MalformedEvent) on the slow path

    def decode_raw(self, channel: str, offset: int, data: msgspec.Raw, epoch: str) -> object | None:
        """What ``decoder(channel, Publication(data, offset=offset), epoch)`` answers, from the
        data's JSON text (a ``RawPublicationReceived``): one typed decode straight into the
        envelope and its payload, no intermediate dict. ``None``: the slow path decides."""
        compiled = self._raw_last.get(channel)
        env: Any = None
        if compiled is not None:
            try:
                env = compiled[1](data)
            except _REFUSED:
                env = None
            if env is not None and env.type != compiled[0]:
                env = None  # another route's event that happens to fit: look it up
        if env is None:
            compiled, env = self._decode_other(channel, data, compiled)
            if env is None:
                return None
        if env.v != ENVELOPE_VERSION:
            return None
        meta = _new_meta(
            channel, env.type, 1, env.id, offset or None, epoch or None, env.command_id, env.ts
        )
        try:
            payload = env.data
            to_payload = compiled[3]  # type: ignore[index]
            if to_payload is not None:
                payload = to_payload(payload)
            return compiled[2](payload, meta)  # type: ignore[index]
        except _REFUSED:
            return None

    def _decode_other(
        self, channel: str, data: msgspec.Raw, tried: _RawCompiled | None
    ) -> tuple[_RawCompiled | None, Any]:
        """The event's own route (by its type) and the envelope it decodes to, when it is not
        the one ``tried``; ``(None, None)`` when there is none or it does not decode."""
        if not data:
            return None, None
        try:
            event_type = _peek_type(data).type
        except _REFUSED:
            return None, None
        if type(event_type) is not str or (tried is not None and event_type == tried[0]):
            return None, None
        key = (channel, event_type)
        compiled = self._raw_compiled[key] if key in self._raw_compiled else self._compile_raw(key)
        if compiled is None:
            return None, None
        try:
            env = compiled[1](data)
        except _REFUSED:
            return None, None
        if len(self._raw_last) >= _MAX_COMPILED:
            self._raw_last.clear()
        self._raw_last[channel] = compiled
        return compiled, env

    def _compile_raw(self, key: tuple[str, str]) -> _RawCompiled | None:
        channel, event_type = key
        route = self.table.route_for(EventMeta(channel, event_type, ENVELOPE_VERSION))
        compiled: _RawCompiled | None = None
        if route is not None and converts_with_msgspec(self.table.converter, route.payload):
            # the data decoded into the payload's mirror struct where there is one
            mirror = _mirror(route.payload)
            struct = _envelope_struct(route.payload if mirror is None else mirror[0], raw=True)
            if struct is not None:
                decode = msgspec.json.Decoder(struct).decode
                # the action class's fast constructor where that is all the builder does
                compiled = (
                    event_type, decode, _fast_build(route.build),
                    None if mirror is None else mirror[1],
                )
        if len(self._raw_compiled) >= _MAX_COMPILED:
            self._raw_compiled.clear()
        self._raw_compiled[key] = compiled
        return compiled


_convert = msgspec.convert
# DecodeError: ValidationError and the JSON decode's own (a raw decode's errors)
_REFUSED = (msgspec.DecodeError, ValueError, TypeError, KeyError, AttributeError, OverflowError)


class _Envelope(msgspec.Struct):
    """The event envelope as :func:`~reactive_aiops.wire.events.decode_event` accepts it, checked
    by one msgspec conversion (in C); whatever it refuses goes to ``decode_event`` for the
    verdict and the reason."""

    type: str
    v: int
    id: str
    ts: float
    data: Any  # a dict (checked after: converting to dict[str, Any] would copy it)
    command_id: str | None = None


def publication_action(channel: str, pub: Publication, epoch: str) -> object:
    """The store action for one publication: a :class:`ServerEvent`, or a
    :class:`MalformedEvent` (with the reason) when its data is not an event envelope."""
    offset = pub.offset or None
    try:
        fast = _convert(pub.data, _Envelope)
    except msgspec.ValidationError:
        pass
    else:
        if fast.v == ENVELOPE_VERSION and type(fast.data) is dict:
            # Positional (channel, event_type, version, event_id, offset, epoch, command_id,
            # sent_ts): attrs' __init__ binds keywords measurably slower, and this runs per event.
            meta = EventMeta(
                channel, fast.type, 1, fast.id, offset, epoch or None, fast.command_id, fast.ts
            )
            return ServerEvent(meta, fast.data)
    try:
        env = decode_event(pub.data)
    except EventError as exc:
        data = pub.data
        version = data.get("v") if isinstance(data, dict) else None
        etype = data.get("type") if isinstance(data, dict) else None
        if isinstance(etype, str) and type(version) is int and version > ENVELOPE_VERSION:
            # a newer schema: let the event table say so (UnknownEvent) rather than "malformed"
            meta = EventMeta(channel, etype, version, offset=offset, epoch=epoch or None)
            return ServerEvent(meta, data.get("data"))
        meta = EventMeta(
            channel, etype if isinstance(etype, str) else "", offset=offset, epoch=epoch or None
        )
        return MalformedEvent(meta, data, exc.reason)
    # Positional (channel, event_type, version, event_id, offset, epoch, command_id, sent_ts):
    # attrs' __init__ binds keywords measurably slower, and this runs once per event.
    meta = EventMeta(
        channel, env.type, env.v, env.id, offset, epoch or None, env.command_id, env.ts
    )
    return ServerEvent(meta, env.data)
