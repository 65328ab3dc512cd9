"""The event envelope carried as publication ``data`` on our channels (contracts.md).

``{"type": "detector.upserted", "v": 1, "id": "<event id>", "ts": 1732900000.5,
"command_id": "<optional>", "data": {payload}}``. The payload stays a plain JSON dict here: turning
it into domain models belongs to the middleware. ``decode_event`` raises ``EventError`` (a
``ProtocolError``) on anything else, with the reason.
"""

from __future__ import annotations

from typing import Any

import attrs

from reactive_aiops.wire.errors import ProtocolError

ENVELOPE_VERSION = 1

DETECTOR_UPSERTED = "detector.upserted"
ANOMALY_UPSERTED = "anomaly.upserted"
HEALTH_UPDATED = "health.updated"
#: Event types of version 1 envelopes.
EVENT_TYPES = frozenset({DETECTOR_UPSERTED, ANOMALY_UPSERTED, HEALTH_UPDATED})

CHANNEL_DETECTORS = "detectors"
CHANNEL_ANOMALIES = "anomalies"
CHANNEL_HEALTH = "health"


def detector_channel(detector_id: str) -> str:
    """The channel of one detector's changes: ``detectors:<detector_id>``."""
    return f"{CHANNEL_DETECTORS}:{detector_id}"


class EventError(ProtocolError):
    """Publication data is not a valid event envelope."""


@attrs.frozen
class EventEnvelope:
    """One domain event. ``data`` is the model unstructured (enums as their string values)."""

    type: str
    id: str
    ts: float
    data: dict[str, Any]
    command_id: str | None = None
    v: int = ENVELOPE_VERSION


def encode_event(event: EventEnvelope, *, ts: float | None = None) -> dict[str, Any]:
    """The JSON object to put in a publication's ``data`` (``command_id`` omitted when None);
    ``ts`` replaces the envelope's own (a publisher stamps the send time)."""
    out: dict[str, Any] = {
        "type": event.type,
        "v": event.v,
        "id": event.id,
        "ts": event.ts if ts is None else ts,
        "data": event.data,
    }
    if event.command_id is not None:
        out["command_id"] = event.command_id
    return out


def _field(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise EventError(f"event {key!r} must be {getattr(kind, '__name__', kind)}, got {value!r}")
    return value


def decode_event(value: object, *, known_types_only: bool = False) -> EventEnvelope:
    """Parse publication ``data`` into an envelope; unknown keys are ignored.

    Unknown event types are accepted unless ``known_types_only`` (a newer server may add types; a
    consumer skips what it does not know). Raises ``EventError`` with the reason.
    """
    if type(value) is not dict:
        raise EventError(f"event must be a JSON object, got {type(value).__name__}")
    # The hot path: exact JSON types, checked inline; anything else gets the full checks.
    get = value.get
    etype, version, event_id, ts = get("type"), get("v"), get("id"), get("ts")
    command_id = get("command_id")
    data = get("data")
    if (
        type(etype) is str
        and (not known_types_only or etype in EVENT_TYPES)
        and type(version) is int
        and version == ENVELOPE_VERSION
        and type(event_id) is str
        and (type(ts) is float or type(ts) is int)
        and (command_id is None or type(command_id) is str)
        and type(data) is dict
    ):
        return EventEnvelope(etype, event_id, float(ts), data, command_id, version)
    etype = _field(value, "type", str)
    if known_types_only and etype not in EVENT_TYPES:
        raise EventError(f"unknown event type {etype!r}")
    version = _field(value, "v", int)
    if version != ENVELOPE_VERSION:
        raise EventError(f"unsupported envelope version {version}")
    command_id = value.get("command_id")
    if command_id is not None and type(command_id) is not str:
        raise EventError(f"event 'command_id' must be str, got {command_id!r}")
    data = value.get("data")
    if type(data) is not dict:
        raise EventError("event 'data' must be a JSON object")
    return EventEnvelope(
        type=etype,
        id=_field(value, "id", str),
        ts=float(_field(value, "ts", (int, float))),
        data=data,
        command_id=command_id,
        v=version,
    )
