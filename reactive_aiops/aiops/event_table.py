"""The AIOps event table: the channels and event types of the contract, as domain actions.

=====================  ===================  ===============  =====================
channel                event type (v1)      payload          action
=====================  ===================  ===============  =====================
``detectors``          detector.upserted    Detector         DetectorUpserted
``detectors:<id>``     detector.upserted    Detector         DetectorUpserted
``anomalies``          anomaly.upserted     Anomaly          AnomalyUpserted
``health``             health.updated       SystemHealth     HealthUpdated
=====================  ===================  ===============  =====================

Anything else becomes :class:`~reactive_aiops.core.events.UnknownEvent`; a payload that does not
decode becomes :class:`~reactive_aiops.core.events.MalformedEvent` with the field and the reason.
Payloads decode with :func:`aiops_converter`, a dedicated strict converter: a string is never
taken for a number, nor a number for a string or a bool for either (cattrs' defaults would
coerce them silently). Extra payload keys are ignored so a server may add fields within v1.

The event's :class:`~reactive_aiops.core.events.EventMeta` is attached as the action's ``meta``
when the action class has that field, so dedupe and the optimistic echo match can see it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import cattrs
import msgspec

from reactive_aiops.aiops.actions import AnomalyUpserted, DetectorUpserted, HealthUpdated
from reactive_aiops.aiops.models import Anomaly, Detector, SystemHealth
from reactive_aiops.core.events import EventMeta, EventRoute, EventTable

__all__ = [
    "ANOMALY_UPSERTED",
    "DETECTOR_UPSERTED",
    "HEALTH_UPDATED",
    "action_with_meta",
    "aiops_converter",
    "aiops_event_table",
    "aiops_routes",
    "converts_with_msgspec",
]

DETECTOR_UPSERTED = "detector.upserted"
ANOMALY_UPSERTED = "anomaly.upserted"
HEALTH_UPDATED = "health.updated"


def _strict_str(value: Any, type_: Any) -> Any:
    # Also reached for the models' StrEnums (str subclasses): those are looked up by value.
    # The exact-type checks first are the hot path (JSON gives exact types); the enum member is
    # read from the enum's own value map, as ``type_(value)`` would find it, minus the call.
    if type(value) is str:
        if type_ is str:
            return value
        member = getattr(type_, "_value2member_map_", _NO_MAP).get(value)
        if member is not None:
            return member
    elif not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__} {value!r:.40}")
    return value if type_ is str else type_(value)


def _strict_int(value: Any, _type: Any) -> int:
    if type(value) is int:
        return value
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"expected an integer, got {type(value).__name__} {value!r:.40}")
    return value


def _strict_float(value: Any, _type: Any) -> float:
    if type(value) is float:
        return value
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"expected a number, got {type(value).__name__} {value!r:.40}")
    return float(value)


_NO_MAP: dict[str, Any] = {}


def aiops_converter() -> cattrs.Converter:
    """A new converter for AIOps payloads: strict scalars, enums by value, extra keys ignored."""
    converter = cattrs.Converter()
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(float, _strict_float)
    for model in (Anomaly, Detector, SystemHealth):
        converter.register_structure_hook(model, _fast_hook(model, converter))
    return converter


def _fast_hook(cls: type[Any], converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """A structure hook for ``cls``: one ``msgspec.convert`` (in C, strict: a string is never a
    number, a bool never an int, an int may stand for a float, enums by value, extra keys
    ignored -- the strict hooks' rules), and for whatever it refuses the converter's generated
    hook, whose result and error report (field by field) are then the answer."""
    slow = converter.get_structure_hook(cls)
    convert = msgspec.convert
    # ValidationError, or anything a validator raises: the generated hook then answers
    refused = (msgspec.ValidationError, ValueError, TypeError, OverflowError)

    def structure(value: Any, type_: Any) -> Any:
        if type(value) is dict:
            try:
                return convert(value, cls)
            except refused:
                pass
        return slow(value, type_)

    _MSGSPEC_FIRST.add(structure)
    return structure


#: The hooks made by _fast_hook (a set of functions: a hook is never collected while its
#: converter lives, and converters are few).
_MSGSPEC_FIRST: set[Callable[[Any, Any], Any]] = set()


def converts_with_msgspec(converter: cattrs.Converter, cls: type[Any]) -> bool:
    """True when ``converter`` structures ``cls`` from a JSON object as ``msgspec.convert``
    does wherever that succeeds (the strict AIOps hooks do): then a decoder may convert with
    msgspec directly and get the converter's answer. False for any other hook."""
    try:
        return converter.get_structure_hook(cls) in _MSGSPEC_FIRST
    except Exception:  # a converter with no hook for cls: cattrs says so by raising
        return False


def _builder(action_cls: type[Any], field: str) -> Callable[[Any, EventMeta], object]:
    """``build(payload, meta)`` for ``action_cls(field=payload[, meta=meta])``."""
    if "meta" in attrs.fields_dict(action_cls):
        first = next(f for f in attrs.fields(action_cls) if f.init)
        if first.name == field and not first.kw_only:

            def build(payload: Any, meta: EventMeta) -> object:
                return action_cls(payload, meta=meta)

            setattr(build, _WITH_META, action_cls)
            return build
        return lambda payload, meta: action_cls(**{field: payload, "meta": meta})
    return lambda payload, meta: action_cls(**{field: payload})


#: The attribute naming the action class on a builder that is exactly
#: ``action_cls(payload, meta=meta)``: a decoder may call the class itself, skipping the
#: builder's frame (see :func:`action_with_meta`).
_WITH_META = "_reactive_aiops_action_with_meta"


def action_with_meta(build: Callable[[Any, EventMeta], object]) -> type[Any] | None:
    """The action class when ``build(payload, meta)`` is exactly ``cls(payload, meta=meta)``
    (the AIOps routes' builders); None for any other builder."""
    cls = getattr(build, _WITH_META, None)
    return cls if isinstance(cls, type) else None


def aiops_routes() -> list[EventRoute[Any]]:
    """The routes of the table above, for building a custom table around them."""
    detector = _builder(DetectorUpserted, "detector")
    return [
        EventRoute("detectors", DETECTOR_UPSERTED, Detector, detector),
        EventRoute("detectors:*", DETECTOR_UPSERTED, Detector, detector),
        EventRoute("anomalies", ANOMALY_UPSERTED, Anomaly, _builder(AnomalyUpserted, "anomaly")),
        EventRoute("health", HEALTH_UPDATED, SystemHealth, _builder(HealthUpdated, "health")),
    ]


def aiops_event_table() -> EventTable:
    """The AIOps :class:`~reactive_aiops.core.events.EventTable` with its own converter."""
    return EventTable(aiops_routes(), converter=aiops_converter())
