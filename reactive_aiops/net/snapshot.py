"""The ``aiops.snapshot`` RPC's result, as store actions per channel with their positions.

The server answers ``{}`` with::

    {"detectors": [<Detector payload>...], "anomalies": [<Anomaly payload>...],
     "health": <SystemHealth payload> | null,
     "positions": {"detectors": {"offset": N, "epoch": "E"}, "anomalies": {...}, "health": {...}}}

Each position is the channel's stream position at which its state was read: every publication
at or below it (same epoch) is reflected, none above. A channel the token may not read is left
out of ``positions`` (and its entities out of the result). Payloads are those of the
``detector.upserted`` / ``anomaly.upserted`` / ``health.updated`` events.
"""

from __future__ import annotations

from typing import Any

import attrs
import cattrs

from reactive_aiops.aiops.actions import AnomaliesLoaded, DetectorsLoaded, HealthUpdated
from reactive_aiops.aiops.models import Anomaly, Detector, SystemHealth
from reactive_aiops.wire.events import CHANNEL_ANOMALIES, CHANNEL_DETECTORS, CHANNEL_HEALTH

__all__ = ["SNAPSHOT_CHANNELS", "SNAPSHOT_METHOD", "ChannelLoad", "parse_snapshot"]

SNAPSHOT_METHOD = "aiops.snapshot"

#: The channels one snapshot covers.
SNAPSHOT_CHANNELS: tuple[str, ...] = (CHANNEL_DETECTORS, CHANNEL_ANOMALIES, CHANNEL_HEALTH)

_UINT64 = 2**64
_DECODE_ERRORS = (cattrs.BaseValidationError, ValueError, TypeError, KeyError)


@attrs.frozen
class ChannelLoad:
    """What brings one channel to the server's state: ``actions`` (applied as one batch) read
    at stream position ``offset`` of ``epoch``. ``problems`` names entities left out because
    they did not decode."""

    actions: tuple[object, ...]
    offset: int
    epoch: str
    problems: tuple[str, ...] = ()


def _position(value: object, channel: str) -> tuple[int, str]:
    if type(value) is not dict:
        raise ValueError(f"snapshot position of {channel!r} must be an object")
    offset, epoch = value.get("offset", 0), value.get("epoch", "")
    if type(offset) is not int or not 0 <= offset < _UINT64 or type(epoch) is not str:
        raise ValueError(f"bad snapshot position of {channel!r}: {value!r}")
    return offset, epoch


def _entities(
    data: dict[str, Any], key: str, cls: type[Any], converter: cattrs.Converter
) -> tuple[list[Any], list[str]]:
    items = data.get(key, [])
    if type(items) is not list:
        raise ValueError(f"snapshot {key!r} must be a list")
    good: list[Any] = []
    problems: list[str] = []
    for item in items:
        try:
            good.append(converter.structure(item, cls))
        except _DECODE_ERRORS as exc:
            ident = item.get("id") if isinstance(item, dict) else None
            problems.append(f"{key} {ident!r}: {type(exc).__name__}: {exc}")
    return good, problems


def parse_snapshot(data: object, converter: cattrs.Converter) -> dict[str, ChannelLoad]:
    """The loads of the channels the snapshot has a position for. ``converter`` decodes the
    payloads (the strict AIOps converter). Raises ``ValueError`` if the result's shape is not
    the contract's; an entity that does not decode is left out and named in ``problems``."""
    if type(data) is not dict:
        raise ValueError("snapshot result must be an object")
    positions = data.get("positions")
    if type(positions) is not dict:
        raise ValueError("snapshot result has no positions object")
    loads: dict[str, ChannelLoad] = {}
    for channel in SNAPSHOT_CHANNELS:
        if channel not in positions:
            continue
        offset, epoch = _position(positions[channel], channel)
        problems: list[str] = []
        action: object
        if channel == CHANNEL_DETECTORS:
            detectors, problems = _entities(data, "detectors", Detector, converter)
            action = DetectorsLoaded(tuple(detectors), exact=True)
        elif channel == CHANNEL_ANOMALIES:
            anomalies, problems = _entities(data, "anomalies", Anomaly, converter)
            action = AnomaliesLoaded(tuple(anomalies), exact=True)
        else:
            health = data.get("health")
            if health is None:
                loads[channel] = ChannelLoad((), offset, epoch)
                continue
            try:
                action = HealthUpdated(converter.structure(health, SystemHealth))
            except _DECODE_ERRORS as exc:
                loads[channel] = ChannelLoad((), offset, epoch, (f"health: {exc}",))
                continue
        loads[channel] = ChannelLoad((action,), offset, epoch, tuple(problems))
    return loads
