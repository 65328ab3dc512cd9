"""Decoding a live publication once, at the edge, straight into its domain action.

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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from reactive_aiops.aiops.event_table import converts_with_msgspec
from reactive_aiops.core.events import EventMeta, EventTable
from reactive_aiops.wire import Publication
from reactive_aiops.wire.events import ENVELOPE_VERSION

__all__ = ["EdgeDecoder"]

#: Bound on the per-(channel, event type) cache, as the event table bounds its own.
_MAX_COMPILED = 1024

_Compiled = tuple[type[msgspec.Struct], Callable[[Any, EventMeta], object]] | None


def _envelope_struct(payload: type[Any]) -> type[msgspec.Struct] | None:
    """The envelope with ``data`` typed as ``payload``; None if msgspec cannot convert it."""
    try:
        struct = msgspec.defstruct(
            f"Envelope_{payload.__name__}",
            [
                ("v", int),
                ("id", str),
                ("ts", float),
                ("data", payload),
                ("command_id", str | None, None),
            ],
        )
        msgspec.inspect.type_info(struct)  # raises for a payload type msgspec cannot handle
    except (TypeError, ValueError):
        return None
    return struct


class EdgeDecoder:
    """``decoder(channel, publication, epoch)``: the domain action of a live publication, or
    ``None`` when the slow path must decide (see the module doc)."""

    def __init__(self, table: EventTable) -> None:
        self.table = table
        self._compiled: dict[tuple[str, str], _Compiled] = {}

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


_convert = msgspec.convert
_REFUSED = (msgspec.ValidationError, ValueError, TypeError, KeyError, AttributeError, OverflowError)
